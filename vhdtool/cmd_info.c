/* cmd_info.c - vhdtool info: describe an image and its chain. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tool.h"

static const char usage[] =
	"usage: vhdtool info [--json] [--parent PATH] [-U] FILE\n";

static const char help[] =
	"Describe the VHD image FILE: type, sizes, geometry, allocation, creator,\n"
	"and for a differencing disk its parent and the whole chain.\n\n"
	"  -j, --json          print one JSON object instead of text\n"
	"  -P, --parent PATH   use PATH as the parent of FILE instead of the parent\n"
	"                      locators stored in it\n"
	"  -U, --force-share   read the image even while another program writes\n"
	"                      it (as qemu-img -U); what is shown may then be\n"
	"                      inconsistent\n"
	"  -h, --help          show this help\n\n"
	"The disk size is the footer's current size.  The CHS capacity\n"
	"(cylinders * heads * sectors * 512) is shown too because QEMU takes it as\n"
	"the disk size for some creators (it is often a little smaller): QEMU\n"
	"before 10.0 for every creator but win, qem2, d2v, tap and CTXS; QEMU 10.0\n"
	"and later only for vpc and qemu.  When QEMU reads another size it is said,\n"
	"for each QEMU version.\n"
	"A differencing disk whose parent cannot be opened is still described, then\n"
	"the problem is reported on standard error and the exit status is 1 (parent\n"
	"missing) or 3 (parent of another disk, or a loop).\n";

/* The QEMU versions whose vpc size rule info describes (vhd_qemu_size):
 * the one before 10.0 (Debian 12 has 7.2) and 10.0's. */
#define QEMU_OLD 702
#define QEMU_NEW 1000

/* One line per tolerated quirk, in the library's words. */
static void
print_warnings(unsigned warnings)
{
	for (unsigned bit = 1; bit; bit <<= 1)
		if ((warnings & bit) && vhd_warning_text(bit))
			printf("warning:           %s\n", vhd_warning_text(bit));
}

static int
zero_id(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return 0;
	return 1;
}

/* A VHDX GUID as Windows shows it (Data1..3 are little-endian on disk). */
static const char *
ms_guid_str(const uint8_t g[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1], g[0], g[5], g[4],
		 g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
		 g[15]);
	return out;
}

/* The chain under a VHDX (each level a VHDX: mixed chains are refused),
 * text or JSON: depth, type, DataWriteGuid, file. */
static void
print_vhdx_chain(struct vhd *v, int json,
		 const struct tool_msg *parent_problem)
{
	char u[37];
	int depth = 0;

	printf(json ? "  \"chain\": [" : "chain:\n");
	for (struct vhd *p = v; p; p = vhd_parent(p), depth++) {
		struct vhd_info pi = { .struct_size = sizeof pi };
		if (vhd_get_info(p, &pi) < 0)
			break;
		ms_guid_str(pi.unique_id, u);
		if (!json) {
			printf("  %d  %-12s %s  %s\n", depth,
			       vhd_type_name(pi.type), u, vhd_path(p));
			continue;
		}
		printf("%s\n    {\"file\": ", depth ? "," : "");
		json_str(stdout, vhd_path(p));
		printf(", \"format\": \"%s\", \"type\": \"%s\", "
		       "\"data_write_guid\": \"%s\"}",
		       pi.format == VHD_FORMAT_VHDX ? "vhdx" : "vhd",
		       vhd_type_name(pi.type), u);
	}
	if (json)
		printf("\n  ]");
	else if (parent_problem)
		printf("  %d  (missing)\n", depth);
}

