/* cmd_merge.c - vhdtool merge and set-parent: differencing-disk chains. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tool.h"

static const char merge_usage[] =
	"usage: vhdtool merge [--keep] [--into ANCESTOR] [--json] [-p] CHILD\n";

static const char merge_help[] =
	"Write everything the differencing disk CHILD stores into its parent (or,\n"
	"with --into, into an ancestor further up, taking the images in between\n"
	"along), then remove CHILD and every image between it and the target.\n"
	"The merge is crash-safe: until it completes the chain reads the same,\n"
	"and an interrupted merge completes when run again (a VHDX chain, a\n"
	"Hyper-V checkpoint, too: the target's new DataWriteGuid is recorded\n"
	"in the image above it first).  Other children of the removed images\n"
	"are left without a parent; merge only chains you own.\n\n"
	"  -k, --keep               keep CHILD and the intermediate images (they\n"
	"                           read the same until the target is written)\n"
	"  -i, --into ANCESTOR      merge into this image of CHILD's chain\n"
	"  -j, --json               print {\"child\", \"into\", \"removed\": [...]}\n"
	"  -p, --progress[=never|auto|always]\n"
	"                           show progress on standard error (auto: only\n"
	"                           on a terminal)\n"
	"  -h, --help               show this help\n";

static const char sp_usage[] =
	"usage: vhdtool set-parent [--force] [--json] CHILD NEWPARENT\n";

static const char sp_help[] =
	"Point the differencing disk CHILD at NEWPARENT (after moving or copying the\n"
	"parent): rewrites the parent unique id, timestamp, name and locators (a\n"
	"VHDX: parent_linkage and paths, through its log).  NEWPARENT must be of\n"
	"CHILD's format, have the unique id (VHDX: DataWriteGuid) CHILD records\n"
	"and CHILD's size, unless --force.\n\n"
	"  -f, --force   accept a parent with another unique id (only if it has\n"
	"                the same content, e.g. a copy made by another tool), or\n"
	"                of another size (a parent grown since: CHILD reads it up\n"
	"                to its own size, as check, info and vhdfuse do)\n"
	"  -j, --json    print {\"child\", \"parent\"} as JSON\n"
	"  -h, --help    show this help\n";

static int
same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int
cmd_merge(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "keep",     no_argument,       NULL, 'k' },
		{ "into",     required_argument, NULL, 'i' },
		{ "json",     no_argument,       NULL, 'j' },
		{ "progress", optional_argument, NULL, 'p' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *child, *into = NULL;
	char *chain[64];
	int n = 0, target = -1, keep = 0, pmode = PROGRESS_OFF, c, r;
	int rc = EXIT_OK, json = 0, nrm = 0;
	struct progress pr;
	struct vhd *v = NULL;
	struct vhd_info in = { .struct_size = sizeof in };

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ki:jph", lopts, NULL)) != -1) {
		switch (c) {
		case 'k': keep = 1; break;
		case 'i': into = optarg; break;
		case 'j': json = 1; break;
		case 'p':
			if ((rc = tool_progress_opt(merge_usage, argv, optarg,
						     &pmode)) != EXIT_OK)
				return rc;
			break;
		case 'h':
			fputs(merge_usage, stdout);
			fputs(merge_help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(merge_usage, argv, c);
		}
	}
	if (argc - optind != 1)
		return tool_usage(merge_usage, argv[0], argc - optind < 1 ?
				  "missing CHILD" : "too many arguments");
	child = argv[optind];

	/* Learn the chain (paths as the library resolved them) first, so
	 * we know what to remove afterwards. */
	if ((r = vhd_open(&v, child, VHD_OPEN_RDONLY)) < 0)
		return tool_lib_err(child, r);
	if ((r = vhd_get_info(v, &in)) < 0) {
		rc = tool_lib_err(child, r);
		vhd_close(v);
		return rc;
	}
	if (in.type != VHD_TYPE_DIFF) {
		vhd_close(v);
		tool_err(child, "is a %s disk, not a differencing disk: nothing "
			 "to merge", vhd_type_name(in.type));
		return EXIT_ERROR;
	}
	for (struct vhd *p = v; p && n < 64; p = vhd_parent(p))
		chain[n++] = strdup(vhd_path(p));
	vhd_close(v);
	for (int i = 0; i < n; i++) {
		if (!chain[i]) {
			tool_err(NULL, "out of memory");
			rc = EXIT_ERROR;
			goto out;
		}
	}
	if (!into) {
		target = 1;
	} else {
		for (int i = 1; i < n && target < 0; i++)
			if (same_file(chain[i], into))
				target = i;
		if (target < 0) {
			tool_err(child, "'%s' is not an ancestor of it (its chain: "
				 "%s%s%s%s)", into, n > 1 ? chain[1] : "",
				 n > 2 ? ", " : "", n > 2 ? chain[2] : "",
				 n > 3 ? ", ..." : "");
			rc = EXIT_ERROR;
			goto out;
		}
	}
	progress_init(&pr, pmode, 1);
	r = vhd_merge(child, into, progress_cb, &pr);
	progress_end(&pr);
	if (r < 0) {
		rc = tool_lib_err(child, r);
		goto out;
	}
	if (json) {
		printf("{\"child\": ");
		json_str(stdout, child);
		printf(", \"into\": ");
		json_str(stdout, chain[target]);
		printf(", \"removed\": [");
	} else {
		printf("merged '%s' into '%s'\n", child, chain[target]);
	}
	if (keep)
		goto out;
	/* The child first: should a removal fail, what is left is still a
	 * consistent (shorter) chain above the target. */
	for (int i = 0; i < target; i++) {
		const char *path = i == 0 ? child : chain[i];
		if (unlink(path) < 0) {
			tool_err(path, "cannot remove: %s", strerror(errno));
			rc = EXIT_ERROR;
			break;
		}
		if (json) {
			printf("%s", nrm++ ? ", " : "");
			json_str(stdout, path);
		} else {
			printf("removed '%s'\n", path);
		}
	}
