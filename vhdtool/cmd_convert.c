/*
 * cmd_convert.c - vhdtool convert: raw <-> VHD, VHD -> VHD, sparse-aware;
 * compressed (.gz) and standard input/output streams; Azure-ready fixed
 * VHDs; raw <-> fixed in place.
 *
 * The source is read extent by extent: unallocated ranges of a VHD (from
 * vhd_map) and holes of a raw file (SEEK_DATA/SEEK_HOLE) are never read.
 * Data is copied in 2 MiB aligned chunks, and 4 KiB granules that are all
 * zero are not written: the fresh output already reads as zeros there (a
 * dynamic disk leaves the block unallocated, a fixed disk or raw file
 * keeps a hole).  Where the file system can share blocks (reflinks), a raw
 * or fixed source is copied to a raw or fixed destination with
 * copy_file_range: the kernel moves (shares) the data.
 *
 * A fixed VHD destination is written as raw data followed by its footer,
 * so it can also be a stream.  A stream source (standard input, a .gz
 * file) is read once, front to back; its last 512 bytes decide whether it
 * was a fixed VHD (a valid footer whose size matches) or raw.  A dynamic
 * VHD source or destination needs random access: a stream is then first
 * copied (sparse) to a temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef __linux__
#include <linux/fs.h>
#endif
#include "tool.h"

/* 256 KiB: measured faster and steadier than 2 MiB when reading a VHD
 * source (bench: dynamic to raw 0.50-0.54 s against 0.55-2.19 s, the time
 * going to page-cache copies of the larger buffer). */
#define CHUNK   (256u * 1024)
#define GRANULE 4096u
#define MIB     (UINT64_C(1) << 20)

static const char usage[] =
	"usage: vhdtool convert [--from raw|vhd] [--to raw|vhd|vhdx] [--type fixed|dynamic]\n"
	"                       [--block-size SIZE] [--azure] [--gzip] [--ignore-checksum]\n"
	"                       [--json] [-p] [-f] SRC DST\n"
	"       vhdtool convert --in-place [--to raw|vhd] [--azure] FILE\n";

static const char help[] =
	"Copy the disk in SRC (a VHD image of any type, a fixed or dynamic VHDX image,\n"
	"or a raw disk image) to a new file DST.  The source format is detected from its content; a differencing\n"
	"source is read through its whole chain (flattened).  The destination is a\n"
	"VHD if its name ends in .vhd (or .vhd.gz), a VHDX if it ends in .vhdx or\n"
	".avhdx (a file, not a stream; block size default 32M), else raw, unless --to says\n"
	"otherwise.  Unallocated ranges and all-zero data are not written: VHD\n"
	"output stays small and raw output sparse.\n\n"
	"SRC may be '-' (standard input) or gzip-compressed (raw or VHD inside);\n"
	"DST may be '-' (standard output) or end in .gz (compressed): streams hold\n"
	"a raw disk or a fixed VHD (a dynamic VHD needs a seekable file).\n\n"
	"  -F, --from raw|vhd        source format (default: by content; a file\n"
	"                            named *.vhd must then be a VHD)\n"
	"  -O, --to raw|vhd|vhdx     destination format\n"
	"  -t, --type fixed|dynamic  VHD destination type (default dynamic, fixed\n"
	"                            for streams; implies --to vhd)\n"
	"  -b, --block-size SIZE     block size of a dynamic destination (default 2M)\n"
	"  -a, --azure               a fixed VHD Azure accepts: the disk size rounded\n"
	"                            up to a whole MiB (at least 20 MiB), geometry\n"
	"                            65535/16/255 so QEMU reads the same size\n"
	"  -z, --gzip                compress DST (implied by a .gz name)\n"
	"  -i, --in-place            turn the raw image FILE into a fixed VHD by\n"
	"                            appending a footer, or a fixed VHD into a raw\n"
	"                            image by removing it; no data is copied\n"
	"      --ignore-checksum     read a source whose footer or header checksum\n"
	"                            is wrong (recovery)\n"
	"  -U, --force-share         read a source another program is writing\n"
	"                            (as qemu-img convert -U); the copy may then\n"
	"                            be inconsistent\n"
	"  -j, --json                print what was written as JSON\n"
	"  -p, --progress[=never|auto|always]\n"
	"                            show progress (auto: only on a terminal;\n"
	"                            never: none, the default)\n"
	"  -f, --force               replace DST if it exists\n"
	"      --sync                make DST durable (fsync) before exiting;\n"
	"                            otherwise, like cp and qemu-img, it is left\n"
	"                            to the kernel's write-back\n"
	"  -h, --help                show this help\n\n"
	"On failure or interruption the partial DST is removed.\n"
	"Exit status: 0 done, 1 error, 2 usage error, 3 damaged source.\n";

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
	uint64_t size;          /* disk size */
	int created;            /* DST: remove on failure */
	int dense;              /* DST: a device; write every byte */
	gzFile gz;              /* a compressed (or standard) stream */
	int stream;             /* sequential only: stdin/stdout or .gz */
	int fixed;              /* DST: raw data then a fixed VHD footer */
	int std;                /* standard input or output */
	uint64_t written;       /* stream DST: bytes so far */
	char *tmp;              /* SRC: a spool file to remove */
	int sync;               /* DST: durable before exit (--sync) */
	const char *file;       /* SRC: the file to open (path, or the spool) */
};

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
	struct tool_src t = { .path = s->path, .file = s->file, .v = s->v,
			      .fd = s->fd, .size = s->size };

	return tool_src_extent(&t, off, len);
}

