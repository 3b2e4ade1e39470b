/*
 * layout.c - the map of a VHD file: where each piece of metadata lies
 * (past the end of the file too), where new space may go, where the
 * trailing footer is and how it moves, the mapping and unmapping of a
 * block, and the search for the footer.  rw.c, resize.c, compact.c,
 * setparent.c, check.c and repair.c only put these steps in order; the
 * order of the writes and barriers each needs is described in SPEC.md
 * (sections "Writing", "Resizing", "Compacting", "Set-parent", "Repair").
 *
 * This file is the only writer of the handle's footer_off, file_size
 * (after the open read it), next_free and zero_eof.
 */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

/* ---- the extents ---- */

static int
cmp_ext(const void *a, const void *b)
{
	const struct vhd_ext *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

void
vhd_ext_sort(struct vhd_ext *x, size_t n)
{
	/* Blocks are usually stored in BAT order behind the metadata: one
	 * pass finds them sorted and the caller stays linear in the blocks
	 * (a million-entry qsort was most of an open's time). */
	for (size_t i = 1; i < n; i++) {
		if (cmp_ext(&x[i - 1], &x[i]) > 0) {
			qsort(x, n, sizeof(*x), cmp_ext);
			return;
		}
	}
}

uint64_t
vhd_bat_bytes(const struct vhd *v)
{
	return align_up((uint64_t)v->bat_entries * 4, 512);
}

size_t
vhd_meta_extents(const struct vhd *v, struct vhd_ext *x, int in_file)
{
	size_t n = 0;

	x[n++] = (struct vhd_ext){ 0, 512, VHD_BAT_UNUSED };
	x[n++] = (struct vhd_ext){ v->ft.data_offset, v->ft.data_offset + 1024,
				   VHD_BAT_UNUSED };
	x[n++] = (struct vhd_ext){ v->hdr.table_offset,
				   v->hdr.table_offset + vhd_bat_bytes(v),
				   VHD_BAT_UNUSED };
	if (in_file ? v->batmap.present : v->batmap.hdr_off != 0)
		x[n++] = (struct vhd_ext){ v->batmap.hdr_off,
					   v->batmap.hdr_off + 512,
					   VHD_BAT_UNUSED };
	/* Not in_file: a map the open ignored (it did not fit before the
	 * footer) counts too, since a later open of a grown file takes it. */
	if (v->batmap.present || (!in_file && v->batmap.hdr_off &&
				  v->batmap.map_sectors <= VHD_BATMAP_MAX / 512 &&
				  v->batmap.map_off <= UINT64_MAX - VHD_BATMAP_MAX))
		x[n++] = (struct vhd_ext){ v->batmap.map_off, v->batmap.map_off +
					   (uint64_t)v->batmap.map_sectors * 512,
					   VHD_BAT_UNUSED };
	if (v->type != VHD_TYPE_DIFF)
		return n;
	for (int i = 0; i < 8; i++) {
		const struct vhd_locator *l = &v->hdr.loc[i];
		uint64_t e = vhd_locator_extent(l);
		if (e == 0)     /* no locator (VHD_PLAT_NONE) or no data */
			continue;
		if (in_file && (l->offset > v->file_size ||
				e > v->file_size - l->offset))
			continue;
		x[n++] = (struct vhd_ext){ l->offset, l->offset > UINT64_MAX - e ?
					   UINT64_MAX : l->offset + e,
					   VHD_BAT_UNUSED };
	}
	return n;
}

int
vhd_extents(struct vhd *v, struct vhd_ext **out, size_t *count)
{
	size_t n, cap = (size_t)v->bat_entries + VHD_META_EXTENTS;
	uint64_t blen = (uint64_t)v->bitmap_size + v->block_size;
	struct vhd_ext *x = malloc(cap * sizeof(*x));

	if (!x)
		return vhd_err(ENOMEM, "no memory");
	n = vhd_meta_extents(v, x, 0);
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		uint64_t s = (uint64_t)v->bat[i] * 512;
		x[n++] = (struct vhd_ext){ s, s + blen, i };
	}
	vhd_ext_sort(x, n);
	*out = x;
	*count = n;
	return 0;
}

