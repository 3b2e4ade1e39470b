/*
 * compact.c - reclaiming space (vhd_compact), what Hyper-V's Optimize-VHD
 * does: blocks that hold nothing are dropped, the remaining blocks are
 * packed down into the gaps, and the file is truncated.
 *
 * Crash safety, in place:
 *  1. Drop: each empty block's BAT entry is cleared (and its blktap batmap
 *     bit); one barrier after all of them.  A crash leaves some entries
 *     cleared: those blocks read zeros, as they did.
 *  2. Pack: the block at the highest offset is copied into the lowest gap
 *     that fits it (space no BAT entry points at), and so on for up to
 *     1024 blocks (64 MiB); barrier; their BAT entries are repointed;
 *     barrier.  A crash before a BAT write leaves that block's old place
 *     in use and garbage in free space; after it, the old place is free.
 *     Old places are never written during the pack (every gap used lies
 *     below all blocks still in place), so nothing is overwritten before
 *     the barrier that made its BAT change durable.
 *  3. Trim: the trailing footer is written just past the last block (in
 *     free space: the old footer is still the file's last 512 bytes),
 *     barrier, truncate, barrier.  A crash in between leaves leaked space
 *     before the old footer, which check reports as a warning only.
 *
 * Into another file (out): the image's metadata and live blocks are copied
 * to out (gaps stay holes), then out is compacted in place.
 */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

#define CHUNK (1u << 20)

int vhd_borrow_io(struct vhd_io **out, struct vhd_io *inner);   /* resize.c */

/* Does allocated block blk hold nothing?  Dynamic: every stored sector
 * is zero.  Differencing: no sector is stored (stored zeros hide the
 * parent).  1 yes, 0 no, -errno. */
static int
block_empty(struct vhd *v, uint32_t blk, uint8_t *buf)
{
	uint64_t data = (uint64_t)v->bat[blk] * 512 + v->bitmap_size;
	uint32_t sec = 0;
	int r;

	while (sec < v->spb) {
		int set;
		uint32_t run;
		if ((r = vhd_bm_run(v, blk, sec, v->spb, &set, &run)) < 0)
			return r;
		if (run == 0)
			run = v->spb - sec;
		if (set) {
			if (v->type == VHD_TYPE_DIFF)
				return 0;
			for (uint64_t o = (uint64_t)sec * 512;
			     o < (uint64_t)(sec + run) * 512;) {
				uint64_t e = (uint64_t)(sec + run) * 512;
				size_t k = e - o < CHUNK ? (size_t)(e - o) : CHUNK;
				if ((r = vhd_file_read(v, buf, k, data + o)) < 0)
					return r;
				if (!vhd_is_zero(buf, k))
					return 0;
				o += k;
			}
		}
		sec += run;
	}
	return 1;
}

/* 1. Drop the blocks that hold nothing. */
static int
drop_empty(struct vhd *v, uint8_t *buf, uint32_t *dropped,
	   vhd_progress_fn progress, void *arg, uint64_t total)
{
	int r, any = 0;

	for (uint32_t i = 0; i < v->blocks; i++) {
		if (progress)
			progress(arg, i, total);
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		if ((r = block_empty(v, i, buf)) < 0)
			return r;
		if (!r)
			continue;
		if ((r = vhd_layout_unmap_block(v, i)) < 0)
			return r;
		(*dropped)++;
		any = 1;
	}
	return any ? vhd_file_sync(v) : 0;
}

/* Blocks copied to their new place whose BAT entries still point at the
 * old one: repointed together after one barrier (commit_moves).  A slot
 * is always below every block still to move, so no copy of a batch lands
 * on the old place of another block of it. */
#define MOVE_BATCH 1024
struct moves {
	uint32_t blk[MOVE_BATCH];
	uint64_t dst[MOVE_BATCH];
	uint64_t bytes;
	int n;
};

static int
commit_moves(struct vhd *v, struct moves *m)
{
	int r;

	if (m->n == 0)
		return 0;
	if ((r = vhd_file_sync(v)) < 0)
		return r;
	for (int i = 0; i < m->n; i++)
		if ((r = vhd_layout_map_block(v, m->blk[i], m->dst[i], NULL,
					      0)) < 0)
			return r;
	m->n = 0;
	m->bytes = 0;
	return vhd_file_sync(v);
}

static int
move_block(struct vhd *v, uint32_t blk, uint64_t dst, uint8_t *buf,
	   struct moves *m)
{
	uint64_t len = (uint64_t)v->bitmap_size + v->block_size;
	uint64_t src = (uint64_t)v->bat[blk] * 512;
	int r;

