/*
 * resize.c - changing a disk's size (vhd_resize) and the type changes
 * that need no copy: raw <-> fixed VHD by adding or removing the footer.
 *
 * Crash safety (every step below is followed by a barrier where the next
 * step depends on it being durable; see SPEC.md "Resizing"):
 *
 *  Fixed, grow:   new footer at the new end (extends the file), barrier,
 *                 zeros over the old footer (now disk data).  A crash in
 *                 between leaves a valid image of the new size whose new
 *                 space holds the 512 bytes of the old footer at its start.
 *  Fixed, shrink: new footer at the new end (inside the dropped range),
 *                 barrier, truncate.  Until the truncate the old footer is
 *                 still the last 512 bytes: the old size.
 *  Dynamic and differencing, grow within the BAT's spare entries: only the
 *                 footers change: the trailing footer first (what we and
 *                 Hyper-V read), then the copy at offset 0 (what QEMU reads).
 *  Grow needing a bigger BAT: every block lying where the BAT must grow is
 *                 copied to the end of the file (footer behind it first,
 *                 copy, barrier, BAT entry, barrier), so the old place is
 *                 free; then the BAT's new entries are written there,
 *                 barrier, then the header with the new max table entries
 *                 (one 1024-byte write), barrier, then the footers.  Where
 *                 other metadata (parent locators, blktap's batmap) lies in
 *                 the way, the whole BAT is written anew past the last
 *                 block and the header switches to it in one write.
 *  Shrink:        the BAT entries of blocks past the new end are cleared,
 *                 barrier, then the footers.  The spare entries stay.
 *
 * The footer's original size is set to the new size too: libvhdi (and so
 * vhdimount) takes the disk size from it, and every other reader uses the
 * current size, so the readers keep agreeing.  The geometry is recomputed
 * (kept at 65535/16/255 when it was that: QEMU then uses the current size).
 */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

#define COPY_CHUNK (1u << 20)

/* ---- a borrowed backend: closing it leaves the caller's io open ---- */
struct borrow_io {
	struct vhd_io io;
	struct vhd_io *in;
};

static int
b_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct vhd_io *in = ((struct borrow_io *)io)->in;
	return in->ops->pread(in, buf, n, off);
}

static int
b_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct vhd_io *in = ((struct borrow_io *)io)->in;
	return in->ops->pwrite(in, buf, n, off);
}

static int
b_flush(struct vhd_io *io)
{
	struct vhd_io *in = ((struct borrow_io *)io)->in;
	return in->ops->flush(in);
}

static int
b_get_size(struct vhd_io *io, uint64_t *size)
{
	struct vhd_io *in = ((struct borrow_io *)io)->in;
	return in->ops->get_size(in, size);
}

static int
b_truncate(struct vhd_io *io, uint64_t size)
{
	struct vhd_io *in = ((struct borrow_io *)io)->in;
	return in->ops->truncate(in, size);
}

static int
b_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct vhd_io *in = ((struct borrow_io *)io)->in;
	return in->ops->punch ? in->ops->punch(in, off, n) : -ENOTSUP;
}

static void
b_close(struct vhd_io *io)
{
	free(io);
}

static const struct vhd_io_ops borrow_ops = {
	1, b_pread, b_pwrite, b_flush, b_get_size, b_truncate, b_punch,
	b_close,
};

/* Shared with compact.c (declared there): a wrapper whose close leaves
 * inner open, so *_io entry points can hand it to a handle. */
int vhd_borrow_io(struct vhd_io **out, struct vhd_io *inner);

int
vhd_borrow_io(struct vhd_io **out, struct vhd_io *inner)
{
	struct borrow_io *b = calloc(1, sizeof(*b));

	if (!b)
		return vhd_err(ENOMEM, "no memory");
	b->io.ops = &borrow_ops;
	b->io.name = inner->name;
	b->in = inner;
	*out = &b->io;
	return 0;
}

/* ---- helpers ---- */


/* Copies n bytes inside the file from src to dst (the ranges do not
 * overlap). */
