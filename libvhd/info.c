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
	pthread_rwlock_rdlock(&v->lock);
	info->format = (enum vhd_format)v->drv->format;
	info->type = (enum vhd_type)v->type;
	info->virtual_size = v->size;
	info->file_size = v->file_size;
	info->warnings = v->warnings;
	info->logical_sector_size = 512;
	info->physical_sector_size = 512;
	v->drv->info(v, info);
	pthread_rwlock_unlock(&v->lock);
	return 0;
}
