/*
 * cmd_convert.c - vhdtool convert: raw <-> VHD, VHD -> VHD, sparse-aware.
 *
 * The source is read extent by extent: unallocated ranges of a VHD (from
 * vhd_map) and holes of a raw file (SEEK_DATA/SEEK_HOLE) are never read.
 * Data is copied in 2 MiB aligned chunks, and 4 KiB granules that are all
 * zero are not written: the fresh output already reads as zeros there (a
 * dynamic disk leaves the block unallocated, a fixed disk or raw file
 * keeps a hole).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tool.h"

#define CHUNK   (2u * 1024 * 1024)
#define GRANULE 4096u

static const char usage[] =
	"usage: vhdtool convert [--from raw|vhd] [--to raw|vhd] [--type fixed|dynamic]\n"
	"                       [--block-size SIZE] [--ignore-checksum] [-p] [-f] SRC DST\n";

static const char help[] =
	"Copy the disk in SRC (a VHD image of any type, or a raw disk image) to a new\n"
	"file DST.  The source format is detected from its content; a differencing\n"
	"source is read through its whole chain (flattened).  The destination is a\n"
	"VHD if its name ends in .vhd, else raw, unless --to says otherwise.\n"
	"Unallocated ranges and all-zero data are not written: VHD output stays\n"
	"small and raw output sparse.\n\n"
	"  -F, --from raw|vhd        source format (default: by content; a file\n"
	"                            named *.vhd must then be a VHD)\n"
	"  -O, --to raw|vhd          destination format\n"
	"  -t, --type fixed|dynamic  VHD destination type (default dynamic; implies\n"
	"                            --to vhd)\n"
	"  -b, --block-size SIZE     block size of a dynamic destination (default 2M)\n"
	"      --ignore-checksum     read a source whose footer or header checksum\n"
	"                            is wrong (recovery)\n"
	"  -p, --progress            show progress on standard error\n"
	"  -f, --force               replace DST if it exists\n"
	"  -h, --help                show this help\n\n"
	"On failure or interruption the partial DST is removed.\n";

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct endpoint {
	const char *path;
	struct vhd *v;          /* VHD, or NULL for raw */
	int fd;                 /* raw: the file */
	uint64_t size;
	int created;            /* DST: remove on failure */
	int dense;              /* DST: a device; write every byte */
};