	for (uint64_t o = 0; o < len;) {
		size_t k = len - o < CHUNK ? (size_t)(len - o) : CHUNK;
		if ((r = vhd_file_read(v, buf, k, src + o)) < 0 ||
		    (r = vhd_file_write(v, buf, k, dst + o)) < 0)
			return r;
		o += k;
	}
	m->blk[m->n] = blk;
	m->dst[m->n++] = dst;
	m->bytes += len;
	/* Up to 1024 blocks or 64 MiB per barrier (one per block made
	 * 10^5 4 KiB blocks take 20 s). */
	if (m->n == MOVE_BATCH || m->bytes >= (64u << 20))
		return commit_moves(v, m);
	return 0;
}

/* 2. Pack: the last block into the lowest gap, while one fits below it. */
static int
pack(struct vhd *v, uint8_t *buf, uint32_t *moved, vhd_progress_fn progress,
     void *arg, uint64_t done, uint64_t total)
{
	uint64_t blen = (uint64_t)v->bitmap_size + v->block_size;
	struct vhd_ext *x;
	size_t n, i = 0, hi;
	uint64_t pos = 0;
	int r;

	struct moves *mv = calloc(1, sizeof(*mv));
	if (!mv)
		return vhd_err(ENOMEM, "no memory");
	if ((r = vhd_extents(v, &x, &n)) < 0) {
		free(mv);
		return r;
	}
	/* Metadata is never moved; keep a short list of it. */
	struct vhd_ext meta[VHD_META_EXTENTS];
	size_t nm = 0;
	for (size_t k = 0; k < n && nm < VHD_META_EXTENTS; k++)
		if (x[k].blk == VHD_BAT_UNUSED)
			meta[nm++] = x[k];
	hi = n;         /* one past the highest extent still in place */
	for (;;) {
		/* The highest movable block. */
		while (hi > i && x[hi - 1].blk == VHD_BAT_UNUSED)
			hi--;
		if (hi <= i)
			break;
		uint64_t s = vhd_block_slot(v, pos);
		while (i < hi && x[i].start < s + blen) {
			if (x[i].end > pos)
				pos = x[i].end;
			i++;
			s = vhd_block_slot(v, pos);
		}
		/* Immovable metadata at the tail was skipped above; it must
		 * not lie in the slot either. */
		int clash = 0;
		for (size_t k = 0; k < nm; k++)
			if (meta[k].start < s + blen && s < meta[k].end)
				clash = 1;
		if (clash) {
			pos = s + 512;
			continue;
		}
		if (i >= hi || x[hi - 1].start <= s)
			break;
		struct vhd_ext *b = &x[hi - 1];
		if ((r = move_block(v, b->blk, s, buf, mv)) < 0)
			break;
		(*moved)++;
		if (progress)
			progress(arg, done + *moved, total);
		b->start = s;
		b->end = s + blen;
		pos = s + blen;
		/* The moved block now sits before x[i], below pos: it
		 * leaves the range still to scan. */
		hi--;
	}
	if (r >= 0)
		r = commit_moves(v, mv);
	free(mv);
	free(x);
	return r < 0 ? r : 0;
}

