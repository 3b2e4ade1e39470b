/*
 * main.c - vhdtool: create, inspect, check, convert and merge VHD images.
 * One entry per subcommand in the table below; each lives in cmd_*.c.
 */
#include <stdio.h>
#include <string.h>
#include "tool.h"

static const struct cmd cmds[] = {
	{ "create",     cmd_create,     "create a fixed, dynamic or differencing image" },
	{ "info",       cmd_info,       "describe an image and its chain" },
	{ "check",      cmd_check,      "verify an image's metadata (never writes)" },
	{ "convert",    cmd_convert,    "copy between raw and VHD (sparse-aware)" },
	{ "map",        cmd_map,        "list the allocated and zero extents" },
	{ "merge",      cmd_merge,      "fold a differencing disk into an ancestor" },
	{ "set-parent", cmd_set_parent, "point a differencing disk at another parent" },
	{ "resize",     cmd_resize,     "grow or shrink a disk in place" },
	{ "compact",    cmd_compact,    "reclaim unused space (like Optimize-VHD)" },
	{ "upload",     cmd_upload,     "send a disk to an Azure page blob (data only)" },
	{ "download",   cmd_download,   "fetch an Azure page blob into a sparse file" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void
usage(FILE *f)
{
	fputs("usage: vhdtool COMMAND [OPTIONS] ARGS...\n"
	      "       vhdtool --help | --version\n\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
	fputs("\n'vhdtool COMMAND --help' describes a command.\n"
	      "Exit status: 0 success, 1 error, 2 usage error, 3 damaged image.\n"
	      "Please read the vhdtool(1) manual page for full usage.\n", f);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("vhdtool %s (libvhd %s)\n", VHD_VERSION_STRING,
		       VHD_VERSION_STRING);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc == 2) {
			usage(stdout);
			return EXIT_OK;
		}
		/* "vhdtool help convert" is "vhdtool convert --help". */
		for (size_t i = 0; i < NCMDS; i++) {
			if (strcmp(argv[2], cmds[i].name) == 0) {
				char *av[] = { argv[2], "--help", NULL };
				return cmds[i].run(2, av);
			}
		}
		fprintf(stderr, "vhdtool: unknown command '%s'\n", argv[2]);
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	if (argv[1][0] == '-')
		fprintf(stderr, "vhdtool: unknown option '%s'\n", argv[1]);
	else
		fprintf(stderr, "vhdtool: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
