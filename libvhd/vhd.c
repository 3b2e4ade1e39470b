/* vhd.c - opening and closing images and chains. */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

/* The files of a chain being opened (their VFS identities), to refuse
 * loops, and the VFS the chain comes from. */
struct chain_ids {
	int n;
	uint64_t dev[VHD_MAX_CHAIN + 2], ino[VHD_MAX_CHAIN + 2];
	struct vhd_vfs *vfs;
};

static _Thread_local vhd_problem_fn check_fn;
static _Thread_local void *check_arg;

void
vhd_set_check_reporter(vhd_problem_fn fn, void *arg)
{
	check_fn = fn;
	check_arg = arg;
}

static int open_level(struct vhd **out, struct vhd_io *io, const char *path,
		      unsigned flags, const char *parent_path, int depth,
		      struct chain_ids *ids);

static void
free_handle(struct vhd *v)
{
	if (!v)
		return;
	if (v->drv && v->drv->free)
		v->drv->free(v);
	vhd_bm_free(v);
	free(v->bat);
	free(v->batmap.map);
	free(v->path);
	free(v);
}

int
vhd_write_header(struct vhd *v)
{
	vhd_header_encode(&v->hdr, v->header_raw);
	int r = v->io->ops->pwrite(v->io, v->header_raw, 1024,
				   v->ft.data_offset);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot write the header: %s",
			       v->path, strerror(-r));
	vhd_header_decode(v->header_raw, &v->hdr);
	return 0;
}

/* Finds the footer: trailing 512 bytes, else an old 511-byte footer, else
 * (dynamic and differencing) the copy at offset 0. */
static int
find_footer_pass(struct vhd *v, unsigned flags)
{
	struct vhd_problems p1 = { .fn = NULL, .arg = NULL };
	struct vhd_footer_scan s;
	uint64_t fs = v->file_size, off;
	uint8_t raw[512];
	unsigned warn = 0;
	int r;

	if (fs < 512)
		return vhd_err_code(EBADMSG, VHD_CODE_NOT_VHD, "'%s': not a "
			       "VHD image: the file has "
			       "%llu bytes, fewer than a footer", v->path,
			       (unsigned long long)fs);
	r = vhd_footer_scan(v->io, fs, &s);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot read the footer: %s", v->path,
			       strerror(-r));
	if (vhd_footer_pick(&s, v->path, VHD_FOOTER_AT_END | VHD_FOOTER_AT_511 |
			    VHD_FOOTER_AT_COPY, flags, raw, &off, &warn, &p1)) {
		vhd_layout_set_footer(v, raw, off);
		v->warnings |= warn;
		return 0;
	}
	if (memcmp(s.copy, "conectix", 8) != 0 &&
	    p1.first.code == VHD_CODE_FOOTER_COOKIE)
		return vhd_err_code(EBADMSG, VHD_CODE_NOT_VHD, "'%s': not a "
			       "VHD image (no 'conectix' "
			       "footer at the end of the file or at offset 0)",
			       v->path);
	return vhd_problems_result(&p1);
}

/* With VHD_OPEN_IGNORE_CHECKSUM a footer whose checksum is right still
 * wins: a trailing footer with a bad checksum is garbage as often as not,
 * and taking it over a good copy at offset 0 would refuse (or misread) an
 * image a strict open reads fine. */
static int
find_footer(struct vhd *v, unsigned flags)
{
	int r;

	if (!(flags & VHD_OPEN_IGNORE_CHECKSUM))
		return find_footer_pass(v, flags);
	r = find_footer_pass(v, flags & ~VHD_OPEN_IGNORE_CHECKSUM);
	if (r == -EBADMSG)
		r = find_footer_pass(v, flags);
	return r;
}

