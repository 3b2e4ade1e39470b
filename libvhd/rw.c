/* rw.c - reading and writing data: any offset and length, through the
 * chain; block allocation in crash-safe order (SPEC.md 8.1: footer,
 * bitmap and data now, the BAT entry at the next commit, which puts a
 * barrier before the BAT writes: group commit). */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

static const uint8_t zero_buf[65536];

static int
io_fail(struct vhd *v, int r, const char *what, uint64_t off)
{
	return vhd_err(-r, "'%s': cannot %s at offset %llu: %s", v->path, what,
		       (unsigned long long)off, strerror(-r));
}

static int
pread_at(struct vhd *v, void *buf, size_t n, uint64_t off)
{
	int r = v->io->ops->pread(v->io, buf, n, off);

	return r < 0 ? io_fail(v, r, "read", off) : 0;
}

static int
pwrite_at(struct vhd *v, const void *buf, size_t n, uint64_t off)
{
	int r = v->io->ops->pwrite(v->io, buf, n, off);

	return r < 0 ? io_fail(v, r, "write", off) : 0;
}

int
vhd_io_zero(struct vhd_io *io, uint64_t off, uint64_t n)
{
	while (n > 0) {
		size_t k = n > sizeof(zero_buf) ? sizeof(zero_buf) : (size_t)n;
		int r = io->ops->pwrite(io, zero_buf, k, off);
		if (r < 0)
			return r;
		off += k;
		n -= k;
	}
	return 0;
}

/* What lies below level v at [off, off+n): the parent's data, or zeros. */
static int
read_below(struct vhd *v, uint8_t *buf, size_t n, uint64_t off)
{
	if (v->type != VHD_TYPE_DIFF) {
		memset(buf, 0, n);
		return 0;
	}
	if (!v->parent)
		return vhd_err(ENOTSUP, "'%s': opened without its parent: "
			       "cannot read sectors it does not store",
			       v->path);
	return vhd_read_level(v->parent, buf, n, off);
}

/* Reads [off, off+n) of the disk as level v of the chain sees it. */
int
vhd_read_level(struct vhd *v, uint8_t *buf, size_t n, uint64_t off)
{
	if (off >= v->size) {     /* a smaller parent: zeros beyond it */
		memset(buf, 0, n);
		return 0;
	}
	if (n > v->size - off) {
		size_t keep = (size_t)(v->size - off);
		memset(buf + keep, 0, n - keep);
		n = keep;
	}
	return v->drv->read(v, buf, n, off);
}

/* The part of [off, off+n) inside off's block: its number, the offset in
 * it, and the length. */
static size_t
block_part(const struct vhd *v, uint64_t off, size_t n, uint32_t *blk,
	   uint32_t *boff)
{
	size_t len = v->block_size - (size_t)(off % v->block_size);

	*blk = (uint32_t)(off / v->block_size);
	*boff = (uint32_t)(off % v->block_size);
	return len < n ? len : n;
}