static int
copy_range(struct vhd *v, uint64_t src, uint64_t dst, uint64_t n)
{
	uint8_t *buf = malloc(n < COPY_CHUNK ? (size_t)n : COPY_CHUNK);
	int r = 0;

	if (!buf)
		return vhd_err(ENOMEM, "no memory");
	for (uint64_t o = 0; o < n && r == 0;) {
		size_t k = n - o < COPY_CHUNK ? (size_t)(n - o) : COPY_CHUNK;
		r = v->io->ops->pread(v->io, buf, k, src + o);
		if (r < 0) {
			r = vhd_err(-r, "'%s': cannot read at offset %llu: %s",
				    v->path, (unsigned long long)(src + o),
				    strerror(-r));
			break;
		}
		r = vhd_file_write(v, buf, k, dst + o);
		o += k;
	}
	free(buf);
	return r;
}

/* The footer for size ns: current and original size, geometry. */
static void
footer_set_size(struct vhd_footer *f, uint64_t ns)
{
	int maxgeo = f->cylinders == 65535 && f->heads == 16 && f->spt == 255;

	f->cur_size = ns;
	f->orig_size = ns;
	if (!maxgeo)
		vhd_chs(ns, &f->cylinders, &f->heads, &f->spt);
}

/* Trailing footer, then the copy at 0 (dynamic and differencing). */
static int
write_footers(struct vhd *v, uint64_t ns)
{
	int r;

	footer_set_size(&v->ft, ns);
	if ((r = vhd_write_footer(v)) < 0)
		return r;
	if (v->type != VHD_TYPE_FIXED && (r = vhd_write_footer_copy(v)) < 0)
		return r;
	v->size = ns;
	return vhd_file_sync(v);
}

/* ---- fixed disks ---- */
static int
resize_fixed(struct vhd *v, uint64_t ns)
{
	uint64_t old = v->size;
	int r;

	footer_set_size(&v->ft, ns);
	/* Shrinking: footer, barrier, truncate, barrier. */
	if ((r = vhd_layout_footer_to(v, ns)) < 0)
		return r;
	v->size = ns;
	if (ns < old)
		return 0;
	/* Growing: footer, barrier, zeros over the old footer, barrier. */
	uint64_t z = ns - old < 512 ? ns - old : 512;
	if ((r = vhd_io_zero(v->io, old, z)) < 0)
		return vhd_err(-r, "'%s': cannot write zeros at %llu: %s",
			       v->path, (unsigned long long)old, strerror(-r));
	return vhd_file_sync(v);
}

/* ---- dynamic and differencing: the data check for shrinking ---- */

/* Does [off, end) read as anything but zeros (through the chain: a
 * child cut short hides its parent's data too)?  1 yes, 0 no, -errno. */
static int
holds_data(struct vhd *v, uint64_t off, uint64_t end)
{
	uint8_t *buf = NULL;
	int r = 0;

	while (off < end && r == 0) {
		uint64_t run = 0;
		unsigned st = 0;
		int depth = 0;
		if ((r = vhd_map_level(v, off, end - off, &run, &st, &depth)) < 0)
			break;
		if (run == 0 || run > end - off)
			run = end - off;
		if (st & VHD_MAP_DATA) {
			if (!buf && !(buf = malloc(COPY_CHUNK))) {
				r = vhd_err(ENOMEM, "no memory");
				break;
			}
			for (uint64_t o = off; o < off + run && r == 0;) {
				size_t k = off + run - o < COPY_CHUNK ?
					   (size_t)(off + run - o) : COPY_CHUNK;
				if ((r = vhd_read_level(v, buf, k, o)) < 0)
					break;
				if (!vhd_is_zero(buf, k))
					r = 1;
				o += k;
			}
		}
		off += run;
	}
	free(buf);
	return r;
}

/* Refuses (ENOTEMPTY) a shrink to ns that would cut off data. */
static int
check_cut(struct vhd *v, uint64_t ns)
{
	int r = holds_data(v, ns, v->size);

	if (r > 0)
		return vhd_err(ENOTEMPTY, "'%s': the range from %llu to %llu "
			       "that shrinking would cut off holds data",
			       v->path, (unsigned long long)ns,
			       (unsigned long long)v->size);
	return r;
}

/* ---- dynamic and differencing: growing the BAT ---- */

/* Moves block blk to the end of the file: footer behind its new place,
 * copy, barrier, BAT entry, barrier. */