static int
dst_write(struct endpoint *d, const void *buf, size_t n, uint64_t off)
{
	if (d->v)
		return vhd_pwrite(d->v, buf, n, off);
	return raw_write(d->fd, buf, n, off);
}

static int
dst_write_run(void *d, const char *buf, size_t n, uint64_t off)
{
	return dst_write(d, buf, n, off);
}

/* Write the non-zero granules of buf (which holds [off, off+n)). */
static int
write_sparse(struct endpoint *d, const char *buf, size_t n, uint64_t off)
{
	if (d->dense)
		return dst_write(d, buf, n, off);
	return tool_nonzero_runs(buf, n, off, GRANULE, dst_write_run, d);
}


/* A VHD destination needs a disk size that is a positive multiple of 512
 * and at most 2040 GiB.  A raw source of another size is padded with
 * zeros to the next sector (qemu-img does the same), which is said. */
/* The destination is a VHDX (--to vhdx, or a .vhdx/.avhdx name): written
 * through the library like a dynamic VHD, its limit 64 TiB. */
static int out_vhdx;

static int
check_source_size(struct endpoint *s, int to, int azure)
{
	if (to != 1)
		return EXIT_OK;
	if (out_vhdx && s->size > (UINT64_C(64) << 40)) {
		tool_err(s->path, "size %llu is larger than the VHDX limit of "
			 "64 TiB", (unsigned long long)s->size);
		return EXIT_ERROR;
	}
	if (!out_vhdx && s->size > VHD_MAX_DISK_SIZE) {
		tool_err(s->path, "size %llu is larger than the VHD limit of "
			 "2040 GiB", (unsigned long long)s->size);
		return EXIT_ERROR;
	}
	if (s->size == 0) {
		tool_err(s->path, "is empty; a VHD disk cannot have size 0");
		return EXIT_ERROR;
	}
	if (azure && s->size % MIB) {
		fprintf(stderr, "vhdtool: %s: size %llu is not a whole number of "
			"MiB; padded with zeros to %llu, as Azure requires\n",
			s->path, (unsigned long long)s->size,
			(unsigned long long)tool_azure_size(s->size));
	} else if (s->size % VHD_SECTOR_SIZE && !azure) {
		uint64_t to_size = (s->size / VHD_SECTOR_SIZE + 1) * VHD_SECTOR_SIZE;
		if (to_size > VHD_MAX_DISK_SIZE) {
			tool_err(s->path, "size %llu is larger than the VHD "
				 "limit of 2040 GiB", (unsigned long long)s->size);
			return EXIT_ERROR;
		}
		fprintf(stderr, "vhdtool: %s: size %llu is not a multiple of 512 "
			"bytes; padded with zeros to %llu\n", s->path,
			(unsigned long long)s->size, (unsigned long long)to_size);
	}
	return EXIT_OK;
}

/* The disk size of the destination: a VHD's is a whole number of sectors
 * (zeros pad a raw source), --azure's a whole number of MiB. */
static uint64_t
dest_size(const struct endpoint *s, int to, int azure)
{
	if (azure)
		return tool_azure_size(s->size);
	if (to == 1)
		return (s->size + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE *
		       VHD_SECTOR_SIZE;
	return s->size;
}

/* ---- streams ---- */

static int
stream_write(struct endpoint *d, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		size_t k = n > (1u << 30) ? (1u << 30) : n;
		if (d->gz) {
			int w = gzwrite(d->gz, p, (unsigned)k);
			if (w <= 0) {
				int e;
				const char *m = gzerror(d->gz, &e);
				return e == Z_ERRNO ? -(errno ? errno : EIO) :
				       (fprintf(stderr, "vhdtool: %s: %s\n",
						d->path, m), -EIO);
			}
			k = (size_t)w;
		} else {
			ssize_t w = write(d->fd, p, k);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			k = (size_t)w;
		}
		p += k;
		n -= k;
		d->written += k;
	}
	return 0;
}

static const char zeros[GRANULE * 16];

static int
stream_zeros(struct endpoint *d, uint64_t n)
{
	while (n) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
		int r = stream_write(d, zeros, k);
		if (r < 0)
			return r;
		n -= k;
	}
	return 0;
}