/* Read exactly n bytes of a raw file. */
static int
raw_read(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;    /* the file shrank under us */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int
raw_write(int fd, const void *buf, size_t n, uint64_t off)
{
	const char *p = buf;

	while (n) {
		ssize_t r = pwrite(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* The extent at off: *len bytes (> 0) that are all data (1) or all
 * known zero (0).  Returns 0/1 or -errno. */
static int
next_extent(struct endpoint *s, uint64_t off, uint64_t *len)
{
	uint64_t left = s->size - off;

	if (s->v) {
		uint64_t run = 0;
		unsigned status = 0;
		int r = vhd_map(s->v, off, left, &run, &status, NULL);
		if (r < 0)
			return r;
		if (run == 0 || run > left)
			run = left;
		*len = run;
		return (status & VHD_MAP_DATA) ? 1 : 0;
	}
	/* Raw: ask the filesystem for holes; without support, all data. */
	off_t d = lseek(s->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		*len = left;
		return errno == ENXIO ? 0 : 1;
	}
	if ((uint64_t)d > off) {
		*len = (uint64_t)d - off < left ? (uint64_t)d - off : left;
		return 0;
	}
	off_t h = lseek(s->fd, (off_t)off, SEEK_HOLE);
	if (h < 0 || (uint64_t)h <= off || (uint64_t)h - off > left)
		*len = left;
	else
		*len = (uint64_t)h - off;
	return 1;
}

static int
dst_write(struct endpoint *d, const void *buf, size_t n, uint64_t off)
{
	if (d->v)
		return vhd_pwrite(d->v, buf, n, off);
	return raw_write(d->fd, buf, n, off);
}

/* Write the non-zero granules of buf (which holds [off, off+n)). */
static int
write_sparse(struct endpoint *d, const char *buf, size_t n, uint64_t off)
{
	size_t i = 0;

	if (d->dense)
		return dst_write(d, buf, n, off);
	while (i < n) {
		/* Granules are aligned to absolute offsets. */
		size_t g = GRANULE - (size_t)((off + i) % GRANULE);
		if (g > n - i)
			g = n - i;
		if (is_zero(buf + i, g)) {
			i += g;
			continue;
		}
		size_t start = i;
		i += g;
		while (i < n) {
			g = n - i < GRANULE ? n - i : GRANULE;
			if (is_zero(buf + i, g))
				break;
			i += g;
		}
		int r = dst_write(d, buf + start, i - start, off + start);
		if (r < 0)
			return r;
	}
	return 0;
}

static void
progress(uint64_t done, uint64_t total, int *last)
{
	int pm = total ? (int)(done * 1000 / total) : 1000;

	if (pm == *last)
		return;
	*last = pm;
	fprintf(stderr, "\r    (%d.%d/100%%)", pm / 10, pm % 10);
	if (pm == 1000)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Copy every byte of s to d; reports its own errors. */
static int
copy(struct endpoint *s, struct endpoint *d, int show)
{
	uint64_t off = 0;
	int last = -1, r;
	char *buf;

	void *mem;

	if (posix_memalign(&mem, CHUNK, CHUNK) != 0) {
		tool_err(NULL, "out of memory");
		return EXIT_ERROR;
	}
	buf = mem;
	while (off < s->size) {
		uint64_t len;
		if (interrupted) {
			tool_err(d->path, "interrupted");
			goto fail;
		}
		r = next_extent(s, off, &len);
		if (r < 0) {
			tool_lib_err(s->path, r);
			goto fail;
		}
		if (r == 0 && d->dense) {
			/* A device is not known to read zeros: write them. */
			memset(buf, 0, CHUNK);
			for (uint64_t o = off; o < off + len;) {
				size_t n = CHUNK - (size_t)(o % CHUNK);
				if (n > off + len - o)
					n = (size_t)(off + len - o);
				if ((r = dst_write(d, buf, n, o)) < 0)
					goto write_fail;
				o += n;
			}
		}
		for (uint64_t o = off; r == 1 && o < off + len;) {
			size_t n = CHUNK - (size_t)(o % CHUNK);
			if (n > off + len - o)
				n = (size_t)(off + len - o);
			r = s->v ? vhd_pread(s->v, buf, n, o) :
				   raw_read(s->fd, buf, n, o);
			if (r < 0) {
				if (s->v)
					tool_lib_err(s->path, r);
				else
					tool_err(s->path, "read error at offset %llu: %s",
						 (unsigned long long)o, strerror(-r));
				goto fail;
			}
			if ((r = write_sparse(d, buf, n, o)) < 0)
				goto write_fail;
			r = 1;
			o += n;
			if (show)
				progress(o, s->size, &last);
			if (interrupted) {
				tool_err(d->path, "interrupted");
				goto fail;
			}
		}
		off += len;
		if (show)
			progress(off, s->size, &last);
	}
	free(buf);
	return EXIT_OK;
write_fail:
	if (d->v)
		tool_lib_err(d->path, r);
	else
		tool_err(d->path, "write error: %s", strerror(-r));
fail:
	if (show)
		fputc('\n', stderr);
	free(buf);
	return EXIT_ERROR;
}

static int
ends_with_vhd(const char *p)
{
	size_t n = strlen(p);
	return n >= 4 && (strcasecmp(p + n - 4, ".vhd") == 0 ||
			  strcasecmp(p + n - 4, ".vpc") == 0);
}

/* from: -1 by content, 0 raw, 1 VHD. */
static int
open_source(struct endpoint *s, int from, int ignore_checksum)
{
	int r = from >= 0 ? from : vhd_probe(s->path);

	if (r < 0)
		return tool_lib_err(s->path, r);
	if (r == 0 && from < 0 && ends_with_vhd(s->path)) {
		/* A damaged VHD must not be copied as if it were a raw disk. */
		tool_err(s->path, "not a VHD image (no VHD footer at its end or "
			 "at offset 0); --from raw copies it as a raw disk");
		return EXIT_DAMAGED;
	}
	if (r == 1) {
		struct vhd_info in;
		unsigned fl = VHD_OPEN_RDONLY |
			      (ignore_checksum ? VHD_OPEN_IGNORE_CHECKSUM : 0);
		r = vhd_open(&s->v, s->path, fl);
		if (r < 0) {
			if (r == -EBADMSG && !ignore_checksum &&
			    strstr(vhd_errmsg(), "checksum")) {
				char *m = strdup(vhd_errmsg());
				size_t n = m ? strlen(m) + 64 : 0;
				char *h = m ? malloc(n) : NULL;
				int rc;
				if (h)
					snprintf(h, n, "%s (--ignore-checksum "
						 "reads it anyway)", m);
				rc = tool_msg_err(s->path, h ? h : m, r);
				free(h);
				free(m);
				return rc;
			}
			return tool_lib_err(s->path, r);
		}
		if ((r = vhd_get_info(s->v, &in)) < 0)
			return tool_lib_err(s->path, r);
		s->size = in.virtual_size;
		return EXIT_OK;
	}
	struct stat st;
	s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) < 0) {
		tool_err(s->path, "cannot open: %s", strerror(errno));
		return EXIT_ERROR;
	}
	if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
	} else {
		off_t end = lseek(s->fd, 0, SEEK_END);
		if (end < 0) {
			tool_err(s->path, "cannot find its size: %s", strerror(errno));
			return EXIT_ERROR;
		}
		s->size = (uint64_t)end;
	}
	return EXIT_OK;
}

/* Create and open DST.  *existed tells whether a non-regular file (a
 * device) is being written. */
static int
open_dest(struct endpoint *d, const struct endpoint *s, int to_vhd,
	  const struct vhd_create_opts *co_in, int force)
{
	struct stat st, ss;
	int r;

	if (stat(d->path, &st) == 0) {
		if ((s->v ? stat(vhd_path(s->v), &ss) : fstat(s->fd, &ss)) == 0 &&
		    st.st_dev == ss.st_dev && st.st_ino == ss.st_ino) {
			tool_err(d->path, "is the source itself");
			return EXIT_ERROR;
		}
		if (!force) {
			tool_err(d->path, "already exists (use -f to replace it)");
			return EXIT_ERROR;
		}
		if (S_ISREG(st.st_mode)) {
			if (unlink(d->path) < 0) {
				tool_err(d->path, "cannot remove: %s", strerror(errno));
				return EXIT_ERROR;
			}
		} else if (!to_vhd) {
			d->dense = 1;
		} else {
			tool_err(d->path, "is not a regular file");
			return EXIT_ERROR;
		}
	}
	if (to_vhd) {
		struct vhd_create_opts co = *co_in;
		co.size = s->size;
		if ((r = vhd_create(d->path, &co)) < 0)
			return tool_lib_err(d->path, r);
		d->created = 1;
		r = vhd_open(&d->v, d->path, VHD_OPEN_RDWR | VHD_OPEN_UNSAFE_NOSYNC);
		if (r < 0)
			return tool_lib_err(d->path, r);
		return EXIT_OK;
	}
	if (d->dense) {
		d->fd = open(d->path, O_WRONLY | O_CLOEXEC);
	} else {
		d->fd = open(d->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		d->created = d->fd >= 0;
	}
	if (d->fd < 0) {
		tool_err(d->path, "cannot create: %s", strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

static int
finish_dest(struct endpoint *d)
{
	int r;

	if (d->v) {
		if ((r = vhd_flush(d->v)) < 0)
			return tool_lib_err(d->path, r);
		vhd_close(d->v);
		d->v = NULL;
		return EXIT_OK;
	}
	if (!d->dense && ftruncate(d->fd, (off_t)d->size) < 0) {
		tool_err(d->path, "cannot set its size: %s", strerror(errno));
		return EXIT_ERROR;
	}
	if (fsync(d->fd) < 0 && errno != EINVAL) {
		tool_err(d->path, "cannot sync: %s", strerror(errno));
		return EXIT_ERROR;
	}
	r = close(d->fd);
	d->fd = -1;
	if (r < 0) {
		tool_err(d->path, "cannot close: %s", strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

int
cmd_convert(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "from",            required_argument, NULL, 'F' },
		{ "to",              required_argument, NULL, 'O' },
		{ "type",            required_argument, NULL, 't' },
		{ "block-size",      required_argument, NULL, 'b' },
		{ "ignore-checksum", no_argument,       NULL, 'I' },
		{ "progress",        no_argument,       NULL, 'p' },
		{ "force",           no_argument,       NULL, 'f' },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct endpoint s = { NULL, NULL, -1, 0, 0, 0 };
	struct endpoint d = { NULL, NULL, -1, 0, 0, 0 };
	struct vhd_create_opts co;
	int c, from = -1, to = -1, ignore = 0, show = 0, force = 0, rc;
	uint64_t bs;

	memset(&co, 0, sizeof(co));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":F:O:t:b:pfh", lopts, NULL)) != -1) {
		switch (c) {
		case 'F':
			if (strcmp(optarg, "raw") == 0)
				from = 0;
			else if (strcmp(optarg, "vhd") == 0 || strcmp(optarg, "vpc") == 0)
				from = 1;
			else
				return tool_usage(usage, argv[0],
					"unknown format '%s' (use raw or vhd)", optarg);
			break;
		case 'O':
			if (strcmp(optarg, "raw") == 0)
				to = 0;
			else if (strcmp(optarg, "vhd") == 0 || strcmp(optarg, "vpc") == 0)
				to = 1;
			else
				return tool_usage(usage, argv[0],
					"unknown format '%s' (use raw or vhd)", optarg);
			break;
		case 't':
			if (strcmp(optarg, "fixed") == 0)
				co.type = VHD_TYPE_FIXED;
			else if (strcmp(optarg, "dynamic") == 0)
				co.type = VHD_TYPE_DYNAMIC;
			else
				return tool_usage(usage, argv[0],
					"unknown type '%s' (use fixed or dynamic)", optarg);
			break;
		case 'b':
			if (parse_size(optarg, &bs) < 0 || bs > UINT32_MAX)
				return tool_usage(usage, argv[0],
					"bad block size '%s'", optarg);
			co.block_size = (uint32_t)bs;
			break;
		case 'I': ignore = 1; break;
		case 'p': show = 1; break;
		case 'f': force = 1; break;
		case 'h':
			fputs(usage, stdout);
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(usage, argv, c);
		}
	}
	if (argc - optind != 2)
		return tool_usage(usage, argv[0], argc - optind < 2 ?
				  "missing SRC or DST" : "too many arguments");
	s.path = argv[optind];
	d.path = argv[optind + 1];
	if (to < 0)
		to = (co.type || co.block_size || ends_with_vhd(d.path)) ? 1 : 0;
	if (to == 0 && (co.type || co.block_size))
		return tool_usage(usage, argv[0],
				  "--type and --block-size apply to VHD output only");
	if (co.type == VHD_TYPE_FIXED && co.block_size)
		return tool_usage(usage, argv[0],
				  "--block-size applies to dynamic disks only");
	if (!co.type)
		co.type = VHD_TYPE_DYNAMIC;

	if ((rc = open_source(&s, from, ignore)) != EXIT_OK)
		goto out;
	if (to == 1 && s.size % VHD_SECTOR_SIZE) {
		tool_err(s.path, "size %llu is not a multiple of 512 bytes; a VHD "
			 "cannot hold it (pad it, e.g. truncate -s %llu)",
			 (unsigned long long)s.size,
			 (unsigned long long)((s.size / 512 + 1) * 512));
		rc = EXIT_ERROR;
		goto out;
	}
	if (to == 1 && s.size > VHD_MAX_DISK_SIZE) {
		tool_err(s.path, "size %llu is larger than the VHD limit of "
			 "2040 GiB", (unsigned long long)s.size);
		rc = EXIT_ERROR;
		goto out;
	}
	if (to == 1 && s.size == 0) {
		tool_err(s.path, "is empty; a VHD disk cannot have size 0");
		rc = EXIT_ERROR;
		goto out;
	}
	d.size = s.size;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	if ((rc = open_dest(&d, &s, to, &co, force)) != EXIT_OK)
		goto out;
	if ((rc = copy(&s, &d, show)) != EXIT_OK)
		goto out;
	rc = finish_dest(&d);
out:
	vhd_close(s.v);
	if (s.fd >= 0)
		close(s.fd);
	vhd_close(d.v);
	if (d.fd >= 0)
		close(d.fd);
	if (rc != EXIT_OK && d.created)
		unlink(d.path);
	return rc;
}