/* The VHD driver's read of one level: [off, off+n) lies inside the disk. */
int
vhd_vhd_read(struct vhd *v, uint8_t *buf, size_t n, uint64_t off)
{
	size_t len;
	int r;

	if (v->type == VHD_TYPE_FIXED)
		return pread_at(v, buf, n, off);
	for (; n > 0; buf += len, off += len, n -= len) {
		uint32_t blk, boff;
		len = block_part(v, off, n, &blk, &boff);
		uint32_t e = v->bat[blk];
		if (e == VHD_BAT_UNUSED) {
			r = read_below(v, buf, len, off);
		} else {
			uint64_t data = (uint64_t)e * 512 + v->bitmap_size;
			uint32_t send = (uint32_t)((boff + len + 511) / 512);
			uint64_t cur = boff, end = boff + len;
			r = 0;
			while (cur < end && r == 0) {
				int set;
				uint32_t run, sec = (uint32_t)(cur / 512);
				r = vhd_bm_run(v, blk, sec, send, &set, &run);
				if (r < 0)
					break;
				uint64_t pe = (uint64_t)(sec + run) * 512;
				if (pe > end)
					pe = end;
				uint8_t *dst = buf + (cur - boff);
				if (set)
					r = pread_at(v, dst, pe - cur,
						     data + cur);
				else
					r = read_below(v, dst, pe - cur,
						       off - boff + cur);
				cur = pe;
			}
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int
vhd_pread(struct vhd *v, void *buf, size_t n, uint64_t off)
{
	int r;

	if (!v || (!buf && n))
		return vhd_err(EINVAL, "vhd_pread: bad arguments");
	if (off > v->size || n > v->size - off)
		return vhd_err(EINVAL, "'%s': read of %zu bytes at %llu is past "
			       "the end of the disk (%llu bytes)", v->path, n,
			       (unsigned long long)off,
			       (unsigned long long)v->size);
	if (n == 0)
		return 0;
	pthread_rwlock_rdlock(&v->lock);
	r = vhd_read_level(v, buf, n, off);
	pthread_rwlock_unlock(&v->lock);
	return r;
}

/* Writes cnt bytes at in-sector offset inoff of disk sector dsec whose
 * block sector is not stored here yet: the rest comes from below. */
static int
write_merged_sector(struct vhd *v, uint64_t phys, uint64_t dsec,
		    uint32_t inoff, const uint8_t *src, size_t cnt)
{
	uint8_t sec[512];
	int r = read_below(v, sec, 512, dsec * 512);

	if (r < 0)
		return r;
	memcpy(sec + inoff, src, cnt);
	return pwrite_at(v, sec, 512, phys);
}

/* Is disk sector sec of allocated block blk stored in this file? */
static int
sector_set(struct vhd *v, uint32_t blk, uint32_t sec, int *set)
{
	uint32_t run;

	return vhd_bm_run(v, blk, sec, sec + 1, set, &run);
}

/* Writes [boff, boff+len) of block blk whose data starts at data.  fresh:
 * the block was just allocated and every bit is clear (differencing). */
static int
write_in_block(struct vhd *v, uint32_t blk, uint64_t data, uint32_t boff,
	       const uint8_t *buf, size_t len, int fresh)
{
	uint64_t bstart = (uint64_t)blk * v->block_size;
	uint64_t pos = boff, end = boff + len, mid_end;
	int r, set;

	if (pos % 512) {
		uint32_t sec = (uint32_t)(pos / 512);
		uint64_t se = (uint64_t)(sec + 1) * 512;
		size_t cnt = (size_t)((end < se ? end : se) - pos);
		set = 0;
		if (!fresh && (r = sector_set(v, blk, sec, &set)) < 0)
			return r;
		if (set)
			r = pwrite_at(v, buf, cnt, data + pos);
		else
			r = write_merged_sector(v, data + sec * 512ull,
						(bstart + pos) / 512,
						(uint32_t)(pos % 512), buf,
						cnt);
		if (r < 0)
			return r;
		pos += cnt;
	}
	mid_end = end;
	if (pos < end && end % 512) {
		uint32_t sec = (uint32_t)(end / 512);
		uint64_t ss = (uint64_t)sec * 512;
		set = 0;
		if (!fresh && (r = sector_set(v, blk, sec, &set)) < 0)
			return r;
		if (set)
			r = pwrite_at(v, buf + (ss - boff), end - ss,
				      data + ss);
		else
			r = write_merged_sector(v, data + ss,
						(bstart + ss) / 512, 0,
						buf + (ss - boff),
						(size_t)(end - ss));
		if (r < 0)
			return r;
		mid_end = ss;
	}
	if (pos < mid_end) {
		r = pwrite_at(v, buf + (pos - boff), mid_end - pos,
			      data + pos);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
sync_fail(struct vhd *v, int r)
{
	return vhd_err(-r, "'%s': cannot sync: %s", v->path, strerror(-r));
}

/* Are BAT entries and bitmap changes kept for a commit?  Not on an
 * UNSAFE_NOSYNC handle (no barrier to save) unless merge batches. */
static int
deferring(const struct vhd *v)
{
	return v->batch || !(v->flags & VHD_OPEN_UNSAFE_NOSYNC);
}

/* Makes the pending allocations and bitmap changes part of the disk:
 * barrier (the data they cover durable), then the BAT sectors of the new
 * blocks and the changed bitmap sectors.  Not itself followed by a
 * barrier: metadata may reach the disk late, never before its data.
 * Caller holds the exclusive lock (or the only reference, at close). */
static int
commit_locked(struct vhd *v)
{
	int r;

	if (!vhd_alloc_pending(v))
		return 0;
	if (!(v->flags & VHD_OPEN_UNSAFE_NOSYNC) &&
	    (r = v->io->ops->flush(v->io)) < 0)
		return sync_fail(v, r);
	if ((r = vhd_layout_commit_deferred(v)) < 0)
		return r;
	return vhd_bm_commit(v);
}

/* Allocates block blk holding [boff, boff+len) of buf (buf NULL: zeros).
 * Order: footer after the block, bitmap and data; the BAT entry is set in
 * memory and written by the next commit (flush, FUA, close, or the bound
 * on pending allocations), after its barrier.  Without a barrier at all
 * (UNSAFE_NOSYNC and no batch) the entry is written at once. */
static int
alloc_block(struct vhd *v, uint32_t blk, uint32_t boff, const uint8_t *buf,
	    size_t len)
{
	/* Room for the bitmap, the data and the footer behind them, clear of
	 * metadata past the end of the file that a grown file would show. */
	uint64_t bstart = vhd_layout_place(v, v->next_free, v->bitmap_size +
					   (uint64_t)v->block_size + 512, 1);
	uint64_t data = bstart + v->bitmap_size;
	uint64_t bend = data + v->block_size;
	int diff = v->type == VHD_TYPE_DIFF;
	uint8_t *bits = NULL;
	int defer = deferring(v);
	int r;

	if (bstart / 512 >= VHD_BAT_UNUSED)
		return vhd_err(ENOSPC, "'%s': no room for another block: block "
			       "offsets are limited to 2 TiB", v->path);
	/* At the bound, commit before this allocation writes anything: a
	 * failed commit fails this write with nothing of it done.  Merge's
	 * batches grow the list instead (it commits each range). */
	if (defer && !v->batch && (v->pend_n >= VHD_PEND_MAX ||
				   v->pend_bytes >= VHD_PEND_MAX_BYTES) &&
	    (r = commit_locked(v)) < 0)
		return r;
	if (defer && v->pend_n == v->pend_cap) {
		uint32_t *p = realloc(v->pend, 2 * sizeof(*p) * v->pend_cap);
		if (!p)
			return vhd_err(ENOMEM, "no memory");
		v->pend = p;
		v->pend_cap *= 2;
	}
	bits = malloc(v->bitmap_size);
	if (!bits)
		return vhd_err(ENOMEM, "no memory");
	if (diff) {
		memset(bits, 0, v->bitmap_size);
		uint32_t s1 = (uint32_t)((boff + len + 511) / 512);
		for (uint32_t s = boff / 512; s < s1; s++)
			bit_set(bits, s);
	} else {
		/* A dynamic block reads as zeros where unwritten, so every
		 * bit is set and later I/O never needs the bitmap. */
		memset(bits, 0xff, v->bitmap_size);
	}
	/* The new trailing footer goes first: every later crash point then
	 * leaves a valid footer at the end (the space below is leaked, not
	 * damaged).  Without a barrier between them the order of these
	 * writes is not durable anyway; the barrier before the BAT is. */
	uint64_t old_zero_eof = v->zero_eof;
	if ((r = vhd_layout_grow(v, bend)) < 0)
		goto out;
	if ((r = pwrite_at(v, bits, v->bitmap_size, bstart)) < 0)
		goto out;
	if (buf && diff)
		r = write_in_block(v, blk, data, boff, buf, len, 1);
	else if (buf)    /* the rest of its edge sectors is zeros (below) */
		r = pwrite_at(v, buf, len, data + boff);
	if (r < 0)
		goto out;
	if (!diff && old_zero_eof > data) {
		/* Below the old end of file (the old footer, or leftovers of
		 * a crash) the file is not zeros: zero what we do not write. */
		uint64_t w0 = data + boff, w1 = buf ? data + boff + len : w0;
		uint64_t z1 = old_zero_eof < w0 ? old_zero_eof : w0;
		if (z1 > data && (r = vhd_io_zero(v->io, data, z1 - data)) < 0)
			goto zfail;
		z1 = old_zero_eof < bend ? old_zero_eof : bend;
		if (z1 > w1 && (r = vhd_io_zero(v->io, w1, z1 - w1)) < 0)
			goto zfail;
	}
	if (defer)
		vhd_layout_map_deferred(v, blk, bstart, diff ? bits : NULL);
	else
		r = vhd_layout_map_block(v, blk, bstart, diff ? bits : NULL, 1);
out:
	free(bits);
	return r;
zfail:
	r = io_fail(v, r, "write", data);
	goto out;
}

void
vhd_alloc_batch(struct vhd *v, int on)
{
	pthread_rwlock_wrlock(&v->lock);
	v->batch = on;
	pthread_rwlock_unlock(&v->lock);
}

int
vhd_alloc_commit(struct vhd *v)
{
	int r = 0;

	pthread_rwlock_wrlock(&v->lock);
	if (!vhd_alloc_pending(v))
		goto out;
	if ((r = commit_locked(v)) < 0)
		goto out;
	if (!(v->flags & VHD_OPEN_UNSAFE_NOSYNC) &&
	    (r = v->io->ops->flush(v->io)) < 0)
		r = sync_fail(v, r);
out:
	pthread_rwlock_unlock(&v->lock);
	return r;
}

int
vhd_alloc_close(struct vhd *v)
{
	return commit_locked(v);
}

/* One block's part of a write; caller holds the exclusive lock.  buf may
 * hold bytes the caller of vhd_pwrite did not write (a child's page
 * completed from below). */
static int
write_chunk(struct vhd *v, uint32_t blk, uint32_t boff, const uint8_t *buf,
	    size_t len)
{
	uint32_t e = v->bat[blk];
	int r;

	if (e == VHD_BAT_UNUSED)
		return alloc_block(v, blk, boff, buf, len);
	uint64_t data = (uint64_t)e * 512 + v->bitmap_size;
	if (v->bm_state[blk] == BM_FULL)
		return pwrite_at(v, buf, len, data + boff);
	/* No room for another changed bitmap: commit before writing. */
	if (deferring(v) && vhd_bm_dirty_full(v, blk) &&
	    (r = commit_locked(v)) < 0)
		return r;
	r = write_in_block(v, blk, data, boff, buf, len, 0);
	if (r < 0)
		return r;
	uint32_t s0 = boff / 512, s1 = (uint32_t)((boff + len + 511) / 512);
	/* The bits are set in memory (reads see them at once) and written by
	 * the next commit, after its barrier: a bit never reaches the disk
	 * before the data it covers, which matters most where it covers bytes
	 * nobody wrote (the filled part of a page, the rest of a partial
	 * sector: they would read as whatever the file held there). */
	return vhd_bm_set(v, blk, s0, s1 - s0, deferring(v));
}

/* Differencing disks are written in whole 4 KiB pages: the parts of an
 * edge page the request does not cover are filled with what the chain
 * shows there.  The bitmap then changes in runs of 8 sectors, as tapdisk
 * and Windows write them; libvhdi (vhdimount) misreads a clear run that
 * starts inside a 4 KiB page of an allocated child block. */
#define DIFF_PAGE 4096u

static int
write_chunk_diff(struct vhd *v, uint32_t blk, uint32_t boff,
		 const uint8_t *buf, size_t len)
{
	uint64_t bstart = (uint64_t)blk * v->block_size;
	uint8_t page[DIFF_PAGE];
	int r;

	while (len > 0) {
		uint32_t p0 = boff / DIFF_PAGE * DIFF_PAGE;
		uint32_t pe = p0 + DIFF_PAGE;
		if (pe > v->block_size)
			pe = v->block_size;
		size_t k = pe - boff < len ? pe - boff : len;
		if (boff == p0 && k == pe - p0) {
			/* Whole pages from here: write them in one go. */
			size_t whole = len / DIFF_PAGE * DIFF_PAGE;
			if (whole < k)
				whole = k;
			r = write_chunk(v, blk, boff, buf, whole);
			k = whole;
		} else {
			r = vhd_read_level(v, page, pe - p0, bstart + p0);
			if (r == 0) {
				memcpy(page + (boff - p0), buf, k);
				r = write_chunk(v, blk, p0, page, pe - p0);
			}
		}
		if (r < 0)
			return r;
		boff += (uint32_t)k;
		buf += k;
		len -= k;
	}
	return 0;
}

static int
write_slow(struct vhd *v, const uint8_t *buf, size_t n, uint64_t off)
{
	size_t len;

	for (; n > 0; buf += len, off += len, n -= len) {
		uint32_t blk, boff;
		len = block_part(v, off, n, &blk, &boff);
		int r = v->type == VHD_TYPE_DIFF ?
			write_chunk_diff(v, blk, boff, buf, len) :
			write_chunk(v, blk, boff, buf, len);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The writes that may run in parallel under the shared lock: every block
 * of the range allocated, and either every bit set (plain data writes) or
 * a differencing disk's whole 4 KiB pages, whose bits are then set in
 * memory after their data (committed later, after a barrier, as
 * write_chunk does).  *done 0: the caller takes the exclusive lock,
 * which here is also when the changed-bitmap list is full (it commits
 * first) and writes it all again: the same bytes, and the bits set
 * before stay set, their data being written. */
static int
write_shared(struct vhd *v, const uint8_t *buf, size_t n, uint64_t off,
	     int *done)
{
	uint64_t b0 = off / v->block_size, b1 = (off + n - 1) / v->block_size;
	int full = 1;

	*done = 0;
	for (uint64_t b = b0; b <= b1; b++) {
		if (v->bat[b] == VHD_BAT_UNUSED)
			return 0;
		if (v->bm_state[b] != BM_FULL)
			full = 0;
	}
	if (!full && (v->type != VHD_TYPE_DIFF || !deferring(v) ||
		      off % DIFF_PAGE || n % DIFF_PAGE))
		return 0;
	for (size_t len; n > 0; buf += len, off += len, n -= len) {
		uint32_t blk, boff;
		len = block_part(v, off, n, &blk, &boff);
		uint64_t data = (uint64_t)v->bat[blk] * 512 + v->bitmap_size;
		int r = pwrite_at(v, buf, len, data + boff);
		if (r == 0 && !full) {
			r = vhd_bm_set_shared(v, blk, boff / 512,
					      (uint32_t)(len / 512));
			if (r == 0)
				return 0;       /* no room: the exclusive path */
		}
		if (r < 0) {
			*done = 1;
			return r;
		}
	}
	*done = 1;
	return 0;
}

static int
check_write(struct vhd *v, uint64_t off, uint64_t n, const char *what)
{
	if (!v->rdwr)
		return vhd_err(EROFS, "'%s': opened read-only", v->path);
	if (off > v->size || n > v->size - off)
		return vhd_err(ENOSPC, "'%s': %s of %llu bytes at %llu is past "
			       "the end of the disk (%llu bytes)", v->path,
			       what, (unsigned long long)n,
			       (unsigned long long)off,
			       (unsigned long long)v->size);
	return 0;
}

int
vhd_pwrite(struct vhd *v, const void *buf, size_t n, uint64_t off)
{
	int r, done;

	if (!v || (!buf && n))
		return vhd_err(EINVAL, "vhd_pwrite: bad arguments");
	if ((r = check_write(v, off, n, "write")) < 0)
		return r;
	if (n == 0)
		return 0;
	if (v->drv->write) {
		pthread_rwlock_wrlock(&v->lock);
		r = v->drv->write(v, buf, n, off);
		pthread_rwlock_unlock(&v->lock);
		return r;
	}
	if (v->type == VHD_TYPE_FIXED) {
		pthread_rwlock_rdlock(&v->lock);
		r = pwrite_at(v, buf, n, off);
		pthread_rwlock_unlock(&v->lock);
		return r;
	}
	pthread_rwlock_rdlock(&v->lock);
	r = write_shared(v, buf, n, off, &done);
	pthread_rwlock_unlock(&v->lock);
	if (done)
		return r;
	pthread_rwlock_wrlock(&v->lock);
	r = write_slow(v, buf, n, off);
	pthread_rwlock_unlock(&v->lock);
	return r;
}

/* A FUA write into blocks that are all allocated with every bit set and
 * committed (or a fixed disk): only data moves, so writing it durably is
 * enough.  1 in
 * *done if it applied; *flush set if the backend could not write durably
 * (the data was written; the caller syncs). */
static int
write_fua_fast(struct vhd *v, const uint8_t *buf, size_t n, uint64_t off,
	       int *done, int *flush)
{
	uint64_t b0, b1;

	*done = 0;
	if (v->type != VHD_TYPE_FIXED) {
		b0 = off / v->block_size;
		b1 = (off + n - 1) / v->block_size;
		for (uint64_t b = b0; b <= b1; b++)
			if (v->bat[b] == VHD_BAT_UNUSED ||
			    v->bm_state[b] != BM_FULL ||
			    vhd_layout_pending(v, (uint32_t)b))
				return 0;
	}
	*done = 1;
	while (n > 0) {
		uint64_t phys = off;
		size_t len = n;
		int r;

		if (v->type != VHD_TYPE_FIXED) {
			uint32_t blk = (uint32_t)(off / v->block_size);
			uint32_t boff = (uint32_t)(off % v->block_size);
			if (len > v->block_size - boff)
				len = v->block_size - boff;
			phys = (uint64_t)v->bat[blk] * 512 + v->bitmap_size + boff;
		}
		r = *flush ? -ENOTSUP :
			vhd_io_file_pwrite_sync(v->io, buf, len, phys);
		if (r == -ENOTSUP) {
			*flush = 1;
			r = v->io->ops->pwrite(v->io, buf, len, phys);
		}
		if (r < 0)
			return io_fail(v, r, "write", phys);
		buf += len;
		off += len;
		n -= len;
	}
	return 0;
}

int
vhd_pwrite_flags(struct vhd *v, const void *buf, size_t n, uint64_t off,
		 unsigned flags)
{
	int r, done, flush = 0;

	if (flags & ~VHD_WRITE_FUA)
		return vhd_err(EINVAL, "vhd_pwrite_flags: unknown flags 0x%x",
			       flags & ~VHD_WRITE_FUA);
	if (!(flags & VHD_WRITE_FUA) || !v || (!buf && n) || n == 0)
		return vhd_pwrite(v, buf, n, off);
	if ((r = check_write(v, off, n, "write")) < 0)
		return r;
	if (v->drv->write) {
		/* Another format's driver (VHDX: data, then its log): the
		 * write, then a flush of the image. */
		if ((r = vhd_pwrite(v, buf, n, off)) < 0)
			return r;
		return vhd_flush(v);
	}
	pthread_rwlock_rdlock(&v->lock);
	r = write_fua_fast(v, buf, n, off, &done, &flush);
	pthread_rwlock_unlock(&v->lock);
	/* Otherwise the write allocates, sets bits or lies in a block whose
	 * entry is pending: vhd_flush commits (barrier, BAT entries) and
	 * syncs, making the data and the metadata durable. */
	if (!done) {
		r = vhd_pwrite(v, buf, n, off);
		flush = 1;
	}
	if (r == 0 && flush)
		r = vhd_flush(v);
	return r;
}

int
vhd_flush(struct vhd *v)
{
	uint32_t pend;
	int r;

	if (!v)
		return vhd_err(EINVAL, "vhd_flush: no handle");
	if (!v->rdwr)
		return 0;
	pthread_rwlock_rdlock(&v->lock);
	pend = vhd_alloc_pending(v);
	pthread_rwlock_unlock(&v->lock);
	if (pend > 0) {
		pthread_rwlock_wrlock(&v->lock);
		r = commit_locked(v);
		pthread_rwlock_unlock(&v->lock);
		if (r < 0)
			return r;
	}
	r = v->io->ops->flush(v->io);
	return r < 0 ? sync_fail(v, r) : 0;
}

/* Does any ancestor of v store data in [off, off+len)? */
static int
below_has_data(struct vhd *v, uint64_t off, uint64_t len, int *has)
{
	*has = 0;
	if (v->type != VHD_TYPE_DIFF)
		return 0;
	if (!v->parent) {
		*has = 1;         /* unknown: assume it does */
		return 0;
	}
	while (len > 0) {
		uint64_t run;
		unsigned st;
		int r = vhd_map_level(v->parent, off, len, &run, &st, NULL);
		if (r < 0)
			return r;
		if (st & VHD_MAP_DATA) {
			*has = 1;
			return 0;
		}
		off += run;
		len -= run;
	}
	return 0;
}

/* Deallocates block blk (dynamic, or a child block over nothing):
 * BAT entry first, barrier, then the space is punched. */
static int
dealloc_block(struct vhd *v, uint32_t blk)
{
	uint64_t bstart = (uint64_t)v->bat[blk] * 512;
	int pending = vhd_layout_pending(v, blk), r;

	if ((r = vhd_layout_unmap_block(v, blk)) < 0)
		return r;
	/* A pending block's entry never reached the disk: no barrier. */
	if (!(v->flags & VHD_OPEN_UNSAFE_NOSYNC) && !pending) {
		r = v->io->ops->flush(v->io);
		if (r < 0)
			return sync_fail(v, r);
	}
	/* The space is never reused in this session (a lost BAT update
	 * would otherwise leave two entries on it); compaction reclaims it. */
	if (v->io->ops->punch)
		(void)v->io->ops->punch(v->io, bstart,
					v->bitmap_size + (uint64_t)v->block_size);
	return 0;
}

static int
write_zero_range(struct vhd *v, uint64_t off, uint64_t len)
{
	while (len > 0) {
		size_t k = len > sizeof(zero_buf) ? sizeof(zero_buf) :
			   (size_t)len;
		int r;
		if (v->type == VHD_TYPE_FIXED)
			r = pwrite_at(v, zero_buf, k, off);
		else
			r = write_slow(v, zero_buf, k, off);
		if (r < 0)
			return r;
		off += k;
		len -= k;
	}
	return 0;
}

/* Plans (do = 0: only decides whether data writes are needed) or does
 * the zeroing of a dynamic or differencing disk's range. */
static int
zero_sparse(struct vhd *v, uint64_t off, uint64_t len, unsigned flags,
	    int doit, int *needs_writes)
{
	while (len > 0) {
		uint32_t blk = (uint32_t)(off / v->block_size);
		uint64_t bs = (uint64_t)blk * v->block_size;
		uint64_t be = bs + v->block_size;
		uint64_t k = be - off < len ? be - off : len;
		int whole = off == bs && (k == v->block_size ||
					  off + k == v->size);
		int alloc = v->bat[blk] != VHD_BAT_UNUSED, has, r;

		if ((r = below_has_data(v, off, k, &has)) < 0)
			return r;
		if (flags & VHD_ZERO_NO_HOLE) {
			*needs_writes = 1;
			if (doit && (r = write_zero_range(v, off, k)) < 0)
				return r;
		} else if (!has && whole) {
			if (alloc && doit && (r = dealloc_block(v, blk)) < 0)
				return r;
		} else if (!has && !alloc) {
			/* already zeros */
		} else {
			*needs_writes = 1;
			if (doit && (r = write_zero_range(v, off, k)) < 0)
				return r;
		}
		off += k;
		len -= k;
	}
	return 0;
}

static int
zeroes(struct vhd *v, uint64_t off, uint64_t len, unsigned flags, int discard)
{
	int r, needs = 0;

	if (!v || (flags & ~(VHD_ZERO_NO_HOLE | VHD_ZERO_FAST_ONLY)))
		return vhd_err(EINVAL, "vhd_write_zeroes: bad arguments");
	if ((r = check_write(v, off, len, "zeroing")) < 0)
		return r;
	if (len == 0)
		return 0;
	pthread_rwlock_wrlock(&v->lock);
	if (v->drv->zero) {
		r = v->drv->zero(v, off, len, flags, discard);
		goto out;
	}
	if (v->type == VHD_TYPE_FIXED) {
		r = -ENOTSUP;
		if (!(flags & VHD_ZERO_NO_HOLE) && v->io->ops->punch)
			r = v->io->ops->punch(v->io, off, len);
		if (r < 0 && (flags & VHD_ZERO_FAST_ONLY))
			r = vhd_err(ENOTSUP, "'%s': zeroing needs data writes",
				    v->path);
		else if (r < 0)
			r = write_zero_range(v, off, len);
		goto out;
	}
	if (flags & VHD_ZERO_FAST_ONLY) {
		r = zero_sparse(v, off, len, flags, 0, &needs);
		if (r < 0)
			goto out;
		if (needs) {
			r = vhd_err(ENOTSUP, "'%s': zeroing needs data writes",
				    v->path);
			goto out;
		}
	}
	r = zero_sparse(v, off, len, flags, 1, &needs);
out:
	pthread_rwlock_unlock(&v->lock);
	return r;
}

int
vhd_write_zeroes(struct vhd *v, uint64_t off, uint64_t len, unsigned flags)
{
	return zeroes(v, off, len, flags, 0);
}

int
vhd_discard(struct vhd *v, uint64_t off, uint64_t len)
{
	if (v && (off > v->size || len > v->size - off))
		return vhd_err(EINVAL, "'%s': discard of %llu bytes at %llu is "
			       "past the end of the disk (%llu bytes)", v->path,
			       (unsigned long long)len, (unsigned long long)off,
			       (unsigned long long)v->size);
	return zeroes(v, off, len, 0, 1);
}
