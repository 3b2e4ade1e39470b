/* bat.c - the block allocation table and blktap's batmap. */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

int
vhd_bat_load(struct vhd *v)
{
	uint64_t n = v->bat_entries;
	int r = 0;

	/* The header check bounds the table by the file size, which can be
	 * more than a 32-bit size_t holds: check before multiplying. */
	if (n > SIZE_MAX / sizeof(uint32_t) / 2)
		return vhd_err(ENOMEM, "'%s': the BAT (%llu entries) does not fit "
			       "in memory", v->path, (unsigned long long)n);
	v->bat = malloc(n ? (size_t)n * sizeof(uint32_t) : sizeof(uint32_t));
	if (!v->bat)
		return vhd_err(ENOMEM, "'%s': no memory for the BAT", v->path);
	/* Read straight into the table and swap in place, a MiB at a time
	 * so each piece is swapped while it is still in the CPU cache: no
	 * second buffer to allocate, fault in and copy (open of 10^5
	 * entries spent half its time there). */
	for (uint64_t i = 0; i < n;) {
		uint64_t k = n - i < (1u << 18) ? n - i : (1u << 18);
		uint64_t off = v->hdr.table_offset + i * 4;
		uint8_t *raw = (uint8_t *)(v->bat + i);

		r = v->io->ops->pread(v->io, raw, (size_t)k * 4, off);
		if (r < 0)
			return vhd_err(-r, "'%s': cannot read the BAT at %llu: %s",
				       v->path, (unsigned long long)off,
				       strerror(-r));
		for (uint64_t j = 0; j < k; j++)
			v->bat[i + j] = get_be32(raw + 4 * j);
		i += k;
	}
	return r;
}

void
vhd_bat_encode(const uint32_t *bat, uint32_t first, uint32_t end,
	       uint8_t *out, size_t len)
{
	memset(out, 0xff, len);           /* past the last entry: padding */
	for (uint32_t i = first; i < end; i++)
		put_be32(out + 4 * (size_t)(i - first), bat[i]);
}

/* Writes the 512-byte BAT sector holding entry blk from the memory copy. */
int
vhd_bat_write_entry(struct vhd *v, uint32_t blk)
{
	uint8_t sec[512];
	uint32_t first = blk / 128 * 128;
	uint32_t end = v->bat_entries - first < 128 ? v->bat_entries :
		       first + 128;

	vhd_bat_encode(v->bat, first, end, sec, sizeof(sec));
	/* Entries of blocks whose data is not yet behind a barrier (group
	 * commit, layout.c) stay unused on disk until their commit. */
	for (uint32_t b = first; b < end && v->pend_n > 0; b++)
		if (bit_test(v->pend_map, b))
			memset(sec + (b - first) * 4, 0xff, 4);

	int r = v->io->ops->pwrite(v->io, sec, 512,
				   v->hdr.table_offset + (uint64_t)first * 4);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot write the BAT: %s", v->path,
			       strerror(-r));
	return 0;
}

/* blktap keeps a "tdbatmap" header in the sector after the BAT: cookie[8],
 * map offset u64, map size u32 (sectors), version u32, checksum u32 (ones'
 * complement byte sum of the map), then a bit per block meaning "the block
 * is fully allocated" (most significant bit first). */
int
vhd_batmap_load(struct vhd *v)
{
	uint8_t h[512];
	uint64_t off = v->hdr.table_offset + vhd_bat_bytes(v);

	memset(&v->batmap, 0, sizeof(v->batmap));
	if (off >= v->file_size)
		return 0;
	/* A header cut short by the end of the file is not used, but its
	 * place is recorded: once the file grows (zeros after the cut), a
	 * later open may take it, so new blocks must keep off it and its map
	 * (vhd_layout_place). */
	size_t got = v->file_size - off < 512 ? (size_t)(v->file_size - off) : 512;
	memset(h, 0, sizeof(h));
	if (v->io->ops->pread(v->io, h, got, off) < 0)
		return 0;
	if (memcmp(h, "tdbatmap", 8) != 0)
		return 0;
	v->batmap.hdr_off = off;
	v->batmap.map_off = get_be64(h + 8);
	v->batmap.map_sectors = get_be32(h + 16);
	v->batmap.version = get_be32(h + 20);
	v->batmap.checksum = get_be32(h + 24);
	if (got < 512) {
		v->batmap.cut = 1;
		return 0;
	}
	uint64_t len = (uint64_t)v->batmap.map_sectors * 512;
	/* blktap puts the map right after its header.  A map anywhere else
	 * could lie on the footer copy, the dynamic header or the BAT (all
	 * metadata, allowed to touch each other in vhd_bat_validate), and
	 * updating its bits would overwrite them: ignore such a batmap. */
	if (v->batmap.map_off % 512 || v->batmap.map_off < off + 512 ||
	    v->batmap.map_off > v->footer_off ||
	    len > v->footer_off - v->batmap.map_off ||
	    len < (v->bat_entries + 7) / 8 || len > VHD_BATMAP_MAX)
		return 0;   /* not a usable batmap: ignore it */
	v->batmap.map = malloc(len ? len : 1);
	if (!v->batmap.map)
		return vhd_err(ENOMEM, "'%s': no memory", v->path);
	if (v->io->ops->pread(v->io, v->batmap.map, len,
			      v->batmap.map_off) < 0) {
		free(v->batmap.map);
		v->batmap.map = NULL;
		return 0;
	}
	v->batmap.present = 1;
	return 0;
}