static int
move_block_to_end(struct vhd *v, uint32_t blk)
{
	uint64_t len = (uint64_t)v->bitmap_size + v->block_size;
	uint64_t src = (uint64_t)v->bat[blk] * 512;
	uint64_t dst = vhd_layout_place(v, v->next_free, len + 512, 1);
	int r;

	if ((dst + len) / 512 >= VHD_BAT_UNUSED)
		return vhd_err(ENOSPC, "'%s': no room to move block %u: block "
			       "offsets are limited to 2 TiB", v->path, blk);
	if ((r = vhd_layout_grow(v, dst + len)) < 0)
		return r;
	if ((r = copy_range(v, src, dst, len)) < 0 || (r = vhd_file_sync(v)) < 0)
		return r;
	if ((r = vhd_layout_map_block(v, blk, dst, NULL, 0)) < 0)
		return r;
	return vhd_file_sync(v);
}

/* The table in memory grown to n entries (the new ones unused), and its
 * entries from the sector holding first as big-endian bytes, padded to a
 * sector with 0xFF.  NULL: no memory (message set). */
static uint8_t *
grown_bat_bytes(struct vhd *v, uint32_t n, uint32_t first, size_t *len)
{
	uint32_t f = first / 128 * 128;
	size_t l = (size_t)align_up((uint64_t)(n - f) * 4, 512);
	uint32_t *nb = realloc(v->bat, (size_t)n * sizeof(uint32_t));
	uint8_t *b;

	if (nb)
		v->bat = nb;
	if (!nb || !(b = malloc(l ? l : 512))) {
		vhd_err(ENOMEM, "no memory");
		return NULL;
	}
	for (uint32_t i = v->bat_entries; i < n; i++)
		nb[i] = VHD_BAT_UNUSED;
	vhd_bat_encode(nb, f, n, b, l);
	*len = l;
	return b;
}

/* BAT in place: move the blocks in the way, write the new entries. */
static int
grow_bat_in_place(struct vhd *v, uint32_t n, vhd_progress_fn progress,
		  void *arg)
{
	uint64_t old_end = v->hdr.table_offset + vhd_bat_bytes(v);
	uint64_t new_end = v->hdr.table_offset + align_up((uint64_t)n * 4, 512);
	uint64_t len = (uint64_t)v->bitmap_size + v->block_size;
	uint32_t moved = 0, todo = 0;
	int r;

	/* Blocks move past the new end of the table. */
	vhd_layout_reserve(v, new_end);
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		uint64_t s = (uint64_t)v->bat[i] * 512;
		if (v->bat[i] != VHD_BAT_UNUSED &&
		    ranges_overlap(s, s + len, old_end, new_end))
			todo++;
	}
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		uint64_t s = (uint64_t)v->bat[i] * 512;
		if (v->bat[i] == VHD_BAT_UNUSED ||
		    !ranges_overlap(s, s + len, old_end, new_end))
			continue;
		if ((r = move_block_to_end(v, i)) < 0)
			return r;
		moved++;
		if (progress)
			progress(arg, moved, todo);
	}
	/* An image without blocks there has its trailing footer where the
	 * BAT grows: move the footer past it first. */
	if (v->footer_off < new_end) {
		uint64_t fo = vhd_layout_place(v, v->next_free, 512, 0);
		if ((r = vhd_layout_grow(v, fo)) < 0 ||
		    (r = vhd_file_sync(v)) < 0)
			return r;
	}
	/* The space is free now (no entry points there): the new entries. */
	size_t bl;
	uint32_t first = v->bat_entries / 128 * 128;
	uint8_t *b = grown_bat_bytes(v, n, first, &bl);
	if (!b)
		return -ENOMEM;
	r = vhd_file_write(v, b, bl, v->hdr.table_offset + (uint64_t)first * 4);
	free(b);
	if (r < 0 || (r = vhd_file_sync(v)) < 0)
		return r;
	v->hdr.max_entries = n;
	if ((r = vhd_write_header(v)) < 0)
		return r;
	v->bat_entries = n;
	return vhd_file_sync(v);
}

/* BAT (and blktap batmap) rewritten past the last block; the header
 * switches to it in one write. */