out:
	if (json && target >= 0 && r >= 0)
		printf("]}\n");
	for (int i = 0; i < n; i++)
		free(chain[i]);
	return rc;
}

int
cmd_set_parent(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "json",  no_argument, NULL, 'j' },
		{ "help",  no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	int c, r, json = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fjh", lopts, NULL)) != -1) {
		switch (c) {
		case 'f': flags |= VHD_SET_PARENT_FORCE; break;
		case 'j': json = 1; break;
		case 'h':
			fputs(sp_usage, stdout);
			fputs(sp_help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(sp_usage, argv, c);
		}
	}
	if (argc - optind != 2)
		return tool_usage(sp_usage, argv[0], argc - optind < 2 ?
				  "missing CHILD or NEWPARENT" : "too many arguments");
	r = vhd_probe(argv[optind + 1]);
	if (r <= 0) {
		if (r < 0)
			return tool_lib_err(argv[optind + 1], r);
		tool_err(argv[optind + 1], "not a VHD or VHDX image (a parent must be one)");
		return EXIT_ERROR;
	}
	r = vhd_set_parent(argv[optind], argv[optind + 1], flags);
	if (r < 0) {
		enum vhd_code code = vhd_last_error()->code;
		if (!(flags & VHD_SET_PARENT_FORCE) &&
		    (code == VHD_CODE_PARENT_MISMATCH ||
		     code == VHD_CODE_PARENT_SIZE)) {
			struct tool_msg m;
			tool_msg_save(&m);
			return tool_msg_err(argv[optind], argv[optind], &m,
					    "--force accepts it", r);
		}
		return tool_lib_err(argv[optind], r);
	}
	if (json) {
		printf("{\"child\": ");
		json_str(stdout, argv[optind]);
		printf(", \"parent\": ");
		json_str(stdout, argv[optind + 1]);
		printf("}\n");
	} else {
		printf("'%s' now has parent '%s'\n", argv[optind],
		       argv[optind + 1]);
	}
	return EXIT_OK;
}
