/* cmd_compact.c - vhdtool compact: reclaim unused space (Optimize-VHD). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tool.h"

static const char usage[] =
	"usage: vhdtool compact [-o OUT [-f]] [--json] [-p] FILE\n";

static const char help[] =
	"Make the dynamic or differencing VHD image FILE smaller: blocks that hold\n"
	"only zeros (a differencing disk: blocks that store no sector) are freed,\n"
	"the remaining blocks are moved down into the gaps, and the file is\n"
	"truncated.  The disk reads the same afterwards, and its unique id stays\n"
	"(children keep working).  In place this is crash-safe: an interruption\n"
	"leaves a valid image with the same content.  Free space inside the guest\n"
	"file system is only reclaimed once it reads as zeros (fstrim through\n"
	"vhdfuse or vhdnbd, or zero-filling it).\n\n"
	"  -o, --output OUT   leave FILE untouched and write the compacted image to\n"
	"                     OUT (a new file)\n"
	"  -f, --force        replace OUT if it exists\n"
	"  -j, --json         print {\"file\", \"output\", \"size_before\", \"size_after\"}\n"
	"  -p, --progress[=never|auto|always]\n"
	"                     show progress (auto: only on a terminal;\n"
	"                     never: none, the default)\n"
	"  -h, --help         show this help\n\n"
	"Exit status: 0 done, 1 error (a fixed disk cannot be compacted), 2 usage\n"
	"error, 3 damaged image.\n";

static uint64_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int
cmd_compact(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "output",   required_argument, NULL, 'o' },
		{ "force",    no_argument,       NULL, 'f' },
		{ "json",     no_argument,       NULL, 'j' },
		{ "progress", optional_argument, NULL, 'p' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct progress pr;
	const char *file, *out = NULL;
	int c, r, rc, json = 0, force = 0, pmode = PROGRESS_OFF;
	uint64_t before, after;
	struct stat a, b;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:fjph", lopts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'f': force = 1; break;
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
	if ((rc = tool_one_file(usage, argc, argv, &file)) != EXIT_OK)
		return rc;
	if (force && !out)
		return tool_usage(usage, argv[0], "--force applies to -o only");
	if ((rc = tool_need_vhd(file)) != EXIT_OK)
		return rc;
	if (out && stat(out, &b) == 0) {
		if (stat(file, &a) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			tool_err(out, "is FILE itself (leave out -o to compact "
				 "in place)");
			return EXIT_ERROR;
		}
		/* Nor an image of FILE's chain: compacting a differencing
		 * disk reads its parents. */
		struct tool_inputs in = { 0 };
		struct vhd *v;
		tool_inputs_add(&in, file, -1, "FILE");
		if (vhd_open(&v, file, VHD_OPEN_RDONLY | VHD_OPEN_NOLOCK) == 0) {
			tool_inputs_add_chain(&in, v, file);
			vhd_close(v);
		}
		if (tool_check_output(&in, out, -1, out) != EXIT_OK)
			return EXIT_ERROR;
		if (!force) {
			tool_err(out, "already exists (use -f to replace it)");
			return EXIT_ERROR;
		}
		if (unlink(out) < 0) {
			tool_err(out, "cannot remove: %s", strerror(errno));
			return EXIT_ERROR;
		}
	}
	before = file_size(file);
	progress_init(&pr, pmode, 0);
	r = vhd_compact(file, out, 0, progress_cb, &pr);
	progress_end(&pr);
	if (r < 0)
		return tool_lib_err(r == -ENOENT || !out ? file : out, r);
	after = file_size(out ? out : file);
	if (json) {
		printf("{\"file\": ");
		json_str(stdout, file);
		printf(", \"output\": ");
		json_str(stdout, out ? out : file);
		printf(", \"size_before\": %llu, \"size_after\": %llu}\n",
		       (unsigned long long)before, (unsigned long long)after);
	} else {
		char x[32], y[32];
		printf("%s: %s -> %s%s%s\n", file, human_size(before, x),
		       human_size(after, y), out ? " in " : "", out ? out : "");
	}
	return EXIT_OK;
}