/* 3. Trim: footer right after the last piece, barrier, truncate. */
static int
trim(struct vhd *v)
{
	struct vhd_ext *x;
	size_t n;
	uint64_t end = 0;
	int r;

	if ((r = vhd_extents(v, &x, &n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (x[i].end > end)
			end = x[i].end;
	free(x);
	end = align_up(end, 512);
	/* Less than a footer to gain: the new footer would overlap the old
	 * one (at an odd offset) until the truncate. */
	if (end + 512 > v->footer_off)
		return 0;
	return vhd_layout_footer_to(v, end);
}

static int
compact_handle(struct vhd *v, vhd_progress_fn progress, void *arg)
{
	uint8_t *buf;
	uint32_t dropped = 0, moved = 0;
	int r;

	if (v->type == VHD_TYPE_FIXED)
		return vhd_err(ENOTSUP, "'%s': a fixed disk has no unused blocks "
			       "to reclaim (convert it to a dynamic disk)",
			       v->path);
	if (v->warnings & (VHD_WARN_FOOTER_FROM_COPY | VHD_WARN_FOOTER_511))
		return vhd_err(EBADMSG, "'%s': the trailing footer is missing "
			       "or old-style; repair the image first", v->path);
	if (!(buf = malloc(CHUNK)))
		return vhd_err(ENOMEM, "no memory");
	uint64_t total = (uint64_t)v->blocks * 2;
	r = drop_empty(v, buf, &dropped, progress, arg, total);
	if (r == 0)
		r = pack(v, buf, &moved, progress, arg, v->blocks, total);
	if (r == 0)
		r = trim(v);
	if (r == 0 && progress)
		progress(arg, total, total);
	free(buf);
	return r;
}

int
vhd_compact_io(struct vhd_io *io, unsigned flags, vhd_progress_fn progress,
	       void *arg)
{
	struct vhd_io *b;
	struct vhd *v;
	int r;

	if (!io || flags)
		return vhd_err(EINVAL, "vhd_compact: bad arguments");
	if ((r = vhd_io_check(io, "vhd_compact")) < 0)
		return r;
	if ((r = vhd_borrow_io(&b, io)) < 0)
		return r;
	r = vhd_open_internal(&v, b, io->name ? io->name : "image",
			      VHD_OPEN_RDWR | VHD_OPEN_FORMAT_VHD |
			      VHD_OPEN_NO_PARENT, NULL, 0);
	if (r < 0) {
		b->ops->close(b);
		return r;
	}
	r = compact_handle(v, progress, arg);
	vhd_close(v);
	return r;
}

/* Copies every piece of v that must stay to out at the same offsets (the
 * gaps stay holes), ending with the trailing footer. */
static int
copy_live(struct vhd *v, struct vhd_io *out, uint8_t *buf)
{
	struct vhd_ext *x;
	size_t n;
	int r;

	if ((r = vhd_extents(v, &x, &n)) < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		/* Locator data past the end of the file (a damaged image the
		 * open tolerates) has nothing to copy. */
		uint64_t e = x[i].end < v->file_size ? x[i].end : v->file_size;
		for (uint64_t o = x[i].start; o < e && r == 0;) {
			size_t k = e - o < CHUNK ? (size_t)(e - o) : CHUNK;
			if ((r = vhd_file_read(v, buf, k, o)) < 0)
				break;
			r = out->ops->pwrite(out, buf, k, o);
			if (r < 0)
				r = vhd_err(-r, "'%s': cannot write: %s",
					    out->name, strerror(-r));
			o += k;
		}
	}
	free(x);
	if (r == 0) {
		uint8_t f[512];
		memcpy(f, v->footer_raw, 512);
		r = out->ops->pwrite(out, f, 512, v->footer_off);
		if (r < 0)
			r = vhd_err(-r, "'%s': cannot write: %s", out->name,
				    strerror(-r));
	}
	return r;
}

int
vhd_compact(const char *path, const char *out, unsigned flags,
	    vhd_progress_fn progress, void *arg)
{
	struct vhd_io *io, *oio;
	struct vhd *v;
	uint8_t *buf;
	int r;

	if (!path || flags)
		return vhd_err(EINVAL, "vhd_compact: bad arguments");
	if (!out) {
		if ((r = vhd_vfs_open(NULL, &io, path, VHD_IO_RDWR, 2)) < 0)
			return r;
		r = vhd_open_internal(&v, io, path, VHD_OPEN_RDWR |
				      VHD_OPEN_FORMAT_VHD |
				      VHD_OPEN_NO_PARENT, NULL, 0);
		if (r < 0) {
			io->ops->close(io);
			return r;
		}
		r = compact_handle(v, progress, arg);
		vhd_close(v);
		return r;
	}
	if ((r = vhd_open(&v, path, VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHD |
			  VHD_OPEN_NO_PARENT)) < 0)
		return r;
	if (v->type == VHD_TYPE_FIXED) {
		r = vhd_err(ENOTSUP, "'%s': a fixed disk has no unused blocks "
			    "to reclaim (convert it to a dynamic disk)", path);
		vhd_close(v);
		return r;
	}
	if ((r = vhd_vfs_open(NULL, &oio, out, VHD_IO_RDWR | VHD_IO_CREATE,
				 VHD_LOCK_NONE)) < 0) {
		vhd_close(v);
		return r;
	}
	if (!(buf = malloc(CHUNK))) {
		r = vhd_err(ENOMEM, "no memory");
	} else {
		r = copy_live(v, oio, buf);
		free(buf);
	}
	vhd_close(v);
	if (r == 0)
		r = vhd_compact_io(oio, 0, progress, arg);
	if (r == 0 && (r = oio->ops->flush(oio)) < 0)
		r = vhd_err(-r, "'%s': cannot sync: %s", out, strerror(-r));
	oio->ops->close(oio);
	if (r < 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", vhd_errmsg());
		vhd_vfs_unlink(NULL, out);
		vhd_err(-r, "%s", msg);
	}
	return r;
}
