/*
 * vhdfuse - mount a VHD image as a file (or a directory of the disk and
 * its partitions) with FUSE.
 *
 *   vhdfuse [options] IMAGE MOUNTPOINT
 *
 * Order matters: the image is opened and the mount made while still in
 * the foreground, so every failure is reported with a non-zero exit and
 * no mount is left behind; only then does the daemon detach.  See
 * vhdfuse(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vhdfuse.h"

static const char *prog = "vhdfuse";

static int
usage(FILE *fp, int code)
{
	if (code != 0) {
		/* After the one line that says what is wrong. */
		fprintf(fp, "Try '%s --help' for more information.\n", prog);
		return code;
	}
	fprintf(fp,
"Usage: %s [options] IMAGE MOUNTPOINT\n"
"Mount a VHD image with FUSE.  MOUNTPOINT is a regular file (it becomes\n"
"the disk) or a directory (it shows 'disk' and p1, p2, ... for partitions).\n"
"Unmount with: fusermount3 -u MOUNTPOINT\n"
"\n"
"Options:\n"
"  -r, --read-only        serve the image read-only\n"
"      --parent PATH      parent of a differencing image (overrides locators)\n"
"      --ignore-checksum  accept footer/header checksum errors\n"
"      --cache            use the kernel page cache (allows shared mmap;\n"
"                         default: direct I/O, faster for large transfers)\n"
"      --lock-wait SECS   wait up to SECS for an image another program has\n"
"                         locked (default 5; 0 fails at once)\n"
"  -f, --foreground       stay in the foreground\n"
"  -d, --debug            print FUSE requests (implies -f)\n"
"  -o OPT[,OPT...]        FUSE mount options (allow_other, ...); with\n"
"                         allow_other or allow_root the disk takes the\n"
"                         image's owner and mode, checked by the kernel\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n"
"\n"
"Please read the vhdfuse(1) manual page for full usage.\n", prog);
	return code;
}

/* Does the comma-separated option list contain opt exactly? */
static int
has_opt(const char *list, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	}
	return 0;
}