/* A VHDX has no footer, geometry or creator fields: its own lines. */
static void
print_vhdx(struct vhd *v, const struct vhd_info *in, const char *file,
	   int json, const struct tool_msg *parent_problem)
{
	char h[32], u[37], d[37], l[37];
	const char *type = vhd_type_name(in->type);
	int first = 1;

	ms_guid_str(in->unique_id, u);
	ms_guid_str(in->disk_id, d);
	ms_guid_str(in->parent_id, l);
	if (json) {
		printf("{\n  \"file\": ");
		json_str(stdout, file);
		printf(",\n  \"format\": \"vhdx\",\n  \"type\": \"%s\",\n", type);
		printf("  \"virtual_size\": %llu,\n",
		       (unsigned long long)in->virtual_size);
		printf("  \"logical_sector_size\": %u,\n", in->logical_sector_size);
		printf("  \"physical_sector_size\": %u,\n",
		       in->physical_sector_size);
		printf("  \"block_size\": %u,\n", in->block_size);
		printf("  \"bat_entries\": %u,\n", in->max_table_entries);
		printf("  \"allocated_blocks\": %u,\n", in->allocated_blocks);
		printf("  \"allocated_bytes\": %llu,\n",
		       (unsigned long long)in->allocated_bytes);
		printf("  \"file_size\": %llu,\n", (unsigned long long)in->file_size);
		printf("  \"data_write_guid\": \"%s\",\n", u);
		printf("  \"disk_id\": \"%s\",\n", d);
		printf("  \"log_replayed\": %s,\n",
		       in->warnings & VHD_WARN_LOG_REPLAYED ? "true" : "false");
		printf("  \"warnings\": [");
		for (unsigned bit = 1; bit; bit <<= 1) {
			if (!(in->warnings & bit) || !vhd_warning_text(bit))
				continue;
			printf("%s", first ? "" : ", ");
			json_str(stdout, vhd_warning_text(bit));
			first = 0;
		}
		printf("],\n  \"parent_path\": ");
		if (in->type == VHD_TYPE_DIFF)
			json_str(stdout, in->parent_name);
		else
			printf("null");
		if (in->type == VHD_TYPE_DIFF)
			printf(",\n  \"parent_linkage\": \"%s\"", l);
		else
			printf(",\n  \"parent_linkage\": null");
		printf(",\n  \"parent\": ");
		if (vhd_parent(v))
			json_str(stdout, vhd_path(vhd_parent(v)));
		else
			printf("null");
		printf(",\n  \"parent_missing\": %s,\n",
		       parent_problem ? "true" : "false");
		printf("  \"parent_problem\": ");
		if (parent_problem)
			json_str(stdout, parent_problem->text);
		else
			printf("null");
		printf(",\n");
		print_vhdx_chain(v, 1, parent_problem);
		printf("\n}\n");
		return;
	}
	printf("file:              %s\n", file);
	printf("format:            VHDX\n");
	printf("type:              %s\n", type);
	printf("virtual size:      %llu bytes (%s)\n",
	       (unsigned long long)in->virtual_size, human_size(in->virtual_size, h));
	printf("sector size:       %u logical, %u physical\n",
	       in->logical_sector_size, in->physical_sector_size);
	printf("block size:        %u bytes (%s)\n", in->block_size,
	       human_size(in->block_size, h));
	printf("allocated blocks:  %u\n", in->allocated_blocks);
	printf("allocated bytes:   %llu (%s)\n",
	       (unsigned long long)in->allocated_bytes,
	       human_size(in->allocated_bytes, h));
	printf("file size:         %llu bytes (%s)\n",
	       (unsigned long long)in->file_size, human_size(in->file_size, h));
	printf("data write guid:   %s\n", u);
	printf("disk id:           %s  [page 83 data]\n", d);
	if (in->type == VHD_TYPE_DIFF) {
		printf("parent path:       %s\n", in->parent_name);
		printf("parent linkage:    %s  [its DataWriteGuid]\n", l);
		if (parent_problem)
			printf("parent:            MISSING (%s)\n",
			       tool_msg_text(parent_problem, file));
		else if (vhd_parent(v))
			printf("parent:            %s\n", vhd_path(vhd_parent(v)));
	}
	print_warnings(in->warnings);
	if (in->type == VHD_TYPE_DIFF)
		print_vhdx_chain(v, 0, parent_problem);
}

