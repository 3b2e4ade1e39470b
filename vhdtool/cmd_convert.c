/*
 * cmd_convert.c - vhdtool convert: raw <-> VHD, VHD -> VHD, sparse-aware;
 * compressed (.gz) and standard input/output streams; Azure-ready fixed
 * VHDs; raw <-> fixed in place.
 *
 * The copying is the library's copy engine (vhd_copy, libvhd/copy.c):
 * extents, zero detection, reflinks and copy_file_range, the writer
 * thread, streams and gzip, spooling.  Here are the options, the choices
 * they make (formats, sizes, which destination), the checks that name
 * what is wrong in the user's terms, and the report.
 *
 * A fixed VHD destination is written as raw data followed by its footer,
 * so it can also be a stream.  A stream source (standard input, a .gz
 * file) is read once, front to back; its last 512 bytes decide whether it
 * was a fixed VHD (a valid footer whose size matches) or raw.  A dynamic
 * VHD source or destination needs random access: a stream is then first
 * copied (sparse) to a temporary file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tool.h"

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

struct endpoint {
	const char *path;       /* as given: for messages */
	const char *file;       /* SRC: the file to open (path, or the spool) */
	struct vhd_copy_end *e; /* the library's end of the copy */
	struct vhd_copy_end *spooled; /* SRC: the stream a spool came from
					 (owns the spool file) */
	uint64_t size;          /* disk size */
	int dense;              /* DST: a device; write every byte */
	int stream;             /* sequential only: stdin/stdout or .gz */
	int fixed;              /* DST: raw data then a fixed VHD footer */
	int std;                /* standard input or output */
	int sync;               /* DST: durable before exit (--sync) */
};


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

static int
ends_with(const char *p, const char *suffix)
{
	size_t n = strlen(p), k = strlen(suffix);
	return n >= k && strcasecmp(p + n - k, suffix) == 0;
}

static const char *
out_name(struct endpoint *d)
{
	return d->std ? "standard output" : d->path;
}

/* A failed vhd_copy: named after the end that failed. */
static int
copy_err(struct endpoint *s, struct endpoint *d, int r)
{
	if (vhd_copy_failed(s->e) || (s->spooled && vhd_copy_failed(s->spooled)))
		return tool_lib_err(s->path, r);
	return tool_lib_err(out_name(d), r);
}

static int
cancel(void *arg)
{
	(void)arg;
	return tool_interrupted != 0;
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
				TOOL_SRC_CHECKSUM_HINT);
	s->e = t.e;
	s->size = t.size;
	if (rc == EXIT_OK && !vhd_copy_image(s->e) && s->size == 0 &&
	    stat(s->file, &st) == 0 && S_ISCHR(st.st_mode)) {
		/* /dev/zero, /dev/urandom: no end to copy up to. */
		tool_err(s->path, "is a character device with no size "
			 "(it never ends); give a file, a block device "
			 "or a stream of known length (e.g. head -c "
			 "SIZE %s | vhdtool convert - DST)", s->path);
		return EXIT_ERROR;
	}
	return rc;
}

/* A stream source (standard input, a .gz file): read once, front to
 * back; its first bytes tell what it holds.  One that must be read at
 * random (a dynamic VHD or a VHDX in it, or for a dynamic destination) is
 * spooled to a temporary file by the library, and that is opened. */
static int
open_stream_source(struct endpoint *s, int from, int ignore, int random,
		   char *head, size_t *headlen, const struct vhd_copy_opts *co)
{
	const char *fmt, *spool;
	int r;

	r = vhd_copy_src_stream(&s->e, s->std ? NULL : s->file,
				s->std ? STDIN_FILENO : -1, s->path);
	if (r < 0 || (r = vhd_copy_head(s->e, head, 512, headlen)) < 0)
		return tool_lib_err(s->path, r);
	s->stream = 1;
	fmt = from < 0 ? foreign_format(head, *headlen) : NULL;
	if (fmt)
		return tool_foreign_err(s->path, NULL, fmt);
	struct vhd_info hi = { .struct_size = sizeof hi };
	int dyn = from != 0 && *headlen == 512 &&
		  vhd_footer_parse((uint8_t *)head, &hi) == 0 &&
		  hi.type != VHD_TYPE_FIXED;
	/* A VHDX is read through its BAT and log: from a file. */
	int vhdx = from != 0 && *headlen >= 8 && memcmp(head, "vhdxfile", 8) == 0;
	if (!dyn && !vhdx && !random)
		return EXIT_OK;
	if ((r = vhd_copy_spool(s->e, co, &spool)) < 0)
		return tool_lib_err(s->path, r);
	s->spooled = s->e;
	s->e = NULL;
	s->stream = 0;
	/* Messages name what the user gave (s->path), not the spool. */
	s->file = spool;
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
	if (vhd_copy_image(s->e))
		tool_inputs_add_chain(in, vhd_copy_image(s->e), s->path);
}