/* ---- new space ---- */

uint64_t
vhd_block_slot(const struct vhd *v, uint64_t pos)
{
	return align_up(pos + v->bitmap_size, VHD_DATA_ALIGN) - v->bitmap_size;
}

/* Does the block at BAT entry (sector) start where vhd_block_slot
 * would have put it, its data on a VHD_DATA_ALIGN boundary? */
int
vhd_block_aligned(const struct vhd *v, uint32_t entry)
{
	uint64_t pos = (uint64_t)entry * 512;

	return vhd_block_slot(v, pos) == pos;
}

uint64_t
vhd_layout_place(const struct vhd *v, uint64_t from, uint64_t len, int block)
{
	struct vhd_ext m[VHD_META_EXTENTS];
	size_t k = vhd_meta_extents(v, m, 0);
	uint64_t start;
	int moved;

	/* from only grows and each move passes one extent.  Past 2 TiB no
	 * block can go: the caller refuses the offset returned. */
	uint64_t limit = block ? UINT64_C(1) << 42 : UINT64_MAX / 4;
	do {
		moved = 0;
		if (from >= limit)
			return from;
		start = block ? vhd_block_slot(v, from) : align_up(from, 512);
		for (size_t i = 0; i < k; i++)
			if (m[i].end > m[i].start && m[i].start < start + len &&
			    start < m[i].end && m[i].end > from) {
				from = m[i].end;
				moved = 1;
			}
	} while (moved);
	return start;
}

/* A 512-aligned place for len bytes before the BAT that overlaps nothing
 * the header or BAT points at, or 0.  Space there is never allocated to
 * blocks, by us or by QEMU (which puts new blocks after the BAT and the
 * blocks), so locator data there survives other tools' writes. */
uint64_t
vhd_layout_room_before_bat(struct vhd *v, uint64_t len)
{
	struct vhd_ext *x;
	size_t n;
	uint64_t pos = 0;

	if (vhd_extents(v, &x, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (x[i].end <= pos)
			continue;
		if (x[i].start >= pos + len)
			break;
		pos = align_up(x[i].end, 512);
	}
	free(x);
	return pos + len <= v->hdr.table_offset ? pos : 0;
}

void
vhd_layout_init(struct vhd *v, uint64_t next_free)
{
	v->next_free = next_free;
	v->zero_eof = v->file_size;
}

void
vhd_layout_reserve(struct vhd *v, uint64_t end)
{
	if (v->next_free < end)
		v->next_free = end;
}

/* The trailing footer at off (encoded from v->ft; footer_raw follows). */
static int
write_footer(struct vhd *v, uint64_t off)
{
	uint8_t raw[512];
	int r;

	vhd_footer_encode(&v->ft, raw);
	r = v->io->ops->pwrite(v->io, raw, 512, off);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot write the footer at %llu: %s",
			       v->path, (unsigned long long)off, strerror(-r));
	memcpy(v->footer_raw, raw, 512);
	return 0;
}

int
vhd_write_footer_copy(struct vhd *v)
{
	return write_footer(v, 0);
}

int
vhd_write_footer(struct vhd *v)
{
	return write_footer(v, v->footer_off);
}

int
vhd_layout_grow(struct vhd *v, uint64_t end)
{
	int r;

	/* Data ending before the trailing footer (in space leaked by a
	 * crash) leaves that footer alone: one right behind the data could
	 * overlap it when the file size is not a multiple of 512. */
	if (end >= v->footer_off && (r = write_footer(v, end)) < 0)
		return r;
	if (end + 512 > v->zero_eof)
		v->zero_eof = end + 512;
	if (end + 512 > v->file_size)
		v->file_size = end + 512;
	if (end > v->footer_off)
		v->footer_off = end;
	v->next_free = end;
	return 0;
}