static void
print_text(struct vhd *v, const struct vhd_info *in, const char *file,
	   const struct tool_msg *parent_problem)
{
	char h[32], u[37], t[32], c1[32], c2[32];

	printf("file:              %s\n", file);
	printf("type:              %s\n", vhd_type_name(in->type));
	printf("virtual size:      %llu bytes (%s)  [footer current size]\n",
	       (unsigned long long)in->virtual_size, human_size(in->virtual_size, h));
	printf("CHS capacity:      %llu bytes (%s)",
	       (unsigned long long)in->chs_size, human_size(in->chs_size, h));
	printf("\n");
	uint64_t q_old = vhd_qemu_size(in, QEMU_OLD);
	uint64_t q_new = vhd_qemu_size(in, QEMU_NEW);
	if (q_old == q_new && q_old != in->virtual_size)
		printf("                   QEMU (7.2 and 10.0 alike) takes the CHS "
		       "capacity as the\n                   disk size for this "
		       "creator: it reads %llu bytes\n                   "
		       "(create --chs-round avoids this)\n",
		       (unsigned long long)q_old);
	else if (q_old != q_new)
		printf("                   QEMU before 10.0 reads %llu bytes%s\n"
		       "                   QEMU 10.0 and later reads %llu bytes%s\n",
		       (unsigned long long)q_old,
		       q_old == in->chs_size ? " (the CHS capacity)" :
		       " (the current size)", (unsigned long long)q_new,
		       q_new == in->chs_size ? " (the CHS capacity)" :
		       " (the current size)");
	printf("geometry (C/H/S):  %u/%u/%u\n", in->cylinders, in->heads,
	       in->sectors_per_track);
	if (in->original_size != in->virtual_size)
		printf("original size:     %llu bytes (%s)  [size at creation]\n",
		       (unsigned long long)in->original_size,
		       human_size(in->original_size, h));
	if (in->type != VHD_TYPE_FIXED) {
		printf("block size:        %u bytes (%s)\n", in->block_size,
		       human_size(in->block_size, h));
		printf("allocated blocks:  %u of %u\n", in->allocated_blocks,
		       in->max_table_entries);
		if (in->unaligned_blocks)
			printf("unaligned blocks:  %u, data not on a 4 KiB boundary "
			       "(QEMU's layout): uncached\n"
			       "                   4 KiB writes read two pages "
			       "each; convert writes an aligned copy\n",
			       in->unaligned_blocks);
	}
	printf("allocated bytes:   %llu (%s)\n",
	       (unsigned long long)in->allocated_bytes,
	       human_size(in->allocated_bytes, h));
	printf("file size:         %llu bytes (%s)\n",
	       (unsigned long long)in->file_size, human_size(in->file_size, h));
	printf("unique id:         %s\n", uuid_str(in->unique_id, u));
	printf("creator:           %s %u.%u on %s\n",
	       creator_str(in->creator_app, c1), in->creator_version >> 16,
	       in->creator_version & 0xffff,
	       in->creator_os[0] ? creator_str(in->creator_os, c2) : "(none)");
	printf("timestamp:         %s\n", vhd_time_str(in->timestamp, t));
	if (in->saved_state)
		printf("saved state:       yes\n");
	print_warnings(in->warnings);
	if (in->type != VHD_TYPE_DIFF)
		return;
	printf("parent name:       %s\n", in->parent_name);
	printf("parent unique id:  %s%s\n", uuid_str(in->parent_id, u),
	       zero_id(in->parent_id) ? "  [none: a raw parent]" : "");
	printf("parent timestamp:  %s\n", vhd_time_str(in->parent_timestamp, t));
	if (parent_problem)
		printf("parent:            MISSING (%s)\n",
		       tool_msg_text(parent_problem, file));
	else if (vhd_parent(v))
		printf("parent:            %s\n", vhd_path(vhd_parent(v)));
	printf("chain:\n");
	int depth = 0;
	for (struct vhd *p = v; p; p = vhd_parent(p), depth++) {
		struct vhd_info pi = { .struct_size = sizeof pi };
		if (vhd_get_info(p, &pi) < 0)
			break;
		printf("  %d  %-12s %s  %s\n", depth,
		       pi.type == VHD_TYPE_NONE ? "raw" : vhd_type_name(pi.type),
		       uuid_str(pi.unique_id, u), vhd_path(p));
	}
	if (parent_problem)
		printf("  %d  (missing)\n", depth);
}