static int
grow_bat_to_end(struct vhd *v, uint32_t n)
{
	size_t bl, ml = 0;
	uint8_t *b, *map = NULL, mh[512];
	int r;

	if (!(b = grown_bat_bytes(v, n, 0, &bl)))
		return -ENOMEM;
	if (v->batmap.present)
		ml = (size_t)align_up(((uint64_t)n + 7) / 8, 512);
	/* BAT, batmap header and map, footer: clear of locator data. */
	uint64_t off = vhd_layout_place(v, v->next_free > v->footer_off ?
					v->next_free : v->footer_off,
					bl + (ml ? 512 + ml : 0) + 512, 0);
	uint64_t end = off + bl;
	if (v->batmap.present) {
		/* blktap finds the batmap header right after the BAT. */
		map = calloc(1, ml);
		if (!map) {
			free(b);
			return vhd_err(ENOMEM, "no memory");
		}
		uint64_t oldl = (uint64_t)v->batmap.map_sectors * 512;
		memcpy(map, v->batmap.map, oldl < ml ? (size_t)oldl : ml);
		if ((r = v->io->ops->pread(v->io, mh, 512,
					   v->batmap.hdr_off)) < 0) {
			r = vhd_err(-r, "'%s': cannot read the batmap", v->path);
			goto out;
		}
		struct vhd_batmap nm = v->batmap;
		nm.map_off = end + 512;
		nm.map_sectors = (uint32_t)(ml / 512);
		nm.checksum = vhd_checksum(map, ml, ml);
		vhd_batmap_header_put(mh, &nm);
		end += 512 + ml;
	}
	if ((r = vhd_layout_grow(v, end)) < 0 || (r = vhd_file_write(v, b, bl, off)) < 0)
		goto out;
	if (map && ((r = vhd_file_write(v, mh, 512, off + bl)) < 0 ||
		    (r = vhd_file_write(v, map, ml, off + bl + 512)) < 0))
		goto out;
	if ((r = vhd_file_sync(v)) < 0)
		goto out;
	v->hdr.table_offset = off;
	v->hdr.max_entries = n;
	if ((r = vhd_write_header(v)) < 0)
		goto out;
	v->bat_entries = n;
	r = vhd_file_sync(v);
out:
	free(b);
	free(map);
	return r;
}

static int
grow_bat(struct vhd *v, uint32_t n, vhd_progress_fn progress, void *arg)
{
	uint64_t old_end = v->hdr.table_offset + vhd_bat_bytes(v);
	uint64_t new_end = v->hdr.table_offset + align_up((uint64_t)n * 4, 512);
	struct vhd_ext m[VHD_META_EXTENTS];
	size_t k = vhd_meta_extents(v, m, 0);
	int blocked = v->batmap.hdr_off != 0;

	/* The header, locator data or a batmap where the table grows. */
	for (size_t i = 0; i < k; i++)
		if (ranges_overlap(m[i].start, m[i].end, old_end, new_end))
			blocked = 1;
	if (new_end == old_end) {
		/* The last BAT sector has room: only its padding changes. */
		blocked = 0;
	}
	return blocked ? grow_bat_to_end(v, n) :
			 grow_bat_in_place(v, n, progress, arg);
}

/* ---- dynamic and differencing: shrinking ---- */
static int
shrink_dyn(struct vhd *v, uint64_t ns, unsigned flags)
{
	uint32_t keep = (uint32_t)((ns + v->block_size - 1) / v->block_size);
	int r, any = 0;

	if (!(flags & VHD_RESIZE_FORCE) && (r = check_cut(v, ns)) < 0)
		return r;
	for (uint32_t i = keep; i < v->blocks; i++) {
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		if ((r = vhd_layout_unmap_block(v, i)) < 0)
			return r;
		any = 1;
	}
	/* The kept last block's part past the new end must not come back
	 * if the disk grows again: zero it (only --force leaves data). */
	uint64_t tail = ns % v->block_size;
	if (tail && keep > 0 && v->bat[keep - 1] != VHD_BAT_UNUSED &&
	    (flags & VHD_RESIZE_FORCE)) {
		uint64_t data = (uint64_t)v->bat[keep - 1] * 512 +
				v->bitmap_size;
		uint64_t stop = v->size - (uint64_t)(keep - 1) * v->block_size;
		if (stop > v->block_size)
			stop = v->block_size;
		if (stop > tail && (r = vhd_io_zero(v->io, data + tail,
						    stop - tail)) < 0)
			return vhd_err(-r, "'%s': cannot write zeros: %s",
				       v->path, strerror(-r));
		any = 1;
	}
	if (any && (r = vhd_file_sync(v)) < 0)
		return r;
	return write_footers(v, ns);
}

