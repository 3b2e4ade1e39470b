/* info.c - describing an image (vhd_get_info). */
#include <stdio.h>
#include "internal.h"

static int get_info(struct vhd *v, struct vhd_info *info);

int
vhd_get_info(struct vhd *v, struct vhd_info *out)
{
	struct vhd_info info;
	int r;

	if (!v || !out)
		return vhd_err(EINVAL, "vhd_get_info: bad arguments");
	if ((r = vhd_struct_out_ok(out, VHD_INFO_V1, "vhd_info")) < 0)
		return r;
	if ((r = get_info(v, &info)) < 0)
		return r;
	vhd_struct_out(out, &info, sizeof(info));
	return 0;
}

static int
get_info(struct vhd *v, struct vhd_info *info)
{
	memset(info, 0, sizeof(*info));
	info->struct_size = sizeof(*info);
	if (v->kind == VHD_KIND_RAW) {
		info->virtual_size = v->size;
		info->file_size = v->file_size;
		info->allocated_bytes = v->size;
		return 0;
	}
	pthread_rwlock_rdlock(&v->lock);
	info->type = (enum vhd_type)v->type;
	info->virtual_size = v->size;
	info->cylinders = v->ft.cylinders;
	info->heads = v->ft.heads;
	info->sectors_per_track = v->ft.spt;
	info->chs_size = (uint64_t)v->ft.cylinders * v->ft.heads *
			 v->ft.spt * 512;
	info->original_size = v->ft.orig_size;
	info->file_size = v->file_size;
	memcpy(info->unique_id, v->ft.uuid, 16);
	memcpy(info->creator_app, v->ft.creator_app, 4);
	info->creator_version = v->ft.creator_version;
	memcpy(info->creator_os, v->ft.creator_os, 4);
	info->timestamp = v->ft.timestamp;
	info->features = v->ft.features;
	info->saved_state = v->ft.saved_state;
	info->warnings = v->warnings;
	if (v->type == VHD_TYPE_FIXED) {
		info->allocated_bytes = v->size;
	} else {
		info->block_size = v->block_size;
		info->max_table_entries = v->bat_entries;
		for (uint32_t i = 0; i < v->bat_entries; i++)
			if (v->bat[i] != VHD_BAT_UNUSED)
				info->allocated_blocks++;
		info->allocated_bytes = (uint64_t)info->allocated_blocks *
					v->block_size;
	}
	if (v->type == VHD_TYPE_DIFF) {
		memcpy(info->parent_id, v->hdr.parent_id, 16);
		info->parent_timestamp = v->hdr.parent_ts;
		if (vhd_utf16_to_utf8(v->header_raw + 64, 512, 1,
				      info->parent_name,
				      sizeof(info->parent_name)) < 0)
			snprintf(info->parent_name, sizeof(info->parent_name),
				 "?");
	}
	pthread_rwlock_unlock(&v->lock);
	return 0;
}