/* Read up to n bytes of a stream; 0 at the end, -errno on error. */
static ssize_t
stream_read(struct endpoint *s, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int r = gzread(s->gz, (char *)buf + got, (unsigned)(n - got));
		if (r < 0) {
			int e;
			const char *m = gzerror(s->gz, &e);
			tool_err(s->path, "read error: %s",
				 e == Z_ERRNO ? strerror(errno) : m);
			return -EIO;
		}
		if (r == 0) {
			/* A truncated gzip stream ends "normally" with
			 * Z_BUF_ERROR pending. */
			int e;
			const char *m = gzerror(s->gz, &e);
			if (e != Z_OK && e != Z_STREAM_END) {
				tool_err(s->path, "read error: %s",
					 e == Z_BUF_ERROR ? "compressed data "
					 "ends early (truncated?)" : m);
				return -EIO;
			}
			break;
		}
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Output data at off: sparse into a file, sequential into a stream. */
static int
put_data(struct endpoint *d, const char *buf, size_t n, uint64_t off)
{
	if (d->stream) {
		int r = stream_zeros(d, off - d->written);
		return r < 0 ? r : stream_write(d, buf, n);
	}
	return write_sparse(d, buf, n, off);
}

static const char *
out_name(struct endpoint *d)
{
	return d->std ? "standard output" : d->path;
}

static int
write_fail(struct endpoint *d, int r)
{
	if (d->v)
		return tool_lib_err(d->path, r);
	tool_err(out_name(d), "write error: %s", strerror(-r));
	return EXIT_ERROR;
}

/* ---- copying ---- */

static int
check_interrupt(struct endpoint *d)
{
	if (!interrupted)
		return 0;
	tool_err(out_name(d), "interrupted");
	return 1;
}

#ifdef FICLONERANGE
/* Can the destination share the source's blocks (a reflink)?  Tried on
 * the first data extent; on success it is already copied. */
static int
try_reflink(struct endpoint *s, struct endpoint *d, uint64_t off,
	    uint64_t len)
{
	struct file_clone_range fcr;
	uint64_t al = len / GRANULE * GRANULE;

	if (al == 0 || off % GRANULE)
		return 0;
	fcr.src_fd = s->fd;
	fcr.src_offset = off;
	fcr.src_length = al;
	fcr.dest_offset = off;
	return ioctl(d->fd, FICLONERANGE, &fcr) == 0;
}
#endif

/* copy_file_range of [off, off+len) at the same offsets; -errno. */
static int
kernel_copy(struct endpoint *s, struct endpoint *d, uint64_t off,
	    uint64_t len, struct progress *pr)
{
	while (len) {
		loff_t in = (loff_t)off, out = (loff_t)off;
		size_t k = len > (64u << 20) ? (64u << 20) : (size_t)len;
		ssize_t r = copy_file_range(s->fd, &in, d->fd, &out, k, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		off += (uint64_t)r;
		len -= (uint64_t)r;
		progress_update(pr, off, s->size);
		if (interrupted)
			return -EINTR;
	}
	return 0;
}

/* ---- the writer thread ----
 * Reading a chunk (a copy out of the page cache, or the library's read of
 * a VHD) and writing it (zero detection, then a copy into the page cache)
 * cost about the same, so they run on two threads: the main thread reads
 * into one of PIPE_BUFS buffers while the writer writes the ones before
 * it, strictly in order, so the destination sees exactly the writes and
 * order of a single-threaded copy.  qemu-img convert overlaps its I/O the
 * same way (several requests in flight). */
#define PIPE_BUFS 4

struct pipe {
	struct endpoint *d;
	char *buf[PIPE_BUFS];
	size_t len[PIPE_BUFS];
	uint64_t off[PIPE_BUFS];
	unsigned head, tail;    /* filled: [tail, head), modulo PIPE_BUFS */
	int err, stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int running;
};

static void *
pipe_writer(void *arg)
{
	struct pipe *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->tail == p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->tail == p->head)
			break;
		unsigned i = p->tail % PIPE_BUFS;
		pthread_mutex_unlock(&p->lock);
		int r = p->err ? 0 : put_data(p->d, p->buf[i], p->len[i], p->off[i]);
		pthread_mutex_lock(&p->lock);
		if (r < 0 && !p->err)
			p->err = r;
		p->tail++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The next free buffer, waiting for the writer if all are in use. */
static char *
pipe_buffer(struct pipe *p)
{
	char *b;

	pthread_mutex_lock(&p->lock);
	while (p->head - p->tail == PIPE_BUFS)
		pthread_cond_wait(&p->cond, &p->lock);
	b = p->buf[p->head % PIPE_BUFS];
	pthread_mutex_unlock(&p->lock);
	return b;
}

/* Queue the buffer pipe_buffer gave for writing; the writer's first
 * error so far (0 if none). */
static int
pipe_push(struct pipe *p, size_t n, uint64_t off)
{
	int err;

	pthread_mutex_lock(&p->lock);
	p->len[p->head % PIPE_BUFS] = n;
	p->off[p->head % PIPE_BUFS] = off;
	p->head++;
	err = p->err;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return err;
}

/* Wait until everything queued is written; the writer's first error. */
static int
pipe_drain(struct pipe *p)
{
	int err;

	pthread_mutex_lock(&p->lock);
	while (p->tail != p->head)
		pthread_cond_wait(&p->cond, &p->lock);
	err = p->err;
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int
pipe_start(struct pipe *p, struct endpoint *d)
{
	memset(p, 0, sizeof(*p));
	p->d = d;
	for (int i = 0; i < PIPE_BUFS; i++) {
		void *mem;
		if (posix_memalign(&mem, CHUNK, CHUNK) != 0)
			return -ENOMEM;
		p->buf[i] = mem;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* Without a thread, pipe_push would wait forever: write inline. */
	p->running = pthread_create(&p->thread, NULL, pipe_writer, p) == 0;
	return 0;
}

/* Drain, stop the writer and free; the writer's first error. */
static int
pipe_end(struct pipe *p)
{
	int err = 0;

	if (p->running) {
		err = pipe_drain(p);
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
	}
	for (int i = 0; i < PIPE_BUFS; i++)
		free(p->buf[i]);
	return err;
}

/* Write [off, off+n) from the buffer pipe_buffer gave: by the writer
 * thread, or here if there is none.  0 or the first write error. */
static int
pipe_write(struct pipe *p, size_t n, uint64_t off)
{
	if (!p->running)
		return put_data(p->d, p->buf[0], n, off);
	return pipe_push(p, n, off);
}

/* Copy every byte of s (random access) to d; reports its own errors. */
static int
copy(struct endpoint *s, struct endpoint *d, struct progress *pr)
{
	uint64_t off = 0;
	int r, kernel = 0;
	char *buf;
	struct pipe pipe;

	if (pipe_start(&pipe, d) < 0) {
		pipe_end(&pipe);
		tool_err(NULL, "out of memory");
		return EXIT_ERROR;
	}
	while (off < s->size) {
		uint64_t len;
		if (check_interrupt(d))
			goto fail;
		r = next_extent(s, off, &len);
		if (r < 0) {
			tool_lib_err(s->path, r);
			goto fail;
		}
		if (r == 0 && d->dense) {
			/* A device is not known to read zeros: write them,
			 * from a buffer the writer no longer holds. */
			if (pipe.running && (r = pipe_drain(&pipe)) < 0)
				goto write_fail;
			buf = pipe.buf[0];
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
#ifdef FICLONERANGE
		/* Queued writes may still be going on: they are to other
		 * ranges of the file. */
		if (r == 1 && !kernel && s->fd >= 0 && d->fd >= 0 && !d->v &&
		    !d->stream && !d->dense && try_reflink(s, d, off, len))
			kernel = 1;
#endif
		if (r == 1 && kernel) {
			r = kernel_copy(s, d, off, len, pr);
			if (r == -EINTR) {
				check_interrupt(d);
				goto fail;
			}
			if (r < 0)
				goto write_fail;
			off += len;
			continue;
		}
		for (uint64_t o = off; r == 1 && o < off + len;) {
			size_t n = CHUNK - (size_t)(o % CHUNK);
			if (n > off + len - o)
				n = (size_t)(off + len - o);
			buf = pipe.running ? pipe_buffer(&pipe) : pipe.buf[0];
			r = s->v ? vhd_pread(s->v, buf, n, o) :
				   tool_pread_full(s->fd, buf, n, o);
			if (r < 0) {
				if (s->v)
					tool_lib_err(s->path, r);
				else
					tool_err(s->path, "read error at offset %llu: %s",
						 (unsigned long long)o, strerror(-r));
				goto fail;
			}
			if ((r = pipe_write(&pipe, n, o)) < 0)
				goto write_fail;
			r = 1;
			o += n;
			progress_update(pr, o, s->size);
			if (check_interrupt(d))
				goto fail;
		}
		off += len;
		progress_update(pr, off, s->size);
	}
	if ((r = pipe_end(&pipe)) < 0) {
		write_fail(d, r);
		return EXIT_ERROR;
	}
	return EXIT_OK;
write_fail:
	pipe_end(&pipe);
	write_fail(d, r);
	return EXIT_ERROR;
fail:
	pipe_end(&pipe);
	return EXIT_ERROR;
}

/* Copy a stream source to d (a raw-like file or a stream): front to back,
 * holding the last 512 bytes back until the end tells whether they are a
 * fixed VHD's footer.  Sets s->size. */
static int
copy_stream(struct endpoint *s, struct endpoint *d, int from,
	    const char *head, size_t headlen, struct progress *pr)
{
	char *buf = malloc(CHUNK + 512);
	size_t pend;
	uint64_t off = 0;
	int r;

	if (!buf) {
		tool_err(NULL, "out of memory");
		return EXIT_ERROR;
	}
	memcpy(buf, head, headlen);
	pend = headlen;
	for (;;) {
		if (check_interrupt(d))
			goto fail;
		ssize_t got = stream_read(s, buf + pend, CHUNK + 512 - pend);
		if (got < 0)
			goto fail;
		if (got == 0)
			break;
		pend += (size_t)got;
		if (pend > 512) {
			size_t n = pend - 512;
			if ((r = put_data(d, buf, n, off)) < 0)
				goto write_fail;
			off += n;
			memmove(buf, buf + n, 512);
			pend = 512;
			progress_update(pr, off, off);
		}
	}
	struct vhd_info in = { .struct_size = sizeof in };
	if (from != 0 && pend == 512 && vhd_footer_parse((uint8_t *)buf,
							 &in) == 0 &&
	    in.type == VHD_TYPE_FIXED && in.virtual_size == off) {
		s->size = off;          /* a fixed VHD: the footer goes */
	} else if (from == 1) {
		tool_err(s->path, "not a fixed VHD stream (no footer of its "
			 "size at its end); --from raw reads it as raw");
		free(buf);
		return EXIT_DAMAGED;
	} else {
		if (pend && (r = put_data(d, buf, pend, off)) < 0)
			goto write_fail;
		s->size = off + pend;
	}
	free(buf);
	return EXIT_OK;
write_fail:
	write_fail(d, r);
fail:
	free(buf);
	return EXIT_ERROR;
}

static int
ends_with(const char *p, const char *suffix)
{
	size_t n = strlen(p), k = strlen(suffix);
	return n >= k && strcasecmp(p + n - k, suffix) == 0;
}

/* Is the file gzip-compressed (magic 1f 8b)? */
static int
is_gzip(const char *path)
{
	unsigned char m[2];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return 0;
	if (read(fd, m, 2) == 2 && m[0] == 0x1f && m[1] == 0x8b)
		r = 1;
	close(fd);
	return r;
}

/* -U: the source is read without keeping writers out (locking). */
static unsigned force_share;

/* from: -1 by content, 0 raw, 1 VHD (source.c); a character device
 * without a size is refused here, as convert would copy it forever. */
static int
open_source(struct endpoint *s, int from, int ignore_checksum)
{
	struct tool_src t = { .path = s->path, .file = s->file };
	unsigned fl = force_share |
		      (ignore_checksum ? VHD_OPEN_IGNORE_CHECKSUM : 0);
	struct stat st;
	int rc;

	rc = tool_src_open_file(&t, from, fl, TOOL_SRC_FOREIGN |
				TOOL_SRC_RAW_VIEW | TOOL_SRC_CHECKSUM_HINT);
	s->v = t.v;
	s->fd = t.fd;
	s->size = t.size;
	if (rc == EXIT_OK && !s->v && s->size == 0 &&
	    fstat(s->fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		/* /dev/zero, /dev/urandom: no end to copy up to. */
		tool_err(s->path, "is a character device with no size "
			 "(it never ends); give a file, a block device "
			 "or a stream of known length (e.g. head -c "
			 "SIZE %s | vhdtool convert - DST)", s->path);
		return EXIT_ERROR;
	}
	return rc;
}

/* Opens a stream source (standard input or a .gz file). */
static int
open_stream_source(struct endpoint *s)
{
	int fd = s->std ? dup(STDIN_FILENO) :
		 open(s->file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		tool_err(s->path, "cannot open: %s", strerror(errno));
		return EXIT_ERROR;
	}
	/* gzread passes uncompressed input through unchanged. */
	s->gz = gzdopen(fd, "rb");
	if (!s->gz) {
		close(fd);
		tool_err(s->path, "out of memory");
		return EXIT_ERROR;
	}
	gzbuffer(s->gz, 1u << 20);
	s->stream = 1;
	return EXIT_OK;
}

/* A stream source that needs random access: copy it (sparse) to a
 * temporary file and open that instead. */
static int
spool(struct endpoint *s, const char *head, size_t headlen, int from,
      int ignore, struct progress *pr)
{
	const char *dir = getenv("TMPDIR");
	char *tmpl;
	struct endpoint t;
	int fd, rc;

	if (!dir || !*dir)
		dir = "/tmp";
	tmpl = malloc(strlen(dir) + 32);
	if (!tmpl) {
		tool_err(NULL, "out of memory");
		return EXIT_ERROR;
	}
	sprintf(tmpl, "%s/vhdtool-spool.XXXXXX", dir);
	fd = mkstemp(tmpl);
	if (fd < 0) {
		tool_err(tmpl, "cannot create: %s", strerror(errno));
		free(tmpl);
		return EXIT_ERROR;
	}
	s->tmp = tmpl;
	memset(&t, 0, sizeof(t));
	t.path = tmpl;
	t.fd = fd;
	t.size = 0;
	/* Spooled verbatim (from = 0: the footer stays in the file). */
	rc = copy_stream(s, &t, 0, head, headlen, pr);
	if (rc == EXIT_OK && ftruncate(fd, (off_t)s->size) < 0) {
		tool_err(tmpl, "cannot set its size: %s", strerror(errno));
		rc = EXIT_ERROR;
	}
	close(fd);
	gzclose(s->gz);
	s->gz = NULL;
	s->stream = 0;
	if (rc != EXIT_OK)
		return rc;
	/* Messages name what the user gave (s->path), not the spool. */
	s->file = tmpl;
	return open_source(s, from, ignore);
}

/* Every file the copy reads: the source, its chain, the stream. */
static void
source_inputs(const struct endpoint *s, struct tool_inputs *in)
{
	in->n = 0;
	if (s->std)
		tool_inputs_add(in, NULL, STDIN_FILENO, "the source (standard "
				"input)");
	else
		tool_inputs_add(in, s->path, -1, "the source");
	if (s->v)
		tool_inputs_add_chain(in, s->v, s->path);
}

/* Create and open DST. */
static int
open_dest(struct endpoint *d, const struct endpoint *s, int to_vhd,
	  const struct vhd_create_opts *co_in, int force, int gz)
{
	struct tool_inputs in;
	struct stat st;
	int r;

	source_inputs(s, &in);
	if (d->std) {
		/* Standard output redirected onto an input (>> or <>). */
		if (tool_check_output(&in, NULL, STDOUT_FILENO,
				      "standard output") != EXIT_OK)
			return EXIT_ERROR;
		d->stream = 1;
		d->fd = STDOUT_FILENO;
		goto stream;
	}
	if (stat(d->path, &st) == 0) {
		if (tool_check_output(&in, d->path, -1, d->path) != EXIT_OK)
			return EXIT_ERROR;
		if (!force) {
			tool_err(d->path, "already exists (use -f to replace it)");
			return EXIT_ERROR;
		}
		if (S_ISREG(st.st_mode)) {
			if (unlink(d->path) < 0) {
				tool_err(d->path, "cannot remove: %s", strerror(errno));
				return EXIT_ERROR;
			}
		} else if (!to_vhd || d->fixed) {
			d->dense = 1;
		} else {
			tool_err(d->path, "is not a regular file");
			return EXIT_ERROR;
		}
	}
	if (to_vhd && !d->fixed) {
		struct vhd_create_opts co = *co_in;
		co.size = d->size;
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
		d->fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		d->created = d->fd >= 0;
	}
	if (d->fd < 0) {
		tool_err(d->path, "cannot create: %s", strerror(errno));
		return EXIT_ERROR;
	}
	if (!gz)
		return EXIT_OK;
	d->stream = 1;
stream:
	if (gz) {
		int fd = dup(d->fd);
		d->gz = fd >= 0 ? gzdopen(fd, "wb6") : NULL;
		if (!d->gz) {
			if (fd >= 0)
				close(fd);
			tool_err(out_name(d), "cannot start compressing");
			return EXIT_ERROR;
		}
		gzbuffer(d->gz, 1u << 20);
	}
	return EXIT_OK;
}

/* Size, footer, sync (with --sync), close.  Like cp and qemu-img, the
 * output is otherwise left to the kernel's write-back: a new file whose
 * loss in a crash costs a rerun, not data. */
static int
finish_dest(struct endpoint *d, unsigned footer_flags)
{
	uint8_t foot[512];
	int r;

	if (d->v) {
		if (d->sync && (r = vhd_flush(d->v)) < 0)
			return tool_lib_err(d->path, r);
		vhd_close(d->v);
		d->v = NULL;
		return EXIT_OK;
	}
	if (d->fixed && (r = vhd_fixed_footer(d->size, footer_flags, foot)) < 0)
		return tool_lib_err(out_name(d), r);
	if (d->stream) {
		if ((r = stream_zeros(d, d->size - d->written)) < 0 ||
		    (d->fixed && (r = stream_write(d, foot, 512)) < 0))
			return write_fail(d, r);
		if (d->gz) {
			r = gzclose(d->gz);
			d->gz = NULL;
			if (r != Z_OK) {
				tool_err(out_name(d), "write error while "
					 "compressing");
				return EXIT_ERROR;
			}
		}
	} else {
		if (!d->dense && ftruncate(d->fd, (off_t)d->size) < 0) {
			tool_err(d->path, "cannot set its size: %s", strerror(errno));
			return EXIT_ERROR;
		}
		if (d->fixed && (r = raw_write(d->fd, foot, 512, d->size)) < 0)
			return write_fail(d, r);
	}
	if (d->std)
		return EXIT_OK;
	if (d->sync && fsync(d->fd) < 0 && errno != EINVAL) {
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


/* --in-place: raw <-> fixed without copying. */
static int
in_place(const char *file, int to, int azure, int json)
{
	int r = vhd_probe(file);
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v;
	const char *what;
	uint64_t size;

	if (r < 0)
		return tool_lib_err(file, r);
	if (r == 1) {
		if ((r = vhd_open(&v, file, VHD_OPEN_RDONLY |
				  VHD_OPEN_NO_PARENT)) < 0)
			return tool_lib_err(file, r);
		r = vhd_get_info(v, &in);
		vhd_close(v);
		if (r < 0)
			return tool_lib_err(file, r);
		if (in.format == VHD_FORMAT_VHDX) {
			tool_err(file, "a VHDX image: --in-place turns raw "
				 "into fixed VHD and back; copy a VHDX with "
				 "vhdtool convert %s NEW", file);
			return EXIT_ERROR;
		}
		if (to == 1 || azure) {
			if (in.type != VHD_TYPE_FIXED) {
				tool_err(file, "already a %s VHD; --azure needs "
					 "a copy: vhdtool convert --azure %s "
					 "NEW.vhd", vhd_type_name(in.type), file);
				return EXIT_ERROR;
			}
			if (!azure) {
				tool_err(file, "already a VHD (a fixed disk)");
				return EXIT_ERROR;
			}
			size = in.virtual_size;
			what = "a fixed VHD";
			goto azure_grow;
		}
		if ((r = vhd_fixed_to_raw(file)) < 0)
			return tool_lib_err(file, r);
		size = in.virtual_size;
		what = "a raw image";
		goto done;
	}
	if (to == 0) {
		tool_err(file, "already a raw image (no VHD footer)");
		return EXIT_ERROR;
	}
	/* A size that is not a whole number of sectors: zeros up to the
	 * next one first (as a copy would), undone if the footer fails. */
	struct stat st;
	off_t padded = 0;
	if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    st.st_size % VHD_SECTOR_SIZE) {
		padded = (st.st_size / VHD_SECTOR_SIZE + 1) * VHD_SECTOR_SIZE;
		if (truncate(file, padded) < 0) {
			tool_err(file, "cannot pad it to %lld bytes: %s",
				 (long long)padded, strerror(errno));
			return EXIT_ERROR;
		}
	}
	if ((r = vhd_raw_to_fixed(file, azure ? VHD_FOOTER_MAX_GEOMETRY : 0)) < 0) {
		if (padded && truncate(file, st.st_size) < 0)
			tool_err(file, "cannot undo the padding: %s",
				 strerror(errno));
		return tool_lib_err(file, r);
	}
	if (padded)
		fprintf(stderr, "vhdtool: %s: size %lld is not a multiple of 512 "
			"bytes; padded with zeros to %lld\n", file,
			(long long)st.st_size, (long long)padded);
	if ((r = vhd_open(&v, file, VHD_OPEN_RDONLY)) < 0)
		return tool_lib_err(file, r);
	r = vhd_get_info(v, &in);
	vhd_close(v);
	if (r < 0)
		return tool_lib_err(file, r);
	size = in.virtual_size;
	what = "a fixed VHD";
azure_grow:
	if (azure && tool_azure_size(size) != size) {
		/* Grown with zeros to a whole MiB: a fixed resize. */
		r = vhd_resize(file, tool_azure_size(size), 0, NULL, NULL);
		if (r < 0)
			return tool_lib_err(file, r);
		size = tool_azure_size(size);
	}
done:
	if (json) {
		printf("{\"file\": ");
		json_str(stdout, file);
		printf(", \"format\": \"%s\", \"size\": %llu}\n",
		       strcmp(what, "a raw image") == 0 ? "raw" : "vhd",
		       (unsigned long long)size);
	} else {
		printf("%s: now %s (disk of %llu bytes)\n", file, what,
		       (unsigned long long)size);
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
		{ "azure",           no_argument,       NULL, 'a' },
		{ "gzip",            no_argument,       NULL, 'z' },
		{ "in-place",        no_argument,       NULL, 'i' },
		{ "ignore-checksum", no_argument,       NULL, 'I' },
		{ "force-share",     no_argument,       NULL, 'U' },
		{ "json",            no_argument,       NULL, 'j' },
		{ "progress",        optional_argument, NULL, 'p' },
		{ "force",           no_argument,       NULL, 'f' },
		{ "sync",            no_argument,       NULL, 'S' },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct endpoint s = { NULL, NULL, -1, 0, 0, 0, NULL, 0, 0, 0, 0, NULL, 0, NULL };
	struct endpoint d = { NULL, NULL, -1, 0, 0, 0, NULL, 0, 0, 0, 0, NULL, 0, NULL };
	struct vhd_create_opts co;
	struct progress pr;
	int c, from = -1, to = -1, ignore = 0, pmode = PROGRESS_OFF, force = 0;
	int azure = 0, gz = 0, inplace = 0, json = 0, rc;
	char head[512];
	size_t headlen = 0;
	uint64_t bs;

	memset(&co, 0, sizeof(co));
	co.struct_size = sizeof(co);
	opterr = 0;
	tool_force_share_hint = 1;
	while ((c = getopt_long(argc, argv, ":F:O:t:b:azijpfSUh", lopts,
				NULL)) != -1) {
		switch (c) {
		case 'U': force_share = VHD_OPEN_FORCE_SHARE; break;
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
			else if (strcmp(optarg, "vhdx") == 0)
				to = 2;
			else
				return tool_usage(usage, argv[0],
					"unknown format '%s' (use raw, vhd or vhdx)", optarg);
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
			if (bs == 0)
				return tool_usage(usage, argv[0], "block size 0: "
					"give a power of two from 512K to 256M "
					"(default 2M)");
			co.block_size = (uint32_t)bs;
			break;
		case 'a': azure = 1; break;
		case 'z': gz = 1; break;
		case 'i': inplace = 1; break;
		case 'I': ignore = 1; break;
		case 'j': json = 1; break;
		case 'p':
			if ((rc = tool_progress_opt(usage, argv, optarg,
						     &pmode)) != EXIT_OK)
				return rc;
			break;
		case 'f': force = 1; break;
		case 'S': d.sync = 1; break;
		case 'h':
			fputs(usage, stdout);
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(usage, argv, c);
		}
	}
	if (inplace) {
		if (argc - optind != 1)
			return tool_usage(usage, argv[0], argc - optind < 1 ?
					  "missing FILE" : "--in-place takes one FILE");
		if (co.type == VHD_TYPE_DYNAMIC || co.block_size || gz || from >= 0)
			return tool_usage(usage, argv[0], "--in-place turns raw "
					  "into fixed VHD and back; it takes only "
					  "--to and --azure");
		if (azure && to == 0)
			return tool_usage(usage, argv[0],
					  "--azure makes a VHD, not raw");
		if (to == 2)
			return tool_usage(usage, argv[0], "--in-place makes a "
					  "fixed VHD or raw, not VHDX");
		return in_place(argv[optind], to, azure, json);
	}
	if (argc - optind != 2)
		return tool_usage(usage, argv[0], argc - optind < 2 ?
				  "missing SRC or DST" : "too many arguments");
	s.path = s.file = argv[optind];
	d.path = argv[optind + 1];
	s.std = strcmp(s.path, "-") == 0;
	d.std = strcmp(d.path, "-") == 0;
	if (s.std)
		s.path = "standard input";
	if (!d.std && ends_with(d.path, ".gz"))
		gz = 1;
	if (azure) {
		if (to == 0 || co.type == VHD_TYPE_DYNAMIC || co.block_size)
			return tool_usage(usage, argv[0],
					  "--azure writes a fixed VHD");
		to = 1;
		co.type = VHD_TYPE_FIXED;
	}
	if (to < 0) {
		char base[4096];
		snprintf(base, sizeof(base), "%s", d.path);
		if (gz && ends_with(base, ".gz"))
			base[strlen(base) - 3] = '\0';
		if (!d.std && tool_name_is_vhdx(base))
			to = 2;
		else
			to = co.type || co.block_size ||
			     (!d.std && tool_name_is_vhd(base));
	}
	if (to == 2) {
		if (d.std || gz || azure)
			return tool_usage(usage, argv[0], "a VHDX is written to "
					  "a file (not a stream, not --azure)");
		out_vhdx = 1;
		co.flags |= VHD_CREATE_VHDX;
		to = 1;
	}
	if (to == 0 && (co.type || co.block_size))
		return tool_usage(usage, argv[0],
				  "--type and --block-size apply to VHD output only");
	if (co.type == VHD_TYPE_FIXED && co.block_size)
		return tool_usage(usage, argv[0],
				  "--block-size applies to dynamic disks only");
	if (to == 1 && !co.type)
		co.type = (d.std || gz) ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
	if (to == 1 && co.type == VHD_TYPE_DYNAMIC && (d.std || gz))
		return tool_usage(usage, argv[0], "a dynamic VHD cannot be "
				  "written as a stream (standard output or .gz); "
				  "use --type fixed or a .vhd file");
	if (d.std && isatty(STDOUT_FILENO) && !force)
		return tool_usage(usage, argv[0], "refusing to write a disk to "
				  "a terminal");
	d.fixed = to == 1 && co.type == VHD_TYPE_FIXED && !out_vhdx;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	progress_init(&pr, pmode, 1);

	/* The source. */
	if (s.std || is_gzip(s.path)) {
		if ((rc = open_stream_source(&s)) != EXIT_OK)
			goto out;
		ssize_t n = stream_read(&s, head, sizeof(head));
		if (n < 0) {
			rc = EXIT_ERROR;
			goto out;
		}
		headlen = (size_t)n;
		const char *fmt = from < 0 ? foreign_format(head, headlen) : NULL;
		if (fmt) {
			rc = tool_foreign_err(s.path, NULL, fmt);
			goto out;
		}
		struct vhd_info hi = { .struct_size = sizeof hi };
		int dyn = from != 0 && headlen == 512 &&
			  vhd_footer_parse((uint8_t *)head, &hi) == 0 &&
			  hi.type != VHD_TYPE_FIXED;
		/* A VHDX is read through its BAT and log: from a file. */
		int vhdx = from != 0 && headlen >= 8 &&
			   memcmp(head, "vhdxfile", 8) == 0;
		if (dyn || vhdx || (to == 1 && !d.fixed)) {
			rc = spool(&s, head, headlen, from, ignore, &pr);
			if (rc != EXIT_OK)
				goto out;
		}
	} else if ((rc = open_source(&s, from, ignore)) != EXIT_OK) {
		goto out;
	}
	if (!s.stream) {
		if ((rc = check_source_size(&s, to, azure)) != EXIT_OK)
			goto out;
		d.size = dest_size(&s, to, azure);
	}
	if ((rc = open_dest(&d, &s, to, &co, force, gz)) != EXIT_OK)
		goto out;
	if (s.stream) {
		rc = copy_stream(&s, &d, from, head, headlen, &pr);
		if (rc == EXIT_OK)
			rc = check_source_size(&s, to, azure);
		d.size = dest_size(&s, to, azure);
	} else {
		rc = copy(&s, &d, &pr);
	}
	progress_end(&pr);
	if (rc != EXIT_OK)
		goto out;
	rc = finish_dest(&d, azure ? VHD_FOOTER_MAX_GEOMETRY : 0);
	if (rc == EXIT_OK) {
		/* With DST "-" standard output is the disk: the report
		 * goes to standard error. */
		FILE *f = d.std ? stderr : stdout;
		char hs[32];
		if (json) {
			fprintf(f, "{\"source\": ");
			json_str(f, s.std ? "-" : argv[optind]);
			fprintf(f, ", \"destination\": ");
			json_str(f, d.std ? "-" : d.path);
			fprintf(f, ", \"format\": \"%s\", \"type\": \"%s\", "
				"\"compressed\": %s, \"size\": %llu}\n",
				out_vhdx ? "vhdx" : to ? "vhd" : "raw",
				to ? vhd_type_name(co.type) : "raw",
				gz ? "true" : "false", (unsigned long long)d.size);
		} else if (!d.std) {
			/* One summary line, like the other commands; not
			 * with a stream on standard output, which cp, dd and
			 * qemu-img leave quiet too. */
			fprintf(f, "%s -> %s: %s%s%s, disk of %s\n", s.path,
				d.path, to ? vhd_type_name(co.type) : "raw",
				out_vhdx ? " VHDX" : to ? " VHD" : " image",
				gz ? " (gzip-compressed)" : "",
				human_size(d.size, hs));
		}
	}
out:
	vhd_close(s.v);
	if (s.fd >= 0)
		close(s.fd);
	if (s.gz)
		gzclose(s.gz);
	if (s.tmp) {
		unlink(s.tmp);
		free(s.tmp);
	}
	vhd_close(d.v);
	if (d.gz)
		gzclose(d.gz);
	if (d.fd >= 0 && !d.std)
		close(d.fd);
	if (rc != EXIT_OK && d.created)
		unlink(d.path);
	return rc;
}