/* fsname=... with the characters fuse_opt treats specially escaped. */
static char *
fsname_opt(const char *image)
{
	size_t n = strlen(image);
	char *o = malloc(2 * n + 16), *p;

	if (!o)
		return NULL;
	p = o + sprintf(o, "fsname=vhd:");
	for (const char *c = image; *c; c++) {
		if (*c == ',' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	*p = '\0';
	return o;
}

/* The library starts waiting for a lock another program holds. */
static void
lock_waiting(void *arg, const char *msg, unsigned ms)
{
	(void)arg;
	fprintf(stderr, "%s: %s; waiting up to %g s for it\n", prog, msg,
		ms / 1000.0);
}

/* "vhdfuse: IMAGE: problem", the format of all three tools: the
 * library's messages start with "'IMAGE': ", which is dropped. */
static void
open_error(const char *image, int err)
{
	const char *msg = vhd_errmsg_about(image);

	fprintf(stderr, "%s: %s: %s\n", prog, image, *msg ? msg : strerror(-err));
}

/* Fill s->files: the disk, then each partition (directory mode only). */
static int
build_files(struct vf_state *s)
{
	struct vf_file *d = &s->files[0];

	strcpy(d->name, "disk");
	strcpy(d->path, s->file_mode ? "/" : "/disk");
	d->start = 0;
	d->size = s->disk_size;
	s->nfiles = 1;
	if (s->file_mode)
		return 0;
	struct vf_part parts[VF_MAX_FILES - 1];
	int n = vf_read_partitions(s->v, s->disk_size, parts, VF_MAX_FILES - 1);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct vf_file *f = &s->files[s->nfiles++];
		snprintf(f->name, sizeof(f->name), "p%d", parts[i].number);
		snprintf(f->path, sizeof(f->path), "/p%d", parts[i].number);
		f->start = parts[i].start;
		f->size = parts[i].size;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	enum { OPT_PARENT = 256, OPT_IGNORE_CHECKSUM, OPT_DIRECT_IO, OPT_CACHE,
	       OPT_LOCK_WAIT };
	static const struct option longopts[] = {
		{ "read-only", no_argument, NULL, 'r' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "ignore-checksum", no_argument, NULL, OPT_IGNORE_CHECKSUM },
		{ "direct-io", no_argument, NULL, OPT_DIRECT_IO },
		{ "cache", no_argument, NULL, OPT_CACHE },
		{ "lock-wait", required_argument, NULL, OPT_LOCK_WAIT },
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct vf_state st;
	struct vf_state *s = &st;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct vhd_open_opts oo = { .struct_size = sizeof oo };
	int foreground = 0, debug = 0, others = 0, c, r, code = 1;
	char *mnt_abs = NULL, *fsname = NULL;
	const char *image = NULL, *mnt = NULL;
	struct fuse_session *se = NULL;

	/* -o options go straight into the FUSE argument list. */
	if (fuse_opt_add_arg(&args, prog) < 0)
		goto nomem;
	/* Direct I/O by default: requests then reach us at the size the
	 * application used (up to 1 MiB) instead of the 128 KiB readahead
	 * window (measured: 4 GB/s against 0.75 GB/s reading a raw file),
	 * and the disk and partition files cannot show stale pages. */
	s->direct_io = 1;
	vhd_set_lock_wait(5000, lock_waiting, NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:rfdo:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': s->readonly = 1; break;
		case OPT_PARENT: oo.parent_path = optarg; break;
		case OPT_IGNORE_CHECKSUM: oo.flags |= VHD_OPEN_IGNORE_CHECKSUM; break;
		case OPT_DIRECT_IO: s->direct_io = 1; break;
		case OPT_CACHE: s->direct_io = 0; break;
		case OPT_LOCK_WAIT: {
			char *end;
			double d = strtod(optarg, &end);
			if (end == optarg || *end || !(d >= 0 && d <= 3600)) {
				fprintf(stderr, "%s: --lock-wait '%s': expected "
					"seconds from 0 to 3600\n", prog, optarg);
				code = usage(stderr, 2);
				goto out_close;
			}
			vhd_set_lock_wait((unsigned)(d * 1000 + 0.5),
					  lock_waiting, NULL);
			break;
		}
		case 'f': foreground = 1; break;
		case 'd': debug = foreground = 1; break;
		case 'o':
			if (fuse_opt_add_arg(&args, "-o") < 0 ||
			    fuse_opt_add_arg(&args, optarg) < 0)
				goto nomem;
			if (has_opt(optarg, "ro"))
				s->readonly = 1;
			if (has_opt(optarg, "allow_other") ||
			    has_opt(optarg, "allow_root"))
				others = 1;
			break;
		case 'h': code = usage(stdout, 0); goto out_close;
		case 'V':
			printf("vhdfuse %s (libfuse %d.%d)\n", VHD_VERSION_STRING,
			       fuse_version() / 100, fuse_version() % 100);
			code = 0;
			goto out_close;
		case ':':
			fprintf(stderr, "%s: option '%s' needs a value\n", prog,
				argv[optind - 1]);
			code = usage(stderr, 2);
			goto out_close;
		default:
			if (optopt && argv[optind - 1][1] != '-')
				fprintf(stderr, "%s: unknown option '-%c'\n",
					prog, optopt);
			else
				fprintf(stderr, "%s: unknown option '%s'\n",
					prog, argv[optind - 1]);
			code = usage(stderr, 2);
			goto out_close;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "%s: %s\n", prog, argc - optind < 2 ?
			"missing IMAGE or MOUNTPOINT" : "too many arguments");
		code = usage(stderr, 2);
		goto out_close;
	}
	image = argv[optind];
	mnt = argv[optind + 1];
	s->image = image;

	struct stat mst, ist;
	if (stat(mnt, &mst) < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, mnt, strerror(errno));
		goto out_close;
	}
	if (S_ISREG(mst.st_mode))
		s->file_mode = 1;
	else if (!S_ISDIR(mst.st_mode)) {
		fprintf(stderr, "%s: %s: not a regular file or directory\n",
			prog, mnt);
		goto out_close;
	}

	/* Writes through the disk file usually end in fsync or unmount
	 * (dd, cp, mkfs): start their writeback while they arrive. */
	oo.flags |= s->readonly ? VHD_OPEN_RDONLY :
		    VHD_OPEN_RDWR | VHD_OPEN_PACE_WRITES;
	r = vhd_open_opts(&s->v, image, &oo);
	if (r < 0) {
		open_error(image, r);
		code = r == -EBADMSG ? 3 : 1;
		goto out_close;
	}
	struct vhd_info info = { .struct_size = sizeof info };
	r = vhd_get_info(s->v, &info);
	if (r < 0) {
		open_error(image, r);
		goto out_close;
	}
	s->disk_size = info.virtual_size;
	/* As info does: the image opened, but not as written. */
	if (info.warnings & VHD_WARN_FOOTER_FROM_COPY)
		fprintf(stderr, "%s: %s: warning: %s (vhdtool check --repair "
			"restores it)\n", prog, image,
			vhd_warning_text(VHD_WARN_FOOTER_FROM_COPY));
	if (stat(image, &ist) == 0) {
		s->atime = ist.st_atim;
		s->mtime = ist.st_mtim;
		s->ctime = ist.st_ctim;
	}
	s->uid = getuid();
	s->gid = getgid();
	s->mode = s->readonly ? 0444 : 0644;
	/* Seen by other users: let the kernel check their access against
	 * the image's own owner and mode (as qemu-storage-daemon's FUSE
	 * export does), so whoever cannot write the image cannot write the
	 * disk either.  Without allow_other only the mounter sees it. */
	if (others) {
		if (stat(image, &ist) < 0) {
			fprintf(stderr, "%s: '%s': %s\n", prog, image,
				strerror(errno));
			goto out_close;
		}
		s->uid = ist.st_uid;
		s->gid = ist.st_gid;
		s->mode = ist.st_mode & (s->readonly ? 0444 : 0666);
	}
	for (int i = 0; i < VF_MAX_FILES; i++)
		pthread_mutex_init(&s->files[i].blocks_lock, NULL);
	r = build_files(s);
	if (r < 0) {
		fprintf(stderr, "%s: %s: cannot read the partition table: %s\n",
			prog, image, strerror(-r));
		goto out_close;
	}

	/* Ours go before the user's -o options, which may override them. */
	fsname = fsname_opt(image);
	if (!fsname || fuse_opt_insert_arg(&args, 1, "-osubtype=vhd") < 0 ||
	    fuse_opt_insert_arg(&args, 1, fsname) < 0 ||
	    fuse_opt_insert_arg(&args, 1, "-o") < 0 ||
	    (s->readonly && fuse_opt_add_arg(&args, "-oro") < 0) ||
	    (others && fuse_opt_add_arg(&args, "-odefault_permissions") < 0) ||
	    (debug && fuse_opt_add_arg(&args, "-d") < 0))
		goto nomem;

	/* fuse_new rejects unknown -o options with its own message. */
	s->fuse = fuse_new(&args, &vf_ops, sizeof(vf_ops), s);
	if (!s->fuse) {
		fprintf(stderr, "%s: cannot set up FUSE (bad -o option?)\n", prog);
		goto out_close;
	}
	/* Absolute: the daemon changes to / and must still find the mount
	 * point to unmount it on SIGTERM. */
	mnt_abs = realpath(mnt, NULL);
	if (!mnt_abs || fuse_mount(s->fuse, mnt_abs) != 0) {
		fprintf(stderr, "%s: %s: cannot mount\n", prog, mnt);
		goto out_destroy;
	}
	se = fuse_get_session(s->fuse);
	r = vf_parallel_writes(s->fuse);
	if (r < 0) {
		fprintf(stderr, "%s: cannot set up FUSE I/O: %s\n", prog,
			strerror(-r));
		goto out_unmount;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "%s: cannot set signal handlers\n", prog);
		goto out_unmount;
	}
	/* Past this point the mount exists and the parent exits 0. */
	if (fuse_daemonize(foreground) != 0) {
		fprintf(stderr, "%s: cannot run in the background\n", prog);
		goto out_signals;
	}
	r = vf_inval_start(s);
	if (r < 0) {
		fprintf(stderr, "%s: cannot start a thread: %s\n", prog,
			strerror(-r));
		goto out_signals;
	}
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out_inval;
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	r = fuse_loop_mt(s->fuse, cfg);
	fuse_loop_cfg_destroy(cfg);
	code = r < 0 ? 1 : 0;

out_inval:
	vf_inval_stop(s);
out_signals:
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_unmount(s->fuse);
out_destroy:
	fuse_destroy(s->fuse);
out_close:
	fuse_opt_free_args(&args);
	if (s->v) {
		if (!s->readonly && vhd_flush(s->v) < 0) {
			open_error(image, -EIO);
			code = 1;
		}
		vhd_close(s->v);
	}
	free(fsname);
	free(mnt_abs);
	return code;

nomem:
	fprintf(stderr, "%s: out of memory\n", prog);
	code = 1;
	goto out_close;
}
