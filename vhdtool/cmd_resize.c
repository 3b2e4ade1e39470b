/* cmd_resize.c - vhdtool resize: grow or shrink a disk in place. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tool.h"

static const char usage[] =
	"usage: vhdtool resize [--force] [--json] [-p] FILE [+]SIZE\n";

static const char help[] =
	"Change the size of the disk in the VHD image FILE to SIZE (or grow it by\n"
	"SIZE with a leading +).  Fixed and dynamic disks grow freely; a dynamic\n"
	"disk's block table grows as needed, moving the first blocks to the end of\n"
	"the file.  Shrinking is refused when the part cut off holds data, unless\n"
	"--force.  A differencing disk is resized like a dynamic one (its parent\n"
	"is not changed); growing it past its parent's size is refused unless\n"
	"--force, because libvhdi and 7-Zip cannot read such a child (for us and\n"
	"QEMU it reads zeros past the parent's end).  The footer's\n"
	"original size is updated too, so every reader agrees on the new size.\n"
	"The resize is crash-safe: an interruption leaves the old or the new size\n"
	"with the data intact.  The file systems inside are not resized.\n\n"
	"  -f, --force        shrink even if the part cut off holds data (lost);\n"
	"                     grow a differencing disk past its parent's size\n"
	"  -j, --json         print {\"file\", \"type\", \"old_size\", \"new_size\"}\n"
	"  -p, --progress[=never|auto|always]\n"
	"                     show progress (auto: only on a terminal;\n"
	"                     never: none, the default)\n"
	"  -h, --help         show this help\n\n"
	"SIZE is in bytes or with a suffix K, M, G, T (binary); a multiple of 512,\n"
	"at most 2040G.  Exit status: 0 resized (or already that size), 1 error,\n"
	"2 usage error, 3 damaged image.\n";

/* A differencing disk larger than its parent is valid for us and QEMU
 * (past the parent's end it reads zeros), but libvhdi and 7-Zip cannot
 * read it: growing past the parent needs --force. */
static int
check_parent_size(const char *file, uint64_t ns)
{
	struct vhd *v;
	struct vhd_info pi = { .struct_size = sizeof pi };
	char a[32];
	int r = vhd_open(&v, file, VHD_OPEN_RDONLY | VHD_OPEN_NOLOCK);

	if (r < 0)
		return tool_lib_err(file, r);
	r = vhd_parent(v) ? vhd_get_info(vhd_parent(v), &pi) : -ENOENT;
	vhd_close(v);
	if (r < 0 || ns <= pi.virtual_size)
		return EXIT_OK;
	tool_err(file, "growing a differencing disk past its parent's size "
		 "(%s) makes an image libvhdi and 7-Zip cannot read (past "
		 "the parent's end it would read zeros); --force does it "
		 "anyway, or grow the parent first", human_size(pi.virtual_size, a));
	return EXIT_ERROR;
}

static int
get_size(const char *file, struct vhd_info *in)
{
	struct vhd *v;
	int r = vhd_open(&v, file, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT |
			 VHD_OPEN_NOLOCK);

	if (r < 0)
		return r;
	r = vhd_get_info(v, in);
	vhd_close(v);
	return r;
}

int
cmd_resize(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "force",    no_argument,       NULL, 'f' },
		{ "json",     no_argument,       NULL, 'j' },
		{ "progress", optional_argument, NULL, 'p' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_info in = { .struct_size = sizeof in };
	struct progress pr;
	unsigned flags = 0;
	int c, r, rc, json = 0, pmode = PROGRESS_OFF;
	uint64_t ns, old;
	const char *file, *arg;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fjph", lopts, NULL)) != -1) {
		switch (c) {
		case 'f': flags |= VHD_RESIZE_FORCE; break;
		case 'j': json = 1; break;
		case 'p':
			if ((rc = tool_progress_opt(usage, argv, optarg,
						     &pmode)) != EXIT_OK)
				return rc;
			break;
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
				  "missing FILE or SIZE" : "too many arguments");
	file = argv[optind];
	arg = argv[optind + 1];
	if (parse_size(arg[0] == '+' ? arg + 1 : arg, &ns) < 0)
		return tool_usage(usage, argv[0], "bad size '%s'", arg);
	if ((rc = tool_need_vhd(file)) != EXIT_OK)
		return rc;
	if ((r = get_size(file, &in)) < 0)
		return tool_lib_err(file, r);
	old = in.virtual_size;
	if (arg[0] == '+') {
		if (ns > UINT64_MAX - old)
			return tool_usage(usage, argv[0], "bad size '%s'", arg);
		ns += old;
	}
	if (ns == 0 || ns % 512) {
		tool_err(file, "size %llu is not a positive multiple of 512 "
			 "bytes", (unsigned long long)ns);
		return EXIT_ERROR;
	}
	if (in.type == VHD_TYPE_DIFF && ns > old && !(flags & VHD_RESIZE_FORCE) &&
	    (rc = check_parent_size(file, ns)) != EXIT_OK)
		return rc;
	progress_init(&pr, pmode, 0);
	r = vhd_resize(file, ns, flags, progress_cb, &pr);
	progress_end(&pr);
	if (r == -ENOTEMPTY) {
		struct tool_msg m;
		tool_msg_save(&m);
		return tool_msg_err(file, file, &m, "--force drops it", r);
	}
	if (r < 0)
		return tool_lib_err(file, r);
	if (json) {
		printf("{\"file\": ");
		json_str(stdout, file);
		printf(", \"type\": \"%s\", \"old_size\": %llu, \"new_size\": %llu}\n",
		       vhd_type_name(in.type), (unsigned long long)old,
		       (unsigned long long)ns);
	} else {
		char a[32], b[32];
		if (old == ns)
			printf("%s: already %s (%llu bytes)\n", file,
			       human_size(ns, a), (unsigned long long)ns);
		else
			printf("%s: resized from %s to %s (%llu bytes)\n", file,
			       human_size(old, a), human_size(ns, b),
			       (unsigned long long)ns);
	}
	return EXIT_OK;
}