void
vhd_batmap_header_put(uint8_t h[512], const struct vhd_batmap *b)
{
	put_be64(h + 8, b->map_off);
	put_be32(h + 16, b->map_sectors);
	put_be32(h + 24, b->checksum);
}

/* Sets or clears the batmap bit of blk (when a batmap exists), rewriting
 * the map sector and the header with its checksum. */
int
vhd_batmap_clear_durable(struct vhd *v, uint32_t blk)
{
	const struct vhd_batmap *b = &v->batmap;
	int r;

	if (!b->present || (uint64_t)blk >= (uint64_t)b->map_sectors * 4096 ||
	    !bit_test(b->map, blk))
		return 0;
	if ((r = vhd_batmap_set(v, blk, 0)) < 0)
		return r;
	if (!(v->flags & VHD_OPEN_UNSAFE_NOSYNC))
		return vhd_file_sync(v);
	return 0;
}

int
vhd_batmap_set(struct vhd *v, uint32_t blk, int full)
{
	struct vhd_batmap *b = &v->batmap;
	uint8_t h[512];
	int r;

	if (!b->present || (uint64_t)blk >= (uint64_t)b->map_sectors * 4096)
		return 0;
	if (bit_test(b->map, blk) == !!full)
		return 0;
	if (full)
		bit_set(b->map, blk);
	else
		bit_clear(b->map, blk);
	uint64_t len = (uint64_t)b->map_sectors * 512;
	b->checksum = vhd_checksum(b->map, len, len);
	uint64_t sec = blk / 4096;
	r = v->io->ops->pwrite(v->io, b->map + sec * 512, 512,
			       b->map_off + sec * 512);
	if (r < 0)
		goto fail;
	r = v->io->ops->pread(v->io, h, 512, b->hdr_off);
	if (r < 0)
		goto fail;
	vhd_batmap_header_put(h, b);
	r = v->io->ops->pwrite(v->io, h, 512, b->hdr_off);
	if (r < 0)
		goto fail;
	return 0;
fail:
	return vhd_err(-r, "'%s': cannot update the batmap: %s", v->path,
		       strerror(-r));
}

static const char *
ext_name(const struct vhd_ext *e, char *buf, size_t n)
{
	if (e->blk == VHD_BAT_UNUSED)
		return "metadata";
	snprintf(buf, n, "block %u", e->blk);
	return buf;
}

/* The usual case in one pass over the BAT, with no extent list (at 10^6
 * blocks building and scanning one made the open 4x slower per block
 * than at 10^5): every allocated block inside the disk and before the
 * footer, each after the end of the one before it in BAT order, none
 * overlapping metadata.  1 with *next set; 0: let the full check find
 * and report what is wrong. */
static int
bat_in_order(struct vhd *v, uint64_t limit, uint64_t *next)
{
	struct vhd_ext m[VHD_META_EXTENTS];
	uint64_t blk_bytes = (uint64_t)v->bitmap_size + v->block_size;
	uint64_t end = 0;
	size_t nm = vhd_meta_extents(v, m, 1), k = 0;

	vhd_ext_sort(m, nm);
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		uint64_t s = (uint64_t)v->bat[i] * 512;
		if (i >= v->blocks || s < end || s + blk_bytes > limit)
			return 0;
		/* metadata sorted by start: the first not wholly before s
		 * is the only one that may reach into the block */
		while (k < nm && m[k].end <= s)
			k++;
		if (k < nm && m[k].start < s + blk_bytes)
			return 0;
		end = s + blk_bytes;
	}
	for (size_t j = 0; j < nm; j++)
		if (m[j].end > end)
			end = m[j].end;
	*next = end;
	return 1;
}

