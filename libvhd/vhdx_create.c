/* vhdx_create.c - new fixed, dynamic and differencing VHDX images
 * (MS-VHDX v1.0), laid out as Hyper-V and QEMU do:
 *     0        file type identifier ("vhdxfile", creator)
 *     64 KiB   header 1, 128 KiB header 2, 192/256 KiB region tables
 *     1 MiB    the log (1 MiB)
 *     2 MiB    the metadata region (1 MiB; items from 64 KiB in it)
 *     3 MiB    the BAT (a multiple of 1 MiB)
 *     then     payload blocks (fixed: all of them, in order; dynamic and
 *              differencing: none yet)
 * A differencing child records its parent's DataWriteGuid as
 * parent_linkage, the parent's path relative to the child's directory
 * (".\parent.vhdx", '\' separators, as Hyper-V writes it) as
 * relative_path and its absolute path as absolute_win32_path ('\'
 * separators, no drive letter: "\home\u\parent.vhdx"). */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"

#define MIB VHDX_MIB
#define META_OFF   (2 * MIB)
#define BAT_OFF0   (3 * MIB)

static int
wr(struct vhd_io *io, const char *name, const void *buf, size_t n,
   uint64_t off)
{
	int r = io->ops->pwrite(io, buf, n, off);

	if (r < 0)
		return vhd_err(-r, "'%s': cannot write at offset %llu: %s", name,
			       (unsigned long long)off, strerror(-r));
	return 0;
}

struct parent {
	uint64_t size;
	uint32_t lss, pss;
	uint8_t data_guid[16];
};

static int
read_parent(struct vhd_vfs *vfs, const char *path, struct parent *p)
{
	struct vhd *v;
	struct vhd_open_opts oo = {
		.struct_size = sizeof oo,
		.flags = VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHDX |
			 VHD_OPEN_NO_PARENT | VHD_OPEN_NOLOCK,
	};
	int r = vhd_open_vfs(&v, vfs, path, &oo);
	const struct vhdx *x;

	if (r < 0)
		return r;
	x = v->fmt;
	p->size = v->size;
	p->lss = x->lss;
	p->pss = x->pss;
	memcpy(p->data_guid, x->data_guid, 16);
	vhd_close(v);
	return 0;
}

static void
meta_entry(uint8_t *t, int i, const uint8_t guid[16], uint32_t off,
	   uint32_t len, uint32_t flags)
{
	uint8_t *e = t + 32 + 32 * i;

	memcpy(e, guid, 16);
	put_le32(e + 16, off);
	put_le32(e + 20, len);
	put_le32(e + 24, flags);
}

enum { IS_VIRTUAL_DISK = 2, IS_REQUIRED = 4 };