static int
open_dynamic(struct vhd *v, unsigned flags)
{
	struct vhd_problems p = { .fn = NULL, .arg = NULL };
	unsigned warn = 0;
	int r;

	if (v->ft.data_offset > v->file_size ||
	    v->file_size - v->ft.data_offset < 1024)
		return vhd_err_code(EBADMSG, VHD_CODE_FOOTER_DATA_OFFSET,
			       "'%s': footer: data offset: the dynamic "
			       "header at %llu must lie inside the file of %llu "
			       "bytes", v->path,
			       (unsigned long long)v->ft.data_offset,
			       (unsigned long long)v->file_size);
	r = v->io->ops->pread(v->io, v->header_raw, 1024, v->ft.data_offset);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot read the dynamic header: %s",
			       v->path, strerror(-r));
	vhd_header_check(v->header_raw, v->path, v->ft.data_offset, v->size,
			 v->file_size, flags, &warn, &p);
	if ((r = vhd_problems_result(&p)) < 0)
		return r;
	v->warnings |= warn;
	vhd_header_decode(v->header_raw, &v->hdr);
	v->block_size = v->hdr.block_size;
	v->bitmap_size = vhd_bitmap_size(v->block_size);
	v->spb = v->block_size / 512;
	v->bat_entries = v->hdr.max_entries;
	v->blocks = (uint32_t)((v->size + v->block_size - 1) / v->block_size);
	if ((r = vhd_bat_load(v)) < 0)
		return r;
	if ((r = vhd_batmap_load(v)) < 0)
		return r;
	uint64_t next_free;
	if ((r = vhd_bat_validate(v, check_fn, check_arg, &next_free)) < 0)
		return r;
	vhd_layout_init(v, next_free);
	return vhd_bm_init(v);
}

static void
fmt_uuid(char out[37], const uint8_t u[16])
{
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 15];
	}
	out[j] = 0;
}

/* The VHD driver's open: the footer, then a fixed disk's size rule or a
 * dynamic disk's header, BAT and bitmaps. */
static int
open_vhd(struct vhd *v, unsigned flags)
{
	int r;

	if ((r = find_footer(v, flags)) < 0)
		return r;
	v->kind = VHD_KIND_VHD;
	v->type = v->ft.type;
	v->size = v->ft.cur_size;
	if (v->type != VHD_TYPE_FIXED)
		return open_dynamic(v, flags);
	if (v->footer_off != v->size)
		return vhd_err_code(EBADMSG, VHD_CODE_FOOTER_SIZE,
			       "'%s': fixed disk: current size "
			       "%llu, but the footer is at offset %llu "
			       "(expected the file to be %llu bytes, found "
			       "%llu)", v->path,
			       (unsigned long long)v->size,
			       (unsigned long long)v->footer_off,
			       (unsigned long long)v->size + 512,
			       (unsigned long long)v->file_size);
	return 0;
}

/* Everything else is the VHD driver's fallback, so it claims every file
 * and gives the "not a VHD image" refusal itself. */
static int
probe_vhd(struct vhd_io *io, uint64_t file_size)
{
	(void)io;
	(void)file_size;
	return 1;
}