static void
print_json(struct vhd *v, const struct vhd_info *in, const char *file,
	   const struct tool_msg *parent_problem)
{
	char u[37], t[32], c[32];
	int first = 1;

	printf("{\n  \"file\": ");
	json_str(stdout, file);
	printf(",\n  \"type\": \"%s\",\n", vhd_type_name(in->type));
	printf("  \"virtual_size\": %llu,\n", (unsigned long long)in->virtual_size);
	printf("  \"chs_size\": %llu,\n", (unsigned long long)in->chs_size);
	/* qemu_size: QEMU before 10.0 (the one tests run); qemu_10_size:
	 * QEMU 10.0 and later. */
	printf("  \"qemu_size\": %llu,\n",
	       (unsigned long long)vhd_qemu_size(in, QEMU_OLD));
	printf("  \"qemu_10_size\": %llu,\n",
	       (unsigned long long)vhd_qemu_size(in, QEMU_NEW));
	printf("  \"original_size\": %llu,\n", (unsigned long long)in->original_size);
	printf("  \"geometry\": {\"cylinders\": %u, \"heads\": %u, \"sectors\": %u},\n",
	       in->cylinders, in->heads, in->sectors_per_track);
	/* Every key in every type: null where it does not apply (a fixed
	 * disk has no blocks, a disk without a parent no parent fields). */
	if (in->type == VHD_TYPE_FIXED) {
		printf("  \"block_size\": null,\n");
		printf("  \"max_table_entries\": null,\n");
		printf("  \"allocated_blocks\": null,\n");
		printf("  \"unaligned_blocks\": null,\n");
	} else {
		printf("  \"block_size\": %u,\n", in->block_size);
		printf("  \"max_table_entries\": %u,\n", in->max_table_entries);
		printf("  \"allocated_blocks\": %u,\n", in->allocated_blocks);
		printf("  \"unaligned_blocks\": %u,\n", in->unaligned_blocks);
	}
	printf("  \"allocated_bytes\": %llu,\n", (unsigned long long)in->allocated_bytes);
	printf("  \"file_size\": %llu,\n", (unsigned long long)in->file_size);
	printf("  \"unique_id\": \"%s\",\n", uuid_str(in->unique_id, u));
	printf("  \"creator\": {\"app\": ");
	json_str(stdout, creator_str(in->creator_app, c));
	printf(", \"version\": \"%u.%u\", \"os\": ", in->creator_version >> 16,
	       in->creator_version & 0xffff);
	json_str(stdout, creator_str(in->creator_os, c));
	printf("},\n  \"timestamp\": \"%s\",\n", vhd_time_str(in->timestamp, t));
	printf("  \"saved_state\": %s,\n", in->saved_state ? "true" : "false");
	printf("  \"warnings\": [");
	for (unsigned bit = 1; bit; bit <<= 1) {
		if (!(in->warnings & bit) || !vhd_warning_text(bit))
			continue;
		printf("%s", first ? "" : ", ");
		json_str(stdout, vhd_warning_text(bit));
		first = 0;
	}
	printf("],\n");
	if (in->type == VHD_TYPE_DIFF) {
		printf("  \"parent_name\": ");
		json_str(stdout, in->parent_name);
		printf(",\n  \"parent_unique_id\": \"%s\",\n",
		       uuid_str(in->parent_id, u));
		printf("  \"parent_timestamp\": \"%s\",\n",
		       vhd_time_str(in->parent_timestamp, t));
	} else {
		printf("  \"parent_name\": null,\n");
		printf("  \"parent_unique_id\": null,\n");
		printf("  \"parent_timestamp\": null,\n");
	}
	printf("  \"parent\": ");
	if (vhd_parent(v))
		json_str(stdout, vhd_path(vhd_parent(v)));
	else
		printf("null");
	printf(",\n  \"parent_missing\": %s,\n", parent_problem ? "true" : "false");
	printf("  \"parent_problem\": ");
	if (parent_problem)
		json_str(stdout, parent_problem->text);
	else
		printf("null");
	printf(",\n");
	printf("  \"chain\": [");
	first = 1;
	for (struct vhd *p = v; p; p = vhd_parent(p)) {
		struct vhd_info pi = { .struct_size = sizeof pi };
		if (vhd_get_info(p, &pi) < 0)
			break;
		printf("%s\n    {\"file\": ", first ? "" : ",");
		json_str(stdout, vhd_path(p));
		printf(", \"type\": \"%s\", \"unique_id\": \"%s\"}",
		       pi.type == VHD_TYPE_NONE ? "raw" : vhd_type_name(pi.type),
		       uuid_str(pi.unique_id, u));
		first = 0;
	}
	printf("\n  ]\n}\n");
}

