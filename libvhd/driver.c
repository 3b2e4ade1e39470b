/* driver.c - the table of image-format drivers, detection by content,
 * and the raw driver (blktap's raw parents at the bottom of a chain).
 * See internal.h, "image-format drivers", for what a driver supplies. */
#include <stdio.h>
#include "internal.h"

/* Probed in order; VHD last, as the fallback that names what is wrong
 * with a file that is no image at all. */
static const struct vhd_driver *const drivers[] = {
	&vhd_drv_vhdx,
	&vhd_drv_vhd,
};

int
vhd_driver_detect(struct vhd_io *io, uint64_t file_size,
		  const struct vhd_driver **out)
{
	size_t n = sizeof(drivers) / sizeof(drivers[0]);

	for (size_t i = 0; i < n; i++) {
		int r = drivers[i]->probe(io, file_size);
		if (r < 0)
			return r;
		if (r > 0) {
			*out = drivers[i];
			return 0;
		}
	}
	*out = &vhd_drv_vhd;
	return 0;
}

static int
raw_probe(struct vhd_io *io, uint64_t file_size)
{
	(void)io;
	(void)file_size;
	return 0;               /* raw is chosen by the caller, never probed */
}

static int
raw_open(struct vhd *v, unsigned flags)
{
	(void)flags;
	v->kind = VHD_KIND_RAW;
	v->size = v->file_size;
	return 0;
}

static int
raw_read(struct vhd *v, uint8_t *buf, size_t n, uint64_t off)
{
	return vhd_file_read(v, buf, n, off);
}

static int
raw_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
	unsigned *status, int *depth)
{
	(void)off;
	*run = len;
	*status = VHD_MAP_DATA;
	if (depth)
		*depth = v->depth;
	return 0;
}

static void
raw_info(struct vhd *v, struct vhd_info *info)
{
	info->type = VHD_TYPE_NONE;
	info->allocated_bytes = v->size;
}

const struct vhd_driver vhd_drv_raw = {
	"raw", VHD_FORMAT_RAW, raw_probe, raw_open, raw_read, raw_map,
	raw_info, NULL, NULL, NULL, 0,       /* never differencing */
	NULL, NULL, NULL, NULL,
};

int
vhd_path_is_vhdx(const char *path)
{
	struct vhd_io *io;
	uint64_t fs;
	int r;

	if ((r = vhd_vfs_open(NULL, &io, path, 0, VHD_LOCK_NONE)) < 0)
		return r;
	r = io->ops->get_size(io, &fs);
	if (r == 0)
		r = vhd_drv_vhdx.probe(io, fs);
	io->ops->close(io);
	return r < 0 ? vhd_err(-r, "'%s': %s", path, strerror(-r)) : r;
}