/* Max Table Entries becomes exactly the disk's block count, which the
 * specification says it "should" be and 7-Zip requires.  Only called with
 * n at least the block count of both the old and the new size, and with
 * the entries from n on unused, so a crash before or after the header
 * write leaves a valid image. */
static int
set_max_entries(struct vhd *v, uint32_t n)
{
	int r;

	if (n == v->hdr.max_entries)
		return 0;
	v->hdr.max_entries = n;
	if ((r = vhd_write_header(v)) < 0)
		return r;
	if (n < v->bat_entries)
		v->bat_entries = n;
	return vhd_file_sync(v);
}

static int
resize_dyn(struct vhd *v, uint64_t ns, unsigned flags,
	   vhd_progress_fn progress, void *arg)
{
	uint64_t n = (ns + v->block_size - 1) / v->block_size;
	int r;

	/* A differencing disk follows the dynamic rules; past its parent's
	 * end it reads zeros (the parent is never changed). */
	if (ns < v->size) {
		/* The footers first: until the header shrinks the table,
		 * it is merely larger than the (new) disk needs. */
		if ((r = shrink_dyn(v, ns, flags)) < 0)
			return r;
		return set_max_entries(v, (uint32_t)n);
	}
	if (n > v->bat_entries) {
		if (n >= VHD_BAT_UNUSED)
			return vhd_err(EINVAL, "'%s': too many blocks", v->path);
		if ((r = grow_bat(v, (uint32_t)n, progress, arg)) < 0)
			return r;
	} else if ((r = set_max_entries(v, (uint32_t)n)) < 0) {
		/* A table larger than the new size needs (created so, or
		 * left by a shrink elsewhere): the header first. */
		return r;
	}
	return write_footers(v, ns);
}

static int
resize_handle(struct vhd *v, uint64_t ns, unsigned flags,
	      vhd_progress_fn progress, void *arg)
{
	int r;

	if (ns == 0 || ns % 512)
		return vhd_err(EINVAL, "'%s': new size %llu: expected a positive "
			       "multiple of 512", v->path,
			       (unsigned long long)ns);
	if (ns > VHD_MAX_DISK_SIZE)
		return vhd_err(EINVAL, "'%s': new size %llu exceeds the VHD limit "
			       "of %llu bytes (2040 GiB)", v->path,
			       (unsigned long long)ns,
			       (unsigned long long)VHD_MAX_DISK_SIZE);
	if (v->warnings & (VHD_WARN_FOOTER_FROM_COPY | VHD_WARN_FOOTER_511))
		return vhd_err(EBADMSG, "'%s': the trailing footer is missing "
			       "or old-style; repair the image before resizing",
			       v->path);
	if (ns == v->size) {
		/* Finish a resize interrupted between its two footer writes:
		 * the copy at offset 0 still has the old size. */
		uint8_t copy[512];
		if (v->type == VHD_TYPE_FIXED)
			return 0;
		if ((r = v->io->ops->pread(v->io, copy, 512, 0)) < 0)
			return vhd_err(-r, "'%s': cannot read: %s", v->path,
				       strerror(-r));
		if (vhd_footer_same(copy, v->footer_raw))
			return 0;
		if ((r = vhd_write_footer_copy(v)) < 0)
			return r;
		return vhd_file_sync(v);
	}
	if (v->type == VHD_TYPE_FIXED) {
		if (ns < v->size && !(flags & VHD_RESIZE_FORCE) &&
		    (r = check_cut(v, ns)) < 0)
			return r;
		r = resize_fixed(v, ns);
	} else {
		r = resize_dyn(v, ns, flags, progress, arg);
	}
	if (r == 0 && progress)
		progress(arg, 1, 1);
	return r;
}

