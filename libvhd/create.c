/* create.c - new fixed, dynamic and differencing images. */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"

static int
wr(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	int r = io->ops->pwrite(io, buf, n, off);

	if (r < 0)
		return vhd_err(-r, "'%s': cannot write at offset %llu: %s",
			       io->name ? io->name : "image",
			       (unsigned long long)off, strerror(-r));
	return 0;
}

/* Parent facts a child records. */
struct parent_facts {
	uint64_t size;
	uint8_t uuid[16];
	uint16_t cyl;
	uint8_t heads, spt;
};

static int
read_parent(struct vhd_vfs *vfs, const char *path, struct parent_facts *pf)
{
	struct vhd *p;
	struct vhd_open_opts oo = { sizeof(oo), VHD_OPEN_RDONLY |
				    VHD_OPEN_FORMAT_VHD | VHD_OPEN_NO_PARENT |
				    VHD_OPEN_NOLOCK, NULL };
	int r = vhd_open_vfs(&p, vfs, path, &oo);

	if (r < 0)
		return r;
	pf->size = p->size;
	memcpy(pf->uuid, p->ft.uuid, 16);
	pf->cyl = p->ft.cylinders;
	pf->heads = p->ft.heads;
	pf->spt = p->ft.spt;
	vhd_close(p);
	return 0;
}

int
vhd_create_type(const struct vhd_create_opts *o, const char *name,
		enum vhd_type *type)
{
	enum vhd_type t = o->type;

	if (t == VHD_TYPE_NONE)
		t = o->parent ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC;
	if (t != VHD_TYPE_FIXED && t != VHD_TYPE_DYNAMIC && t != VHD_TYPE_DIFF)
		return vhd_err(EINVAL, "'%s': unknown disk type %d", name,
			       (int)t);
	if ((t == VHD_TYPE_DIFF) != (o->parent != NULL))
		return vhd_err(EINVAL, "'%s': a differencing disk needs a "
			       "parent, and only it takes one", name);
	*type = t;
	return 0;
}

int
vhd_create_child_size(const char *name, uint64_t size, uint64_t parent_size)
{
	if (size && size != parent_size)
		return vhd_err(EINVAL, "'%s': a child has its parent's size "
			       "(%llu), not %llu", name,
			       (unsigned long long)parent_size,
			       (unsigned long long)size);
	return 0;
}