int
cmd_info(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json",   no_argument,       NULL, 'j' },
		{ "parent", required_argument, NULL, 'P' },
		{ "force-share", no_argument,  NULL, 'U' },
		{ "help",   no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY, NULL };
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v = NULL;
	const char *file;
	struct tool_msg *parent_problem = NULL, *damaged = NULL;
	int c, json = 0, r, rc = EXIT_OK, parent_err = 0;

	opterr = 0;
	tool_force_share_hint = 1;
	while ((c = getopt_long(argc, argv, ":jP:Uh", lopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'P': oo.parent_path = optarg; break;
		case 'U': oo.flags |= VHD_OPEN_FORCE_SHARE; break;
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
	r = vhd_open_opts(&v, file, &oo);
	if (r < 0) {
		/* Describe what can be described: first past bad checksums
		 * (a damaged image: exit 3), then without the parent (a
		 * missing parent is only a warning). */
		int err = r;

		if (err == -EBUSY)      /* tried and waited once: enough */
			return tool_lib_err(file, err);
		struct tool_msg *msg = malloc(sizeof(*msg)), *pmsg = NULL;
		if (msg)
			tool_msg_save(msg);
		int perr = err;
		struct vhd_open_opts o2 = oo;

		o2.flags |= VHD_OPEN_IGNORE_CHECKSUM;
		if (err == -EBADMSG && (r = vhd_open_opts(&v, file, &o2)) == 0) {
			damaged = msg;
		} else {
			/* What went wrong once checksums were no object is
			 * what is wrong with the parent. */
			if ((pmsg = malloc(sizeof(*pmsg))) != NULL) {
				if (err == -EBADMSG)
					tool_msg_save(pmsg);
				else if (msg)
					*pmsg = *msg;
				else
					memset(pmsg, 0, sizeof(*pmsg));
			}
			perr = err == -EBADMSG ? r : err;
			o2.flags |= VHD_OPEN_NO_PARENT;
			o2.parent_path = NULL;
			if (vhd_open_opts(&v, file, &o2) == 0 &&
			    vhd_get_info(v, &in) == 0 && in.type == VHD_TYPE_DIFF) {
				parent_problem = pmsg;
				parent_err = perr;
				if (in.warnings & (VHD_WARN_FOOTER_CHECKSUM |
						   VHD_WARN_HEADER_CHECKSUM))
					damaged = msg;
				else
					free(msg);
			} else {
				vhd_close(v);
				rc = msg ? tool_msg_err(file, file, msg, NULL,
							err) :
				     tool_lib_err(file, err);
				free(msg);
				free(pmsg);
				return rc;
			}
		}
	}
	r = vhd_get_info(v, &in);
	if (r < 0) {
		rc = tool_lib_err(file, r);
		goto out;
	}
	if (in.format == VHD_FORMAT_VHDX)
		print_vhdx(v, &in, file, json, parent_problem);
	else if (json)
		print_json(v, &in, file, parent_problem);
	else
		print_text(v, &in, file, parent_problem);
	fflush(stdout);
	if (oo.flags & VHD_OPEN_FORCE_SHARE)
		tool_force_share_note(file);
	if (damaged) {
		tool_msg_err(file, file, damaged, NULL, -EBADMSG);
		rc = EXIT_DAMAGED;
	}
	/* The description is out, but the image cannot be used as it is:
	 * an error, not a warning. */
	if (parent_problem && rc == EXIT_OK)
		rc = parent_err == -EBADMSG ? EXIT_DAMAGED : EXIT_ERROR;
	if (parent_problem)
		tool_err(file, "parent not available: %s",
			 tool_msg_text(parent_problem, file));
out:
	free(parent_problem);
	free(damaged);
	vhd_close(v);
	return rc;
}
