/* cmd_map.c - vhdtool map: the extents of a disk (data or zero, and which
 * image of a chain holds them). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "tool.h"

static const char usage[] =
	"usage: vhdtool map [--json] [--parent PATH] [--ignore-checksum] [-U] FILE\n";

static const char help[] =
	"List the extents of the disk in the VHD image FILE: ranges stored as data\n"
	"and ranges that read as zeros because no image stores them.  For a\n"
	"differencing disk, depth says which image of the chain holds the data\n"
	"(0 = FILE itself, 1 = its parent, ...; -1 = nowhere).\n\n"
	"  -j, --json            print a JSON array of {offset, length, data, zero,\n"
	"                        depth, file}\n"
	"  -P, --parent PATH     use PATH as the parent of FILE\n"
	"      --ignore-checksum open an image whose checksums are wrong\n"
	"  -U, --force-share     read the image even while another program writes\n"
	"                        it (as qemu-img -U); the map may then be\n"
	"                        inconsistent\n"
	"  -h, --help            show this help\n";

/* Path of the image at depth in the chain of v. */
static const char *
chain_path(struct vhd *v, int depth)
{
	for (int i = 0; v && i < depth; i++)
		v = vhd_parent(v);
	return v ? vhd_path(v) : "";
}

static void
emit(struct vhd *v, int json, int *first, uint64_t off, uint64_t len,
     unsigned status, int depth)
{
	int data = (status & VHD_MAP_DATA) != 0;

	if (json) {
		printf("%s\n  {\"offset\": %" PRIu64 ", \"length\": %" PRIu64
		       ", \"data\": %s, \"zero\": %s, \"depth\": %d, \"file\": ",
		       *first ? "" : ",", off, len, data ? "true" : "false",
		       data ? "false" : "true", data ? depth : -1);
		if (data)
			json_str(stdout, chain_path(v, depth));
		else
			printf("null");
		printf("}");
	} else {
		printf("%#18" PRIx64 " %#18" PRIx64 "  %-4s %5d  %s\n", off, len,
		       data ? "data" : "zero", data ? depth : -1,
		       data ? chain_path(v, depth) : "");
	}
	*first = 0;
}

int
cmd_map(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json",            no_argument,       NULL, 'j' },
		{ "parent",          required_argument, NULL, 'P' },
		{ "ignore-checksum", no_argument,       NULL, 'I' },
		{ "force-share",     no_argument,       NULL, 'U' },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY, NULL };
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v = NULL;
	const char *file;
	int c, json = 0, r, rc = EXIT_OK, first = 1;

	opterr = 0;
	tool_force_share_hint = 1;
	while ((c = getopt_long(argc, argv, ":jP:Uh", lopts, NULL)) != -1) {
		switch (c) {
		case 'U': oo.flags |= VHD_OPEN_FORCE_SHARE; break;
		case 'j': json = 1; break;
		case 'P': oo.parent_path = optarg; break;
		case 'I': oo.flags |= VHD_OPEN_IGNORE_CHECKSUM; break;
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
	if ((rc = tool_need_vhd(file)) != EXIT_OK)
		return rc;
	if ((r = vhd_open_opts(&v, file, &oo)) < 0)
		return tool_lib_err(file, r);
	if ((r = vhd_get_info(v, &in)) < 0) {
		rc = tool_lib_err(file, r);
		goto out;
	}
	if (json)
		printf("[");
	else
		printf("%18s %18s  %-4s %5s  %s\n", "offset", "length", "type",
		       "depth", "file");

	/* Coalesce the library's runs (one per block or less) into maximal
	 * extents of equal status and depth. */
	uint64_t off = 0, cur_off = 0, cur_len = 0;
	unsigned cur_status = 0;
	int cur_depth = 0;
	while (off < in.virtual_size) {
		uint64_t run = 0;
		unsigned status = 0;
		int depth = -1;

		r = vhd_map(v, off, in.virtual_size - off, &run, &status, &depth);
		if (r < 0) {
			if (json)
				printf("]\n");
			fflush(stdout);
			rc = tool_lib_err(file, r);
			goto out;
		}
		if (run == 0) {
			tool_err(file, "map made no progress at offset %" PRIu64, off);
			rc = EXIT_ERROR;
			goto out;
		}
		if (run > in.virtual_size - off)
			run = in.virtual_size - off;
		status &= VHD_MAP_DATA;
		if (!status)
			depth = -1;
		if (cur_len && status == cur_status && depth == cur_depth) {
			cur_len += run;
		} else {
			if (cur_len)
				emit(v, json, &first, cur_off, cur_len,
				     cur_status, cur_depth);
			cur_off = off;
			cur_len = run;
			cur_status = status;
			cur_depth = depth;
		}
		off += run;
	}
	if (cur_len)
		emit(v, json, &first, cur_off, cur_len, cur_status, cur_depth);
	if (json)
		printf("\n]\n");
	fflush(stdout);
	if (oo.flags & VHD_OPEN_FORCE_SHARE)
		tool_force_share_note(file);
out:
	vhd_close(v);
	return rc;
}