static void
info_vhd(struct vhd *v, struct vhd_info *info)
{
	info->cylinders = v->ft.cylinders;
	info->heads = v->ft.heads;
	info->sectors_per_track = v->ft.spt;
	info->chs_size = (uint64_t)v->ft.cylinders * v->ft.heads *
			 v->ft.spt * 512;
	info->original_size = v->ft.orig_size;
	memcpy(info->unique_id, v->ft.uuid, 16);
	memcpy(info->creator_app, v->ft.creator_app, 4);
	info->creator_version = v->ft.creator_version;
	memcpy(info->creator_os, v->ft.creator_os, 4);
	info->timestamp = v->ft.timestamp;
	info->features = v->ft.features;
	info->saved_state = v->ft.saved_state;
	if (v->type == VHD_TYPE_FIXED) {
		info->allocated_bytes = v->size;
	} else {
		info->block_size = v->block_size;
		info->max_table_entries = v->bat_entries;
		for (uint32_t i = 0; i < v->bat_entries; i++) {
			if (v->bat[i] == VHD_BAT_UNUSED)
				continue;
			info->allocated_blocks++;
			if (!vhd_block_aligned(v, v->bat[i]))
				info->unaligned_blocks++;
		}
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
}

static int
parent_candidates_vhd(struct vhd *v, char *out[VHD_MAX_PARENT_CANDIDATES])
{
	return vhd_parent_candidates(v->io, v->file_size, v->header_raw,
				     v->path, out);
}

static int
parent_check_vhd(struct vhd *v, struct vhd *p, char *why, size_t n)
{
	char want[37], got[37];

	if (p->kind != VHD_KIND_VHD ||
	    memcmp(p->ft.uuid, v->hdr.parent_id, 16) == 0)
		return 0;
	fmt_uuid(want, v->hdr.parent_id);
	fmt_uuid(got, p->ft.uuid);
	snprintf(why, n, "parent '%s' has unique id %s, expected %s",
		 p->path, got, want);
	return -EBADMSG;
}

const struct vhd_driver vhd_drv_vhd = {
	"VHD", VHD_FORMAT_VHD, probe_vhd, open_vhd, vhd_vhd_read,
	vhd_vhd_map, info_vhd, NULL, parent_candidates_vhd, parent_check_vhd,
	VHD_OPEN_FORMAT_VHD, NULL, NULL, NULL, NULL,
};

/* A raw file as the bottom of a chain (blktap's raw parents). */
static int
open_raw(struct vhd **out, struct vhd_vfs *vfs, struct vhd_io *io,
	 const char *path, int depth)
{
	struct vhd *v = calloc(1, sizeof(*v));
	int r;

	if (!v || !(v->path = strdup(path))) {
		free(v);
		return vhd_err(ENOMEM, "no memory");
	}
	v->io = io;
	v->drv = &vhd_drv_raw;
	v->kind = VHD_KIND_RAW;
	v->depth = depth;
	v->vfs = vfs;
	if ((r = io->ops->get_size(io, &v->file_size)) < 0) {
		free_handle(v);
		return vhd_err(-r, "'%s': %s", path, strerror(-r));
	}
	v->size = v->file_size;
	pthread_rwlock_init(&v->lock, NULL);
	*out = v;
	return 0;
}

/* Opens the parent of differencing disk v from its locators (or the
 * given path), demanding the unique id the child records. */
static int
open_parent(struct vhd *v, const char *parent_path, struct chain_ids *ids)
{
	char *cand[VHD_MAX_PARENT_CANDIDATES];
	int n, r, err = 0;
	char why[1024] = "", looked[2048] = "";
	struct vhd_errrec saved;
	int raw_parent = v->drv == &vhd_drv_vhd &&
			 vhd_is_zero(v->hdr.parent_id, 16);
	/* A parent is of its child's format (a VHD's may be blktap's raw
	 * parent): another format there is refused by name rather than read
	 * under another format's rules. */
	unsigned pflags = (v->flags & (VHD_OPEN_IGNORE_CHECKSUM |
				       VHD_OPEN_NOLOCK |
				       VHD_OPEN_FORCE_SHARE)) | v->drv->parent_flags;
	/* Parents are read: a consistent reader's lock keeps their writers
	 * out for as long as the child is open. */
	int lock = (pflags & VHD_OPEN_NOLOCK) ? VHD_LOCK_NONE :
		   (pflags & VHD_OPEN_FORCE_SHARE) ? VHD_LOCK_PEEK :
		   VHD_LOCK_READ;

	if (v->depth >= VHD_MAX_CHAIN)
		return vhd_err_code(EBADMSG, VHD_CODE_CHAIN_LOOP,
			       "'%s': the chain is deeper than %d "
			       "images (a loop?)", v->path, VHD_MAX_CHAIN);
	if (parent_path) {
		cand[0] = strdup(parent_path);
		if (!cand[0])
			return vhd_err(ENOMEM, "no memory");
		n = 1;
	} else {
		n = v->drv->parent_candidates(v, cand);
		if (n < 0)
			return n;
	}
	for (int i = 0; i < n && !v->parent; i++) {
		struct vhd_io *io;
		uint64_t id[2];

		size_t l = strlen(looked);
		snprintf(looked + l, sizeof(looked) - l, "%s'%s'",
			 l ? ", " : "", cand[i]);
		/* Locked only once we know it is not already in the chain:
		 * a loop must say so, not that the image is in use (by us). */
		r = vhd_vfs_open(v->vfs, &io, cand[i], 0, VHD_LOCK_NONE);
		if (r < 0) {
			if (r != -ENOENT && !err) {
				err = r;
				vhd_err_save(&saved);
			}
			continue;
		}
		if (vhd_vfs_identity(v->vfs, io, id)) {
			int loop = 0;
			for (int k = 0; k < ids->n; k++)
				if (ids->dev[k] == id[0] &&
				    ids->ino[k] == id[1])
					loop = 1;
			if (loop) {
				io->ops->close(io);
				if (!err) {
					err = -EBADMSG;
					vhd_err_code(EBADMSG,
						     VHD_CODE_CHAIN_LOOP,
						     "'%s': the chain loops: "
						     "parent '%s' is already "
						     "in it", v->path,
						     cand[i]);
					vhd_err_save(&saved);
				}
				continue;
			}
		}
		if (lock && (r = vhd_vfs_lock(v->vfs, io, lock)) < 0) {
			io->ops->close(io);
			if (!err) {
				err = r;
				vhd_err_save(&saved);
			}
			continue;
		}
		struct vhd *p = NULL;
		if (raw_parent) {
			/* blktap: a null parent id means a raw parent, but
			 * take a VHD if that is what is there. */
			uint8_t c[8];
			uint64_t sz;
			int isvhd = io->ops->get_size(io, &sz) == 0 &&
				    sz >= 512 &&
				    io->ops->pread(io, c, 8, sz - 512) == 0 &&
				    memcmp(c, "conectix", 8) == 0;
			if (!isvhd)
				r = open_raw(&p, v->vfs, io, cand[i],
					     v->depth + 1);
			else
				r = open_level(&p, io, cand[i], pflags, NULL,
					       v->depth + 1, ids);
		} else {
			r = open_level(&p, io, cand[i], pflags, NULL,
				       v->depth + 1, ids);
		}
		if (r < 0) {
			io->ops->close(io);
			if (!err) {
				err = r;
				vhd_err_save(&saved);
			}
			continue;
		}
		if (!raw_parent && v->drv->parent_check(v, p, why,
							sizeof(why)) < 0) {
			err = -EBADMSG;
			vhd_err_code(EBADMSG, VHD_CODE_PARENT_MISMATCH,
				     "'%s': %s", v->path, why);
			vhd_err_save(&saved);
			vhd_close(p);
			continue;
		}
		v->parent = p;
	}
	for (int i = 0; i < n; i++)
		free(cand[i]);
	if (v->parent)
		return 0;
	if (err)
		return vhd_err_restore(err, &saved);
	if (n == 0)
		return vhd_err_code(ENOENT, VHD_CODE_PARENT_MISSING,
			       "'%s': parent not found: the image names "
			       "no parent", v->path);
	return vhd_err_code(ENOENT, VHD_CODE_PARENT_MISSING,
			    "'%s': parent not found; looked for %s",
		       v->path, looked);
}

static int
open_level(struct vhd **out, struct vhd_io *io, const char *path,
	   unsigned flags, const char *parent_path, int depth,
	   struct chain_ids *ids)
{
	struct vhd *v = calloc(1, sizeof(*v));
	int r;

	if (!v || !(v->path = strdup(path ? path : io->name ? io->name :
				     "image"))) {
		free(v);
		return vhd_err(ENOMEM, "no memory");
	}
	v->io = io;
	v->flags = flags;
	v->rdwr = !!(flags & VHD_OPEN_RDWR);
	v->depth = depth;
	v->vfs = ids->vfs;
	if ((r = io->ops->get_size(io, &v->file_size)) < 0) {
		r = vhd_err(-r, "'%s': %s", v->path, strerror(-r));
		goto fail;
	}
	if ((r = vhd_driver_detect(io, v->file_size, &v->drv)) < 0) {
		r = vhd_err(-r, "'%s': cannot read: %s", v->path, strerror(-r));
		goto fail;
	}
	if ((v->drv != &vhd_drv_vhd && (flags & VHD_OPEN_FORMAT_VHD)) ||
	    (v->drv != &vhd_drv_vhdx && (flags & VHD_OPEN_FORMAT_VHDX))) {
		r = vhd_err(ENOTSUP, "'%s': a %s image, where only a %s can be "
			    "used", v->path, v->drv->name,
			    (flags & VHD_OPEN_FORMAT_VHD) ? "VHD" : "VHDX");
		goto fail;
	}
	if ((r = v->drv->open(v, flags)) < 0)
		goto fail;
	if (pthread_rwlock_init(&v->lock, NULL) != 0) {
		r = vhd_err(ENOMEM, "'%s': cannot create a lock", v->path);
		goto fail;
	}
	uint64_t id[2];
	if (vhd_vfs_identity(v->vfs, io, id) && ids->n < VHD_MAX_CHAIN + 2) {
		ids->dev[ids->n] = id[0];
		ids->ino[ids->n] = id[1];
		ids->n++;
	}
	if (v->type == VHD_TYPE_DIFF && !(flags & VHD_OPEN_NO_PARENT)) {
		if ((r = open_parent(v, parent_path, ids)) < 0) {
			pthread_rwlock_destroy(&v->lock);
			goto fail;
		}
	}
	*out = v;
	return 0;
fail:
	free_handle(v);
	return r;
}

int
vhd_open_internal(struct vhd **out, struct vhd_io *io, const char *path,
		  unsigned flags, const char *parent_path, int depth)
{
	struct chain_ids ids = { 0, { 0 }, { 0 }, vhd_vfs_default() };

	return open_level(out, io, path, flags, parent_path, depth, &ids);
}

int
vhd_open_internal_vfs(struct vhd **out, struct vhd_vfs *vfs,
		      struct vhd_io *io, const char *path, unsigned flags,
		      const char *parent_path)
{
	struct chain_ids ids = { 0, { 0 }, { 0 }, vfs };

	if (!ids.vfs)
		ids.vfs = vhd_vfs_default();

	return open_level(out, io, path, flags, parent_path, 0, &ids);
}

int
vhd_open_io(struct vhd **out, struct vhd_io *io,
	    const struct vhd_open_opts *opts)
{
	struct vhd_open_opts o = { sizeof(o), 0, NULL };
	int r;

	if (!out || !io)
		return vhd_err(EINVAL, "vhd_open_io: bad arguments");
	if ((r = vhd_io_check(io, "vhd_open_io")) < 0)
		return r;
	if (opts && (r = vhd_struct_in(&o, sizeof(o), VHD_OPEN_OPTS_V1, opts,
				       "vhd_open_opts")) < 0)
		return r;
	return vhd_open_internal(out, io, io->name, o.flags, o.parent_path, 0);
}

int
vhd_open_opts(struct vhd **out, const char *path,
	      const struct vhd_open_opts *opts)
{
	return vhd_open_vfs(out, NULL, path, opts);
}

int
vhd_open_vfs(struct vhd **out, struct vhd_vfs *vfs, const char *path,
	     const struct vhd_open_opts *opts)
{
	struct vhd_open_opts o = { sizeof(o), 0, NULL };
	unsigned flags;
	struct vhd_io *io;
	int r, lock = 0;

	if (!out || !path)
		return vhd_err(EINVAL, "vhd_open: bad arguments");
	if ((r = vhd_vfs_use(&vfs, "vhd_open_vfs")) < 0)
		return r;
	if (opts && (r = vhd_struct_in(&o, sizeof(o), VHD_OPEN_OPTS_V1, opts,
				       "vhd_open_opts")) < 0)
		return r;
	flags = o.flags;
	if ((flags & VHD_OPEN_RDWR) && (flags & VHD_OPEN_FORCE_SHARE))
		return vhd_err(EINVAL, "'%s': force-share is for read-only "
			       "opens", path);
	if (flags & VHD_OPEN_NOLOCK)
		lock = VHD_LOCK_NONE;
	else if (flags & VHD_OPEN_RDWR)
		lock = VHD_LOCK_WRITE;
	else if (flags & VHD_OPEN_FORCE_SHARE)
		lock = VHD_LOCK_PEEK;
	else
		lock = VHD_LOCK_READ;
	r = vhd_vfs_open(vfs, &io, path,
			 ((flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : 0) |
			 ((flags & VHD_OPEN_PACE_WRITES) ? VHD_IO_PACE : 0), lock);
	if (r < 0)
		return r;
	r = vhd_open_internal_vfs(out, vfs, io, path, flags, o.parent_path);
	if (r < 0)
		io->ops->close(io);
	return r;
}

struct vhd_lock_wait vhd_lock_wait = { 5000, NULL, NULL };

void
vhd_set_lock_wait(unsigned ms, void (*waiting)(void *arg, const char *msg,
					       unsigned ms), void *arg)
{
	vhd_lock_wait.ms = ms;
	vhd_lock_wait.waiting = waiting;
	vhd_lock_wait.arg = arg;
}

int
vhd_open(struct vhd **out, const char *path, unsigned flags)
{
	struct vhd_open_opts o = { sizeof(o), flags, NULL };

	return vhd_open_opts(out, path, &o);
}

void
vhd_close(struct vhd *v)
{
	if (!v)
		return;
	/* Allocations still pending become part of the disk (barrier, BAT
	 * entries).  A failure leaves its message for vhd_errmsg(); callers
	 * that must know call vhd_flush() first (vhdnbd, vhdfuse do). */
	if (v->rdwr && vhd_alloc_pending(v))
		(void)vhd_alloc_close(v);
	/* An UNSAFE_NOSYNC handle is a new output file whose writer decides
	 * about durability with vhd_flush (convert --sync). */
	if (v->rdwr && !(v->flags & VHD_OPEN_UNSAFE_NOSYNC))
		v->io->ops->flush(v->io);
	/* The format's last writes (VHDX: the header of a clean close)
	 * need the file still open. */
	if (v->drv && v->drv->free)
		v->drv->free(v);
	vhd_close(v->parent);
	pthread_rwlock_destroy(&v->lock);
	v->io->ops->close(v->io);
	free_handle(v);
}

int
vhd_file_read(struct vhd *v, void *buf, size_t n, uint64_t off)
{
	int r = v->io->ops->pread(v->io, buf, n, off);

	if (r < 0)
		return vhd_err(-r, "'%s': cannot read at offset %llu: %s",
			       v->path, (unsigned long long)off, strerror(-r));
	return 0;
}

int
vhd_file_write(struct vhd *v, const void *buf, size_t n, uint64_t off)
{
	int r = v->io->ops->pwrite(v->io, buf, n, off);

	if (r < 0)
		return vhd_err(-r, "'%s': cannot write at offset %llu: %s",
			       v->path, (unsigned long long)off, strerror(-r));
	return 0;
}

int
vhd_file_sync(struct vhd *v)
{
	int r = v->io->ops->flush(v->io);

	if (r < 0)
		return vhd_err(-r, "'%s': cannot sync: %s", v->path,
			       strerror(-r));
	return 0;
}

const char *
vhd_path(struct vhd *v)
{
	return v ? v->path : NULL;
}

struct vhd *
vhd_parent(struct vhd *v)
{
	return v ? v->parent : NULL;
}

int
vhd_chain_depth(struct vhd *v)
{
	int n = 0;

	for (; v; v = v->parent)
		n++;
	return n;
}

int
vhd_probe(const char *path)
{
	struct vhd_io *io;
	struct vhd_footer_scan s;
	uint64_t fs;
	int r, yes = 0;

	if ((r = vhd_vfs_open(NULL, &io, path, 0, VHD_LOCK_NONE)) < 0)
		return r;
	if ((r = io->ops->get_size(io, &fs)) < 0)
		goto out;
	if (vhd_drv_vhdx.probe(io, fs) == 1)
		yes = 1;
	else if (fs >= 512 && vhd_footer_scan(io, fs, &s) == 0 &&
		 vhd_footer_cookie(&s))
		yes = 1;
	r = yes;
out:
	io->ops->close(io);
	if (r < 0)
		return vhd_err(-r, "'%s': %s", path, strerror(-r));
	return r;
}