/* Create and open DST (the library's destination end). */
static int
open_dest(struct endpoint *d, const struct endpoint *s, int to_vhd,
	  const struct vhd_create_opts *co, int force, int gz, int azure)
{
	struct vhd_copy_dst_opts o = { .struct_size = sizeof o };
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
	} else if (stat(d->path, &st) == 0) {
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
	o.name = out_name(d);
	o.fd = d->std ? STDOUT_FILENO : -1;
	o.format = out_vhdx ? VHD_FORMAT_VHDX : to_vhd ? VHD_FORMAT_VHD :
		   VHD_FORMAT_RAW;
	o.type = d->fixed ? VHD_TYPE_FIXED : co->type;
	o.block_size = co->block_size;
	o.size = d->size;
	o.flags = (gz ? VHD_COPY_GZIP : 0) | (d->dense ? VHD_COPY_DENSE : 0) |
		  (d->sync ? VHD_COPY_SYNC : 0);
	o.footer_flags = azure ? VHD_FOOTER_MAX_GEOMETRY : 0;
	if ((r = vhd_copy_dst_create(&d->e, d->std ? NULL : d->path, &o)) < 0)
		return tool_lib_err(out_name(d), r);
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
	struct endpoint s = { NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0 };
	struct endpoint d = { NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0 };
	struct vhd_copy_opts cpo = { .struct_size = sizeof cpo };
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
		case 'O':
			/* raw 0, vhd (qemu's vpc) 1, vhdx 2 (a destination
			 * only: a VHDX source is found by its content). */
			if (strcmp(optarg, "raw") == 0)
				*(c == 'F' ? &from : &to) = 0;
			else if (strcmp(optarg, "vhd") == 0 || strcmp(optarg, "vpc") == 0)
				*(c == 'F' ? &from : &to) = 1;
			else if (c == 'O' && strcmp(optarg, "vhdx") == 0)
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

	tool_catch_signals(1);
	progress_init(&pr, pmode, 1);

	cpo.progress = progress_cb;
	cpo.progress_arg = &pr;
	cpo.cancel = cancel;

	/* The source. */
	if (s.std || vhd_copy_is_gzip(s.path)) {
		rc = open_stream_source(&s, from, ignore, to == 1 && !d.fixed,
					head, &headlen, &cpo);
		if (rc != EXIT_OK)
			goto out;
	} else if ((rc = open_source(&s, from, ignore)) != EXIT_OK) {
		goto out;
	}
	if (!s.stream) {
		if ((rc = check_source_size(&s, to, azure)) != EXIT_OK)
			goto out;
		d.size = dest_size(&s, to, azure);
	}
	if ((rc = open_dest(&d, &s, to, &co, force, gz, azure)) != EXIT_OK)
		goto out;
	/* A stream tells whether it ends in a fixed VHD's footer. */
	cpo.flags = from == 0 ? VHD_COPY_FROM_RAW :
		    from == 1 ? VHD_COPY_FROM_VHD : 0;
	int r = vhd_copy(s.e, d.e, &cpo);
	progress_end(&pr);
	if (r < 0) {
		rc = copy_err(&s, &d, r);
		goto out;
	}
	if (s.stream) {
		s.size = vhd_copy_size(s.e);
		if ((rc = check_source_size(&s, to, azure)) != EXIT_OK)
			goto out;
		d.size = dest_size(&s, to, azure);
	}
	if ((r = vhd_copy_finish(d.e, d.size)) < 0)
		rc = tool_lib_err(out_name(&d), r);
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
	vhd_copy_close(s.e);
	vhd_copy_close(s.spooled);
	/* A destination not finished (failure, interruption) is removed. */
	vhd_copy_close(d.e);
	return rc;
}