/* Every allocated block must lie inside the file's data area and overlap
 * neither metadata nor another block.  *next gets the end of the last
 * piece of metadata or block inside the file. */
int
vhd_bat_validate(struct vhd *v, vhd_problem_fn fn, void *arg,
		 uint64_t *next_free)
{
	struct vhd_problems p = { .fn = fn, .arg = arg };
	uint64_t blk_bytes = (uint64_t)v->bitmap_size + v->block_size;
	uint64_t limit = v->footer_off;  /* blocks end before the footer */
	/* Grown as allocated entries are found: sized by the BAT, this took
	 * 24 bytes per entry (12 GiB for a 2040 GiB disk of 4 KiB blocks). */
	size_t n = 0, cap = 64;
	struct vhd_ext *x = malloc(cap * sizeof(*x));
	char b1[32];

	if (bat_in_order(v, limit, next_free)) {
		free(x);
		return 0;
	}
	if (!x)
		return vhd_err(ENOMEM, "'%s': no memory", v->path);
	n = vhd_meta_extents(v, x, 1);
	uint64_t next = 0;
	for (size_t i = 0; i < n; i++)
		if (x[i].end > next)
			next = x[i].end;
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		uint64_t s = (uint64_t)v->bat[i] * 512;
		if (i >= v->blocks) {
			vhd_problem(&p, VHD_CODE_BAT_ENTRY,
				    v->hdr.table_offset + 4ull * i, NULL, NULL,
				    "'%s': BAT entry %u at offset %llu: "
				    "expected unused (0xffffffff) beyond the "
				    "disk's %u blocks, found sector %u", v->path,
				    i, (unsigned long long)(v->hdr.table_offset +
				    4ull * i), v->blocks, v->bat[i]);
			continue;
		}
		if (s + blk_bytes > limit) {
			vhd_problem(&p, VHD_CODE_BAT_ENTRY,
				    v->hdr.table_offset + 4ull * i, NULL, NULL,
				    "'%s': BAT entry %u at offset %llu: "
				    "expected a block ending before the footer "
				    "at %llu, found %llu..%llu", v->path, i,
				    (unsigned long long)(v->hdr.table_offset +
				    4ull * i), (unsigned long long)limit,
				    (unsigned long long)s,
				    (unsigned long long)(s + blk_bytes));
			continue;
		}
		x[n++] = (struct vhd_ext){ s, s + blk_bytes, i };
		if (s + blk_bytes > next)
			next = s + blk_bytes;
		if (n == cap) {
			cap *= 2;
			struct vhd_ext *y = realloc(x, cap * sizeof(*x));
			if (!y) {
				free(x);
				return vhd_err(ENOMEM, "'%s': no memory",
					       v->path);
			}
			x = y;
		}
	}
	vhd_ext_sort(x, n);
	/* Metadata may legitimately touch.  Each bad block is reported
	 * once: an extent overlapping one already reported is collateral. */
	size_t far = 0;
	int far_bad = 0;
	for (size_t i = 1; i < n; i++) {
		int both_meta = x[i].blk == VHD_BAT_UNUSED &&
				x[far].blk == VHD_BAT_UNUSED;
		int bad = 0;
		if (x[i].start < x[far].end && !both_meta && !far_bad) {
			const struct vhd_ext *b = x[i].blk != VHD_BAT_UNUSED ?
						 &x[i] : &x[far];
			const struct vhd_ext *o = b == &x[i] ? &x[far] : &x[i];
			vhd_problem(&p, VHD_CODE_BAT_ENTRY,
				    v->hdr.table_offset +
				    4ull * b->blk, NULL, NULL,
				    "'%s': BAT entry %u at offset %llu: "
				    "expected a block not overlapping others, "
				    "found %llu..%llu overlapping %s at "
				    "%llu..%llu", v->path, b->blk,
				    (unsigned long long)(v->hdr.table_offset +
				    4ull * b->blk), (unsigned long long)b->start,
				    (unsigned long long)b->end,
				    ext_name(o, b1, sizeof(b1)),
				    (unsigned long long)o->start,
				    (unsigned long long)o->end);
			bad = b == &x[i];
			if (b == &x[far])
				far_bad = 1;
		}
		if (x[i].end > x[far].end) {
			far = i;
			far_bad = bad;
		}
	}
	free(x);
	*next_free = next;
	return vhd_problems_result(&p);
}
