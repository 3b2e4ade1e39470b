/*
 * main.c - vhdtool: create, inspect, check, convert and merge VHD images.
 * One entry per subcommand in the table below; each lives in cmd_*.c.
 */
#include <stdio.h>
#include <stdlib.h>
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
#ifndef VHDTOOL_NO_AZURE
	{ "upload",     cmd_upload,     "send a disk to an Azure page blob (data only)" },
	{ "download",   cmd_download,   "fetch an Azure page blob into a sparse file" },
#endif
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
	fputs("\nEvery command takes --lock-wait SECONDS: how long to wait for an\n"
	      "image another program has locked (default 5; 0 fails at once).\n"
	      "\n'vhdtool COMMAND --help' describes a command.\n"
	      "Exit status: 0 success, 1 error, 2 usage error, 3 damaged image.\n"
	      "Please read the vhdtool(1) manual page for full usage.\n", f);
}

/* The library starts waiting for a lock another program holds. */
static void
lock_waiting(void *arg, const char *msg, unsigned ms)
{
	/* The record names the file and the holder apart: "a.vhd: in
	 * use by ..." */
	const struct vhd_diag *d = vhd_last_error();

	(void)arg;
	if (d->code == VHD_CODE_LOCKED && d->file)
		fprintf(stderr, "vhdtool: %s: %s; waiting up to %g s for "
			"it\n", d->file, d->message, ms / 1000.0);
	else
		fprintf(stderr, "vhdtool: %s; waiting up to %g s for it\n",
			msg, ms / 1000.0);
}

/* Seconds (a decimal number, at most an hour) to milliseconds, or -1. */
int
tool_lock_wait_ms(const char *s)
{
	char *end;
	double d = strtod(s, &end);

	if (end == s || *end || !(d >= 0 && d <= 3600))
		return -1;
	return (int)(d * 1000 + 0.5);
}

/* --lock-wait SECONDS is taken wherever it stands before "--", for every
 * command, and removed from argv.  Returns the new argc, or -1. */
static int
take_lock_wait(int argc, char **argv)
{
	int j = 1, ms = -1;

	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (strncmp(argv[i], "--lock-wait=", 12) == 0) {
			v = argv[i] + 12;
		} else if (strcmp(argv[i], "--lock-wait") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "vhdtool: option '--lock-wait' "
					"needs a value\n");
				return -1;
			}
			v = argv[++i];
		} else {
			argv[j++] = argv[i];
			continue;
		}
		if ((ms = tool_lock_wait_ms(v)) < 0) {
			fprintf(stderr, "vhdtool: --lock-wait '%s': expected "
				"seconds from 0 to 3600\n", v);
			return -1;
		}
	}
	argv[j] = NULL;
	vhd_set_lock_wait(ms < 0 ? 5000 : (unsigned)ms, lock_waiting, NULL);
	return j;
}

int
main(int argc, char **argv)
{
	/* Before the command or after it: "vhdtool --lock-wait 0 info X". */
	if ((argc = take_lock_wait(argc, argv)) < 0) {
		fputs("Try 'vhdtool --help' for more information.\n", stderr);
		return EXIT_USAGE;
	}
	if (argc < 2) {
		fprintf(stderr, "vhdtool: missing COMMAND\n"
			"Try 'vhdtool --help' for more information.\n");
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
		fprintf(stderr, "vhdtool: unknown command '%s'\n"
			"Try 'vhdtool --help' for more information.\n", argv[2]);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < NCMDS; i++) {
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	}
	if (argv[1][0] == '-')
		fprintf(stderr, "vhdtool: unknown option '%s'\n", argv[1]);
	else
		fprintf(stderr, "vhdtool: unknown command '%s'\n", argv[1]);
	fprintf(stderr, "Try 'vhdtool --help' for more information.\n");
	return EXIT_USAGE;
}