int
vhd_footer_place_io(struct vhd_io *io, const uint8_t raw[512], uint64_t off,
		    uint64_t fs, const char **failed)
{
	int r;

	if ((r = io->ops->pwrite(io, raw, 512, off)) < 0) {
		*failed = "write the footer";
		return r;
	}
	if ((r = io->ops->flush(io)) < 0) {
		*failed = "sync";
		return r;
	}
	if (fs > off + 512) {
		if ((r = io->ops->truncate(io, off + 512)) < 0) {
			*failed = "truncate";
			return r;
		}
		if ((r = io->ops->flush(io)) < 0) {
			*failed = "sync";
			return r;
		}
	}
	return 0;
}

int
vhd_layout_footer_to(struct vhd *v, uint64_t off)
{
	uint8_t raw[512];
	const char *failed = "";
	int r;

	vhd_footer_encode(&v->ft, raw);
	r = vhd_footer_place_io(v->io, raw, off, v->footer_off + 512, &failed);
	if (r < 0 && strcmp(failed, "write the footer") == 0)
		return vhd_err(-r, "'%s': cannot write the footer at %llu: %s",
			       v->path, (unsigned long long)off, strerror(-r));
	if (r < 0)
		return vhd_err(-r, "'%s': cannot %s: %s", v->path, failed,
			       strerror(-r));
	memcpy(v->footer_raw, raw, 512);
	v->footer_off = off;
	v->file_size = off + 512;
	if (off + 512 > v->zero_eof)
		v->zero_eof = off + 512;
	return 0;
}

/* ---- mapping a block: batmap, BAT, bitmap ---- */

/* Takes blk out of the pending set (its entry is about to be written
 * for real, or it is unmapped). */
static void
pend_drop(struct vhd *v, uint32_t blk)
{
	if (!vhd_layout_pending(v, blk))
		return;
	bit_clear(v->pend_map, blk);
	for (uint32_t i = 0; i < v->pend_n; i++)
		if (v->pend[i] == blk) {
			v->pend[i] = v->pend[--v->pend_n];
			break;
		}
}

int
vhd_layout_map_block(struct vhd *v, uint32_t blk, uint64_t start,
		     const uint8_t *bits, int fresh)
{
	uint32_t old = v->bat[blk];
	int r;

	pend_drop(v, blk);
	v->bat[blk] = (uint32_t)(start / 512);
	if ((r = vhd_bat_write_entry(v, blk)) < 0) {
		v->bat[blk] = old;
		return r;
	}
	if (fresh)
		vhd_bm_new_block(v, blk, bits);
	else
		vhd_bm_forget(v, blk);
	/* blktap's batmap bit ("block full") is left clear: setting it right
	 * after the BAT write could reach the disk before the BAT entry
	 * does, leaving a block marked full that the BAT does not hold.  A
	 * clear bit only means "look at the bitmap". */
	return 0;
}

/* A block mapped in memory only (group commit, rw.c): its BAT entry
 * reaches the file in vhd_layout_commit_deferred, after the caller's
 * barrier has made the block's bitmap and data durable.  A crash before
 * then leaks the space; the BAT never points at unwritten data.  Until
 * then every other BAT sector write shows the entry as unused (bat.c).
 * The caller keeps pend_n below pend_cap. */
void
vhd_layout_map_deferred(struct vhd *v, uint32_t blk, uint64_t start,
			const uint8_t *bits)
{
	v->bat[blk] = (uint32_t)(start / 512);
	v->pend[v->pend_n++] = blk;
	bit_set(v->pend_map, blk);
	v->pend_bytes += (uint64_t)v->bitmap_size + v->block_size;
	vhd_bm_new_block(v, blk, bits);
}