static int
resize_open(struct vhd **out, struct vhd_io *io, const char *path)
{
	/* A differencing disk is opened with its parent: the size rule
	 * needs it. */
	return vhd_open_internal(out, io, path, VHD_OPEN_RDWR |
				 VHD_OPEN_FORMAT_VHD, NULL, 0);
}

int
vhd_resize_io(struct vhd_io *io, uint64_t new_size, unsigned flags,
	      vhd_progress_fn progress, void *arg)
{
	struct vhd_io *b = NULL;      /* mingw gcc: maybe-uninitialized */
	struct vhd *v;
	int r;

	if (!io || (flags & ~VHD_RESIZE_FORCE))
		return vhd_err(EINVAL, "vhd_resize: bad arguments");
	if ((r = vhd_io_check(io, "vhd_resize")) < 0)
		return r;
	if ((r = vhd_borrow_io(&b, io)) < 0)
		return r;
	if ((r = resize_open(&v, b, io->name ? io->name : "image")) < 0) {
		b->ops->close(b);
		return r;
	}
	r = resize_handle(v, new_size, flags, progress, arg);
	vhd_close(v);
	return r;
}

int
vhd_resize(const char *path, uint64_t new_size, unsigned flags,
	   vhd_progress_fn progress, void *arg)
{
	struct vhd_io *io;
	struct vhd *v;
	int r;

	if (!path || (flags & ~VHD_RESIZE_FORCE))
		return vhd_err(EINVAL, "vhd_resize: bad arguments");
	if ((r = vhd_vfs_open(NULL, &io, path, VHD_IO_RDWR, 2)) < 0)
		return r;
	if ((r = resize_open(&v, io, path)) < 0) {
		io->ops->close(io);
		return r;
	}
	r = resize_handle(v, new_size, flags, progress, arg);
	vhd_close(v);
	return r;
}

/* ---- raw <-> fixed without copying ---- */

int
vhd_fixed_footer(uint64_t size, unsigned flags, uint8_t out[512])
{
	struct vhd_footer f;

	if (!out || size == 0 || size % 512 || size > VHD_MAX_DISK_SIZE ||
	    (flags & ~VHD_FOOTER_MAX_GEOMETRY))
		return vhd_err(EINVAL, "vhd_fixed_footer: size %llu: expected a "
			       "positive multiple of 512 up to 2040 GiB",
			       (unsigned long long)size);
	memset(&f, 0, sizeof(f));
	f.features = 2;
	f.version = 0x00010000;
	f.data_offset = VHD_NO_OFFSET;
	f.timestamp = vhd_time_now();
	memcpy(f.creator_app, VHD_CREATOR_APP, 4);
	f.creator_version = VHD_CREATOR_VER;
	memcpy(f.creator_os, "Wi2k", 4);
	f.orig_size = f.cur_size = size;
	if (flags & VHD_FOOTER_MAX_GEOMETRY) {
		/* What QEMU's force_size writes: QEMU then takes the current
		 * size as the disk size whatever the creator. */
		f.cylinders = 65535;
		f.heads = 16;
		f.spt = 255;
	} else {
		vhd_chs(size, &f.cylinders, &f.heads, &f.spt);
	}
	f.type = VHD_TYPE_FIXED;
	int r = vhd_random_bytes(f.uuid, 16);
	if (r < 0)
		return vhd_err(-r, "vhd_fixed_footer: no random bytes");
	f.uuid[6] = (uint8_t)((f.uuid[6] & 0x0f) | 0x40);
	f.uuid[8] = (uint8_t)((f.uuid[8] & 0x3f) | 0x80);
	vhd_footer_encode(&f, out);
	return 0;
}