static int
create_io(struct vhd_vfs *vfs, struct vhd_io *io,
	  const struct vhd_create_opts *o, const char *child_path)
{
	struct vhd_footer f;
	struct parent_facts pf;
	uint8_t foot[512], hdr[1024];
	enum vhd_type type = o->type;
	uint64_t size = o->size;
	uint32_t bs = o->block_size ? o->block_size : VHD_DEFAULT_BLOCK_SIZE;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	/* Messages name the file, like every other libvhd message. */
	const char *name = child_path && *child_path ? child_path : "image";
	int r;

	if (o->flags & VHD_CREATE_VHDX)
		return vhdx_create_io(vfs, io, o, child_path);
	if (o->flags & VHD_CREATE_SECTOR_4K)
		return vhd_err(EINVAL, "'%s': VHD sectors are 512 bytes (4096 "
			       "is for VHDX)", name);
	if ((r = vhd_create_type(o, name, &type)) < 0)
		return r;
	if (type != VHD_TYPE_FIXED &&
	    (bs < 4096 || bs > (256u << 20) || (bs & (bs - 1))))
		return vhd_err(EINVAL, "'%s': block size %u: expected a power "
			       "of two from 4 KiB to 256 MiB", name, bs);
	memset(&f, 0, sizeof(f));
	memset(&pf, 0, sizeof(pf));
	if (type == VHD_TYPE_DIFF) {
		if ((r = read_parent(vfs, o->parent, &pf)) < 0)
			return r;
		if ((r = vhd_create_child_size(name, size, pf.size)) < 0)
			return r;
		size = pf.size;
		f.cylinders = pf.cyl;
		f.heads = pf.heads;
		f.spt = pf.spt;
	} else {
		if (o->flags & VHD_CREATE_CHS_ROUND)
			size = vhd_chs_round_up(size);
		if (size == 0 || size % 512)
			return vhd_err(EINVAL, "'%s': size %llu: expected a "
				       "positive multiple of 512", name,
				       (unsigned long long)size);
		if (size > VHD_MAX_DISK_SIZE)
			return vhd_err(EINVAL, "'%s': size %llu exceeds the VHD "
				       "limit of %llu bytes (2040 GiB)", name,
				       (unsigned long long)size,
				       (unsigned long long)VHD_MAX_DISK_SIZE);
		vhd_chs(size, &f.cylinders, &f.heads, &f.spt);
	}
	f.features = 2;
	f.version = 0x00010000;
	f.data_offset = type == VHD_TYPE_FIXED ? VHD_NO_OFFSET : 512;
	f.timestamp = vhd_time_now();
	memcpy(f.creator_app, VHD_CREATOR_APP, 4);
	f.creator_version = VHD_CREATOR_VER;
	memcpy(f.creator_os, "Wi2k", 4);  /* what QEMU writes too */
	f.orig_size = f.cur_size = size;
	f.type = (uint32_t)type;
	if (o->unique_id) {
		memcpy(f.uuid, o->unique_id, 16);
	} else {
		if ((r = vhd_vfs_random(vfs, f.uuid, 16)) < 0)
			return vhd_err(-r, "'%s': no random bytes for the unique "
				       "id: %s", name, strerror(-r));
		f.uuid[6] = (uint8_t)((f.uuid[6] & 0x0f) | 0x40);
		f.uuid[8] = (uint8_t)((f.uuid[8] & 0x3f) | 0x80);
	}
	vhd_footer_encode(&f, foot);

	if (type == VHD_TYPE_FIXED) {
		/* Extending the file gives the zeros (sparse where the file
		 * system can). */
		if ((r = wr(io, foot, 512, size)) < 0)
			return r;
		goto sync;
	}

	uint64_t entries = (size + bs - 1) / bs;
	/* Only a child of a parent above 2040 GiB (blktap makes them) gets
	 * here: its entry count must fit the header's 32-bit field, and its
	 * blocks the BAT's 32-bit sector offsets. */
	if (entries > UINT32_MAX / 4)
		return vhd_err(EINVAL, "'%s': a disk of %llu bytes needs %llu "
			       "blocks of %u bytes, more than a VHD BAT can "
			       "address; use a larger block size", name,
			       (unsigned long long)size,
			       (unsigned long long)entries, bs);
	uint64_t bat_off = 1536, bat_len = align_up(entries * 4, 512);
	struct vhd_header h = { .data_offset = VHD_NO_OFFSET,
				.version = 0x00010000,
				.max_entries = (uint32_t)entries,
				.block_size = bs };
	memset(hdr, 0, sizeof(hdr));
	if (type == VHD_TYPE_DIFF) {
		memcpy(h.parent_id, pf.uuid, 16);
		h.parent_ts = vhd_vfs_mtime(vfs, o->parent);
		r = vhd_locators_build_vfs(vfs, child_path, o->parent, hdr,
					   1536, &blob, &blob_len);
		if (r < 0)
			return vhd_err(-r, "'%s': cannot record the parent path "
				       "'%s': %s", name, o->parent, strerror(-r));
		/* Locator data goes between the header and the BAT, as
		 * Windows puts it: QEMU allocates its first block right after
		 * the BAT and would overwrite anything there.  The room left
		 * over lets set-parent write new locators beside the current
		 * ones (SPEC.md section 11). */
		bat_off = 1536 + align_up(2 * blob_len > VHD_LOC_RESERVE ?
					  2 * blob_len : VHD_LOC_RESERVE, 512);
	}
	uint64_t end = bat_off + bat_len;
	h.table_offset = bat_off;
	vhd_header_encode(&h, hdr);
	if ((r = wr(io, foot, 512, 0)) < 0 ||
	    (r = wr(io, hdr, 1024, 512)) < 0)
		goto out;
	{
		uint8_t ff[65536];
		memset(ff, 0xff, sizeof(ff));
		for (uint64_t o2 = 0; o2 < bat_len; o2 += sizeof(ff)) {
			size_t k = bat_len - o2 < sizeof(ff) ?
				   (size_t)(bat_len - o2) : sizeof(ff);
			if ((r = wr(io, ff, k, bat_off + o2)) < 0)
				goto out;
		}
	}
	if (blob_len && (r = wr(io, blob, blob_len, 1536)) < 0)
		goto out;
	if ((r = wr(io, foot, 512, end)) < 0)
		goto out;
sync:
	r = io->ops->flush(io);
	if (r < 0)
		r = vhd_err(-r, "'%s': cannot sync: %s",
			    io->name ? io->name : "image", strerror(-r));
out:
	free(blob);
	return r;
}

int
vhd_create_io(struct vhd_io *io, const struct vhd_create_opts *opts)
{
	struct vhd_create_opts o;
	int r;

	if (!io || !opts)
		return vhd_err(EINVAL, "vhd_create_io: bad arguments");
	if ((r = vhd_io_check(io, "vhd_create_io")) < 0 ||
	    (r = vhd_struct_in(&o, sizeof(o), VHD_CREATE_OPTS_V1, opts,
			       "vhd_create_opts")) < 0)
		return r;
	return create_io(NULL, io, &o, io->name ? io->name : "");
}

int
vhd_create(const char *path, const struct vhd_create_opts *opts)
{
	return vhd_create_vfs(NULL, path, opts);
}

int
vhd_create_vfs(struct vhd_vfs *vfs, const char *path,
	       const struct vhd_create_opts *opts)
{
	struct vhd_create_opts o;
	struct vhd_io *io, *plock = NULL;
	int r;

	if (!path || !opts)
		return vhd_err(EINVAL, "vhd_create: bad arguments");
	if ((r = vhd_vfs_use(&vfs, "vhd_create_vfs")) < 0)
		return r;
	if ((r = vhd_struct_in(&o, sizeof(o), VHD_CREATE_OPTS_V1, opts,
			       "vhd_create_opts")) < 0)
		return r;
	/* A child records its parent's unique id and size: no writer may
	 * change the parent while we read them (issue: a child made on a
	 * parent being served read-write changed under it afterwards). */
	if (o.parent && (r = vhd_vfs_open(vfs, &plock, o.parent, 0,
					      VHD_LOCK_READ)) < 0)
		return r;
	r = vhd_vfs_open(vfs, &io, path, VHD_IO_RDWR | VHD_IO_CREATE,
			 VHD_LOCK_NONE);
	if (r < 0) {
		if (plock)
			plock->ops->close(plock);
		return r;
	}
	r = create_io(vfs, io, &o, path);
	io->ops->close(io);
	if (plock)
		plock->ops->close(plock);
	if (r < 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", vhd_errmsg());
		vhd_vfs_unlink(vfs, path);
		vhd_err(1, "%s", msg);
	}
	return r;
}