void
vhd_layout_deferred_none(struct vhd *v)
{
	for (uint32_t i = 0; i < v->pend_n; i++)
		bit_clear(v->pend_map, v->pend[i]);
	v->pend_n = 0;
	v->pend_bytes = 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
vhd_layout_commit_deferred(struct vhd *v)
{
	uint32_t n = v->pend_n, last = UINT32_MAX;
	int r = 0;

	if (n == 0)
		return 0;
	/* Unmasked now: the sector writes below carry the real entries. */
	for (uint32_t i = 0; i < n; i++)
		bit_clear(v->pend_map, v->pend[i]);
	qsort(v->pend, n, sizeof(*v->pend), cmp_u32);
	/* One BAT sector holds 128 entries: one write per sector. */
	for (uint32_t i = 0; i < n && r == 0; i++) {
		if (v->pend[i] / 128 == last)
			continue;
		last = v->pend[i] / 128;
		r = vhd_bat_write_entry(v, v->pend[i]);
	}
	if (r < 0) {
		/* Still pending: the next commit writes them again. */
		for (uint32_t i = 0; i < n; i++)
			bit_set(v->pend_map, v->pend[i]);
		return r;
	}
	v->pend_n = 0;
	v->pend_bytes = 0;
	return 0;
}

int
vhd_layout_unmap_block(struct vhd *v, uint32_t blk)
{
	uint32_t old = v->bat[blk];
	int r;

	if ((r = vhd_batmap_clear_durable(v, blk)) < 0)
		return r;
	pend_drop(v, blk);
	v->bat[blk] = VHD_BAT_UNUSED;
	if ((r = vhd_bat_write_entry(v, blk)) < 0) {
		v->bat[blk] = old;
		return r;
	}
	vhd_bm_forget(v, blk);
	return 0;
}

/* ---- the footer search ---- */

int
vhd_footer_scan(struct vhd_io *io, uint64_t fs, struct vhd_footer_scan *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->size = fs;
	if (fs < 512)
		return -EINVAL;
	if ((r = io->ops->pread(io, s->tail, 512, fs - 512)) < 0)
		return r;
	/* Pre-2004 tools wrote a 511-byte footer (blktap accepts it).  These
	 * two are only fallbacks: a failed read leaves zeros (no footer). */
	if ((r = io->ops->pread(io, s->tail511, 511, fs - 511)) < 0) {
		memset(s->tail511, 0, sizeof(s->tail511));
		s->err = r;
	}
	if ((r = io->ops->pread(io, s->copy, 512, 0)) < 0) {
		memset(s->copy, 0, sizeof(s->copy));
		s->err = r;
	}
	return 0;
}

int
vhd_footer_cookie(const struct vhd_footer_scan *s)
{
	return memcmp(s->tail, "conectix", 8) == 0 ||
	       memcmp(s->tail511, "conectix", 8) == 0 ||
	       memcmp(s->copy, "conectix", 8) == 0;
}

unsigned
vhd_footer_pick(const struct vhd_footer_scan *s, const char *name,
		unsigned where, unsigned flags, uint8_t raw[512], uint64_t *off,
		unsigned *warn, struct vhd_problems *p)
{
	struct vhd_problems quiet = { .fn = NULL, .arg = NULL };
	uint64_t fs = s->size;

	*warn = 0;
	if ((where & VHD_FOOTER_AT_END) &&
	    vhd_footer_check(s->tail, name, fs - 512, flags, warn, p) == 0) {
		memcpy(raw, s->tail, 512);
		*off = fs - 512;
		return VHD_FOOTER_AT_END;
	}
	*warn = 0;
	if ((where & VHD_FOOTER_AT_511) &&
	    vhd_footer_check(s->tail511, name, fs - 511, flags, warn,
			     &quiet) == 0) {
		memcpy(raw, s->tail511, 512);
		*off = fs - 511;
		*warn |= VHD_WARN_FOOTER_511;
		return VHD_FOOTER_AT_511;
	}
	/* After a crash or a full disk the trailing footer can be missing:
	 * dynamic disks keep a copy at offset 0. */
	*warn = 0;
	quiet.count = 0;
	if ((where & VHD_FOOTER_AT_COPY) &&
	    vhd_footer_check(s->copy, name, 0, flags, warn, &quiet) == 0 &&
	    vhd_footer_type(s->copy) != VHD_TYPE_FIXED) {
		memcpy(raw, s->copy, 512);
		*off = fs;
		*warn |= VHD_WARN_FOOTER_FROM_COPY;
		return VHD_FOOTER_AT_COPY;
	}
	*warn = 0;
	return 0;
}

void
vhd_layout_set_footer(struct vhd *v, const uint8_t raw[512], uint64_t off)
{
	memcpy(v->footer_raw, raw, 512);
	vhd_footer_decode(raw, &v->ft);
	v->footer_off = off;
}