int
vhdx_create_io(struct vhd_vfs *vfs, struct vhd_io *io,
	       const struct vhd_create_opts *o,
	       const char *path)
{
	const char *name = path && *path ? path : "image";
	enum vhd_type type;
	struct parent par;
	struct vhdx x;
	uint64_t size = o->size;
	uint32_t bs = o->block_size;
	uint32_t lss = (o->flags & VHD_CREATE_SECTOR_4K) ? 4096 : 0;
	uint32_t pss = 4096;
	uint8_t *meta = NULL, *buf = NULL, *blob = NULL;
	int r;

	if ((r = vhd_create_type(o, name, &type)) < 0)
		return r;
	if (o->flags & VHD_CREATE_CHS_ROUND)
		return vhd_err(EINVAL, "'%s': VHDX: CHS rounding applies to VHD "
			       "only", name);
	if (bs == 0)
		bs = type == VHD_TYPE_DIFF ? 2 * MIB : 32 * MIB;
	if (bs < MIB || bs > 256 * MIB || (bs & (bs - 1)))
		return vhd_err(EINVAL, "'%s': VHDX block size %u: expected a "
			       "power of two from 1 MiB to 256 MiB", name, bs);
	memset(&x, 0, sizeof(x));
	if (type == VHD_TYPE_DIFF) {
		if ((r = read_parent(vfs, o->parent, &par)) < 0)
			return r;
		if ((r = vhd_create_child_size(name, size, par.size)) < 0)
			return r;
		if (lss && lss != par.lss)
			return vhd_err(EINVAL, "'%s': a child has its parent's "
				       "logical sector size (%u), not %u", name,
				       par.lss, lss);
		size = par.size;
		lss = par.lss;
		pss = par.pss;
	}
	if (lss == 0)
		lss = 512;
	if (size == 0 || size % lss || size > VHDX_MAX_SIZE)
		return vhd_err(EINVAL, "'%s': size %llu: expected a positive "
			       "multiple of the logical sector size (%u) of at "
			       "most 64 TiB", name, (unsigned long long)size,
			       lss);

	uint64_t cr = ((UINT64_C(1) << 23) * lss) / bs;
	uint64_t blocks = (size + bs - 1) / bs;
	uint64_t entries = type == VHD_TYPE_DIFF ?
			   (blocks + cr - 1) / cr * (cr + 1) :
			   blocks + (blocks - 1) / cr;
	uint64_t bat_len = align_up(entries * 8, MIB);
	uint64_t data0 = BAT_OFF0 + bat_len;
	if (bat_len > UINT32_MAX - MIB + 1)
		return vhd_err(EINVAL, "'%s': a BAT of %llu entries does not "
			       "fit a region; use a larger block size", name,
			       (unsigned long long)entries);

	if (!(meta = calloc(1, MIB)) || !(buf = calloc(1, MIB))) {
		r = vhd_err(ENOMEM, "no memory");
		goto out;
	}
	/* identifier */
	memcpy(buf, "vhdxfile", 8);
	vhd_utf8_to_utf16("libvhd " VHD_VERSION_STRING, 0, buf + 8, 512);
	if ((r = wr(io, name, buf, 65536, 0)) < 0)
		goto out;
	/* headers: the second current (sequence 1), no log to replay */
	x.log_off = MIB;
	x.log_len = MIB;
	if ((r = vhdx_new_guid(x.file_guid)) < 0 ||
	    (r = vhdx_new_guid(x.data_guid)) < 0 ||
	    (r = vhdx_new_guid(x.disk_id)) < 0)
		goto out;
	vhdx_encode_header(buf, &x, 0);
	if ((r = wr(io, name, buf, 4096, VHDX_HEADER1_OFF)) < 0)
		goto out;
	vhdx_encode_header(buf, &x, 1);
	if ((r = wr(io, name, buf, 4096, VHDX_HEADER2_OFF)) < 0)
		goto out;
	/* region tables */
	memset(buf, 0, 65536);
	memcpy(buf, "regi", 4);
	put_le32(buf + 8, 2);
	memcpy(buf + 16, vhdx_guid_bat, 16);
	put_le64(buf + 32, BAT_OFF0);
	put_le32(buf + 40, (uint32_t)bat_len);
	put_le32(buf + 44, 1);
	memcpy(buf + 48, vhdx_guid_meta, 16);
	put_le64(buf + 64, META_OFF);
	put_le32(buf + 72, MIB);
	put_le32(buf + 76, 1);
	put_le32(buf + 4, vhdx_crc32c_skip(buf, 65536, 4));
	if ((r = wr(io, name, buf, 65536, VHDX_REGION1_OFF)) < 0 ||
	    (r = wr(io, name, buf, 65536, VHDX_REGION2_OFF)) < 0)
		goto out;
	/* the log: zeros (1 MiB) */
	memset(buf, 0, MIB);
	if ((r = wr(io, name, buf, MIB, MIB)) < 0)
		goto out;
	/* metadata */
	uint32_t io0 = 65536;
	memcpy(meta, "metadata", 8);
	put_le16(meta + 10, type == VHD_TYPE_DIFF ? 6 : 5);
	meta_entry(meta, 0, vhdx_guid_file_params, io0, 8, IS_REQUIRED);
	put_le32(meta + io0, bs);
	put_le32(meta + io0 + 4, (type == VHD_TYPE_FIXED ? 1u : 0u) |
		 (type == VHD_TYPE_DIFF ? 2u : 0u));
	meta_entry(meta, 1, vhdx_guid_disk_size, io0 + 8, 8,
		   IS_REQUIRED | IS_VIRTUAL_DISK);
	put_le64(meta + io0 + 8, size);
	meta_entry(meta, 2, vhdx_guid_page83, io0 + 16, 16,
		   IS_REQUIRED | IS_VIRTUAL_DISK);
	memcpy(meta + io0 + 16, x.disk_id, 16);
	meta_entry(meta, 3, vhdx_guid_lss, io0 + 32, 4,
		   IS_REQUIRED | IS_VIRTUAL_DISK);
	put_le32(meta + io0 + 32, lss);
	meta_entry(meta, 4, vhdx_guid_pss, io0 + 36, 4,
		   IS_REQUIRED | IS_VIRTUAL_DISK);
	put_le32(meta + io0 + 36, pss);
	if (type == VHD_TYPE_DIFF) {
		struct vhdx_kv kv[3];
		uint8_t g[80], *item = NULL;
		uint32_t n;
		r = vhdx_parent_kv(vfs, path, name, o->parent, par.data_guid, g,
				   &blob, kv);
		if (r < 0)
			goto out;
		if (kv[1].len > 32768 || kv[2].len > 32768) {
			r = vhd_err(ENAMETOOLONG, "'%s': parent path '%s' too "
				    "long", name, o->parent);
			goto out;
		}
		if ((r = vhdx_locator_item(name, kv, 3, &item, &n)) < 0)
			goto out;
		memcpy(meta + io0 + 40, item, n);
		free(item);
		meta_entry(meta, 5, vhdx_guid_parent_loc, io0 + 40, n,
			   IS_REQUIRED);
	}
	if ((r = wr(io, name, meta, MIB, META_OFF)) < 0)
		goto out;
	/* the BAT, a MiB at a time; a fixed disk's blocks in order */
	for (uint64_t b0 = 0; b0 < bat_len / 8; b0 += MIB / 8) {
		memset(buf, 0, MIB);
		for (uint64_t i = b0; type == VHD_TYPE_FIXED && i < entries &&
		     i < b0 + MIB / 8; i++) {
			if (i % (cr + 1) == cr)
				continue;       /* sector bitmap: none */
			uint64_t blk = i - i / (cr + 1);
			put_le64(buf + (i - b0) * 8, PB_FULLY_PRESENT |
				 ((data0 + blk * bs) / MIB) << 20);
		}
		if ((r = wr(io, name, buf, MIB, BAT_OFF0 + b0 * 8)) < 0)
			goto out;
	}
	if (type == VHD_TYPE_FIXED) {
		/* The blocks: the extension gives their zeros (sparse where
		 * the file system can). */
		uint64_t end = data0 + blocks * bs;
		if ((r = io->ops->truncate(io, end)) < 0) {
			r = vhd_err(-r, "'%s': cannot extend the file to %llu "
				    "bytes: %s", name, (unsigned long long)end,
				    strerror(-r));
			goto out;
		}
	}
	if ((r = io->ops->flush(io)) < 0)
		r = vhd_err(-r, "'%s': cannot sync: %s", name, strerror(-r));
out:
	free(meta);
	free(buf);
	free(blob);
	return r;
}