int
vhd_footer_parse(const uint8_t raw[512], struct vhd_info *out)
{
	struct vhd_problems p = { .fn = NULL, .arg = NULL };
	struct vhd_footer f;
	struct vhd_info in, *info = &in;
	unsigned warn = 0;
	int r;

	if (!raw || !out)
		return vhd_err(EINVAL, "vhd_footer_parse: bad arguments");
	if ((r = vhd_struct_out_ok(out, VHD_INFO_V1, "vhd_info")) < 0)
		return r;
	if (vhd_footer_check(raw, "footer", 0, 0, &warn, &p) != 0)
		return vhd_problems_result(&p);
	vhd_footer_decode(raw, &f);
	memset(info, 0, sizeof(*info));
	info->type = (enum vhd_type)f.type;
	info->virtual_size = f.cur_size;
	info->original_size = f.orig_size;
	info->cylinders = f.cylinders;
	info->heads = f.heads;
	info->sectors_per_track = f.spt;
	info->chs_size = (uint64_t)f.cylinders * f.heads * f.spt * 512;
	memcpy(info->unique_id, f.uuid, 16);
	memcpy(info->creator_app, f.creator_app, 4);
	info->creator_version = f.creator_version;
	memcpy(info->creator_os, f.creator_os, 4);
	info->timestamp = f.timestamp;
	info->features = f.features;
	info->saved_state = f.saved_state;
	info->warnings = warn;
	vhd_struct_out(out, info, sizeof(*info));
	return 0;
}

int
vhd_raw_to_fixed(const char *path, unsigned flags)
{
	struct vhd_io *io;
	uint64_t fs;
	uint8_t foot[512];
	int r;

	if (!path || (flags & ~VHD_FOOTER_MAX_GEOMETRY))
		return vhd_err(EINVAL, "vhd_raw_to_fixed: bad arguments");
	if ((r = vhd_probe(path)) < 0)
		return r;
	if (r == 1)
		return vhd_err(EINVAL, "'%s': already a VHD image", path);
	if ((r = vhd_vfs_open(NULL, &io, path, VHD_IO_RDWR, 2)) < 0)
		return r;
	if ((r = io->ops->get_size(io, &fs)) < 0) {
		r = vhd_err(-r, "'%s': %s", path, strerror(-r));
		goto out;
	}
	if (fs == 0 || fs % 512) {
		r = vhd_err(EINVAL, "'%s': size %llu is not a positive multiple "
			    "of 512 bytes: a VHD footer cannot follow it without "
			    "padding the disk (copy it with 'vhdtool convert' "
			    "instead)", path, (unsigned long long)fs);
		goto out;
	}
	if (fs > VHD_MAX_DISK_SIZE) {
		r = vhd_err(EINVAL, "'%s': size %llu exceeds the VHD limit of "
			    "2040 GiB", path, (unsigned long long)fs);
		goto out;
	}
	if ((r = vhd_fixed_footer(fs, flags, foot)) < 0)
		goto out;
	/* One write appends the footer: before it the file is the raw
	 * disk, after it a fixed VHD of the same disk. */
	if ((r = io->ops->pwrite(io, foot, 512, fs)) < 0 ||
	    (r = io->ops->flush(io)) < 0)
		r = vhd_err(-r, "'%s': cannot write the footer: %s", path,
			    strerror(-r));
out:
	io->ops->close(io);
	return r;
}

int
vhd_fixed_to_raw(const char *path)
{
	struct vhd_io *io;
	struct vhd *v;
	int r;

	if (!path)
		return vhd_err(EINVAL, "vhd_fixed_to_raw: bad arguments");
	if ((r = vhd_vfs_open(NULL, &io, path, VHD_IO_RDWR, 2)) < 0)
		return r;
	if ((r = vhd_open_internal(&v, io, path, VHD_OPEN_RDWR |
				   VHD_OPEN_FORMAT_VHD |
				   VHD_OPEN_NO_PARENT, NULL, 0)) < 0) {
		io->ops->close(io);
		return r;
	}
	if (v->type != VHD_TYPE_FIXED) {
		r = vhd_err(EINVAL, "'%s': a %s disk cannot become raw without "
			    "copying its data (use 'vhdtool convert SRC DST')",
			    path, vhd_type_name((enum vhd_type)v->type));
	} else if (v->footer_off != v->size || v->file_size != v->size + 512) {
		r = vhd_err(EINVAL, "'%s': old-style 511-byte footer: copy it "
			    "instead", path);
	} else if ((r = v->io->ops->truncate(v->io, v->size)) < 0 ||
		   (r = v->io->ops->flush(v->io)) < 0) {
		r = vhd_err(-r, "'%s': cannot remove the footer: %s", path,
			    strerror(-r));
	}
	v->rdwr = 0;    /* nothing more to flush */
	vhd_close(v);
	return r;
}
