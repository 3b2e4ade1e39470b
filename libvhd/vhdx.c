/* vhdx.c - the VHDX driver: Hyper-V's format (MS-VHDX v1.0):
 * open, reads, map, info and the parent of a differencing image.  The
 * validating readers of each structure are in vhdx_meta.c, the log's
 * replay in vhdx_log.c, writing in vhdx_write.c, creation in
 * vhdx_create.c.
 *
 * Open order (each step validates every field it uses, and a refusal
 * names the structure, the field, its offset, what was expected and what
 * was found, -EBADMSG):
 *   1. the file type identifier at 0 ("vhdxfile");
 *   2. both headers (64 KiB and 128 KiB; "head", CRC-32C, version 1, log
 *      version 0); the valid one with the higher sequence number is
 *      current;
 *   3. the log it names, replayed in memory (vhdx_log.c), so that every
 *      read below sees the file as a replay would leave it;
 *   4. the region table (192 KiB, else its copy at 256 KiB): BAT and
 *      metadata regions, 1 MiB aligned, inside the file, not overlapping;
 *      an unknown region marked required is refused (-ENOTSUP);
 *   5. the metadata table and items: file parameters, virtual disk size,
 *      logical and physical sector size, page 83 data, parent locator;
 *   6. the BAT: payload entries interleaved with a sector-bitmap entry
 *      after every chunk_ratio of them; each state known, each block
 *      inside the file and clear of the metadata and of other blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"

static struct vhdx *
X(struct vhd *v)
{
	return v->fmt;
}

int
vhdx_file_read(struct vhd *v, void *buf, size_t n, uint64_t off)
{
	struct vhdx *x = X(v);
	uint8_t *b = buf;
	int r;

	if (off > x->eof || n > x->eof - off)
		return vhd_err(EBADMSG, "'%s': read of %zu bytes at %llu is past "
			       "the end of the file (%llu bytes)", v->path, n,
			       (unsigned long long)off,
			       (unsigned long long)x->eof);
	if (off < v->file_size) {
		size_t k = v->file_size - off < n ? (size_t)(v->file_size - off)
						    : n;
		if ((r = vhd_file_read(v, b, k, off)) < 0)
			return r;
		memset(b + k, 0, n - k);
	} else {
		memset(b, 0, n);
	}
	for (size_t i = 0; i < x->npatch; i++) {     /* in log order */
		const struct vhdx_patch *p = &x->patch[i];
		if (p->off >= off + n || p->off + p->len <= off)
			continue;
		uint64_t s = p->off > off ? p->off : off;
		uint64_t e = p->off + p->len < off + n ? p->off + p->len
						       : off + n;
		if (p->data)
			memcpy(b + (s - off), p->data + (s - p->off), e - s);
		else
			memset(b + (s - off), 0, e - s);
	}
	return 0;
}

/* ---- the driver ---- */

static int
vhdx_probe(struct vhd_io *io, uint64_t file_size)
{
	uint8_t sig[8];
	int r;

	if (file_size < 8)
		return 0;
	if ((r = io->ops->pread(io, sig, 8, 0)) < 0)
		return r;
	return memcmp(sig, "vhdxfile", 8) == 0;
}

static void
vhdx_free(struct vhd *v)
{
	struct vhdx *x = X(v);

	if (!x)
		return;
	vhdx_rdwr_close(v, x);
	vhdx_log_free(x);
	free(x->bat);
	free(x);
	v->fmt = NULL;
}

static int
vhdx_open(struct vhd *v, unsigned flags)
{
	struct vhdx *x;
	int r;

	v->kind = VHD_KIND_OTHER;
	if (v->file_size < VHDX_REGION2_OFF + 65536)
		return vhd_err(EBADMSG, "'%s': VHDX file of %llu bytes: expected "
			       "at least %u (identifier, two headers, two "
			       "region tables)", v->path,
			       (unsigned long long)v->file_size,
			       VHDX_REGION2_OFF + 65536);
	if (!(x = calloc(1, sizeof(*x))))
		return vhd_err(ENOMEM, "no memory");
	v->fmt = x;
	x->eof = v->file_size;
	if ((r = vhdx_read_headers(v, x)) < 0)
		return r;
	if ((r = vhdx_log_replay(v, x)) < 0)
		return r;
	if (x->log_entries)
		v->warnings |= VHD_WARN_LOG_REPLAYED;
	if ((r = vhdx_read_regions(v, x)) < 0)
		return r;
	if ((r = vhdx_read_metadata(v, x)) < 0)
		return r;
	if ((r = vhdx_read_bat(v, x)) < 0)
		return r;
	v->type = x->has_parent ? VHD_TYPE_DIFF : x->leave_allocated ?
		  VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
	v->block_size = x->block_size;
	/* Read-write: the replayed log is written back only now, once
	 * everything it leads to has been validated (a refused image is
	 * left as it was). */
	if (flags & VHD_OPEN_RDWR)
		return vhdx_rdwr_open(v, x);
	return 0;
}

/* Bits of sectors [sec, sec+n) of block blk in its chunk's sector bitmap:
 * the run length from sec with the same bit, and that bit. */
static int
bitmap_run(struct vhd *v, struct vhdx *x, uint64_t blk, uint64_t sec,
	   uint64_t n, int *set, uint64_t *run)
{
	uint64_t chunk = blk / x->chunk_ratio;
	uint64_t e = x->bat[chunk * (x->chunk_ratio + 1) + x->chunk_ratio];
	uint64_t first = (blk % x->chunk_ratio) * (x->block_size / x->lss) +
			 sec;
	uint8_t buf[512];
	uint64_t k = 0;
	int r;

	if (BAT_STATE(e) != SB_PRESENT)
		return vhd_err(EBADMSG, "'%s': BAT: block %llu is partially "
			       "present but the sector bitmap of chunk %llu is "
			       "not", v->path, (unsigned long long)blk,
			       (unsigned long long)chunk);
	while (k < n) {
		uint64_t bit = first + k;
		uint64_t byte0 = bit / 8 / sizeof(buf) * sizeof(buf);
		if ((r = vhdx_file_read(v, buf, sizeof(buf),
					BAT_OFF(e) + byte0)) < 0)
			return r;
		for (; k < n && (first + k) / 8 < byte0 + sizeof(buf); k++) {
			uint64_t b = first + k;
			int s = buf[b / 8 - byte0] >> (b % 8) & 1;
			if (k == 0)
				*set = s;
			else if (s != *set)
				goto done;
		}
	}
done:
	*run = k;
	return 0;
}

/* The status of [off, off+len) inside one block: *where 1 this file at
 * *foff, 0 zeros, -1 the parent; *k the bytes with that status. */
static int
locate(struct vhd *v, uint64_t off, uint64_t len, int *where, uint64_t *foff,
       uint64_t *k)
{
	struct vhdx *x = X(v);
	uint64_t blk = off / x->block_size, boff = off % x->block_size;
	uint64_t e = x->bat[blk + blk / x->chunk_ratio];
	int r;

	*k = x->block_size - boff < len ? x->block_size - boff : len;
	*foff = BAT_OFF(e) + boff;
	switch (BAT_STATE(e)) {
	case PB_FULLY_PRESENT:
		*where = 1;
		return 0;
	case PB_NOT_PRESENT:
		*where = x->has_parent ? -1 : 0;
		return 0;
	case PB_PARTIALLY_PRESENT: {
		uint64_t s0 = boff / x->lss;
		uint64_t s1 = (boff + *k + x->lss - 1) / x->lss;
		uint64_t run;
		int set;
		if ((r = bitmap_run(v, x, blk, s0, s1 - s0, &set, &run)) < 0)
			return r;
		uint64_t end = (s0 + run) * x->lss;
		if (end - boff < *k)
			*k = end - boff;
		*where = set ? 1 : -1;
		return 0;
	}
	default:
		/* UNDEFINED, ZERO, UNMAPPED: this file answers for the
		 * block, and without data it reads as zeros. */
		*where = 0;
		return 0;
	}
}

static int
vhdx_read(struct vhd *v, uint8_t *buf, size_t n, uint64_t off)
{
	while (n > 0) {
		uint64_t foff, k;
		int where, r;
		if ((r = locate(v, off, n, &where, &foff, &k)) < 0)
			return r;
		if (where > 0) {
			r = vhdx_file_read(v, buf, k, foff);
		} else if (where == 0) {
			memset(buf, 0, k);
		} else if (!v->parent) {
			return vhd_err(ENOTSUP, "'%s': opened without its "
				       "parent: cannot read sectors it does "
				       "not store", v->path);
		} else {
			r = vhd_read_level(v->parent, buf, k, off);
		}
		if (r < 0)
			return r;
		buf += k;
		off += k;
		n -= k;
	}
	return 0;
}

static int
vhdx_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
	 unsigned *status, int *depth)
{
	uint64_t foff, k;
	int where, r;

	if ((r = locate(v, off, len, &where, &foff, &k)) < 0)
		return r;
	if (where < 0) {
		if (!v->parent)
			return vhd_err(ENOTSUP, "'%s': opened without its "
				       "parent: the map of sectors it does not "
				       "store is unknown", v->path);
		return vhd_map_level(v->parent, off, k, run, status, depth);
	}
	*run = k;
	*status = where ? VHD_MAP_DATA : VHD_MAP_ZERO;
	if (depth)
		*depth = where ? v->depth : -1;
	return 0;
}

static void
vhdx_info(struct vhd *v, struct vhd_info *info)
{
	struct vhdx *x = X(v);

	info->logical_sector_size = x->lss;
	info->physical_sector_size = x->pss;
	memcpy(info->disk_id, x->disk_id, 16);
	memcpy(info->unique_id, x->data_guid, 16);
	memcpy(info->creator_app, "vhdx", 4);
	info->block_size = x->block_size;
	info->max_table_entries = x->bat_entries > UINT32_MAX ? UINT32_MAX :
				  (uint32_t)x->bat_entries;
	for (uint64_t i = 0; i < x->blocks; i++) {
		unsigned st = BAT_STATE(x->bat[i + i / x->chunk_ratio]);
		if (st == PB_FULLY_PRESENT || st == PB_PARTIALLY_PRESENT)
			info->allocated_blocks++;
	}
	info->allocated_bytes = (uint64_t)info->allocated_blocks *
				x->block_size;
	if (x->has_parent) {
		snprintf(info->parent_name, sizeof(info->parent_name), "%s",
			 x->parent_path[0][0] ? x->parent_path[0] :
			 x->parent_path[2]);
		memcpy(info->parent_id, x->linkage[0], 16);
	}
}

/* Hyper-V's lookup order (MS-VHDX 2.6.2.6.3): relative_path, volume_path,
 * absolute_win32_path, each made a path here by the VHD rules. */
static int
vhdx_parent_candidates(struct vhd *v, char *out[VHD_MAX_PARENT_CANDIDATES])
{
	const struct vhdx *x = X(v);
	const char *p[3] = { x->parent_path[0], x->parent_path[1],
			     x->parent_path[2] };

	return vhd_parent_candidates_from(v->path, p, 3, out, 0);
}

/* The parent's DataWriteGuid must be the child's parent_linkage (or
 * parent_linkage2). */
static int
vhdx_parent_check(struct vhd *v, struct vhd *p, char *why, size_t n)
{
	const struct vhdx *x = X(v), *px = X(p);
	char want[39], got[39];

	for (int i = 0; i < 2; i++)
		if (x->has_linkage[i] &&
		    memcmp(px->data_guid, x->linkage[i], 16) == 0)
			return 0;
	vhdx_fmt_guid(want, x->linkage[0]);
	vhdx_fmt_guid(got, px->data_guid);
	snprintf(why, n, "parent '%s' has DataWriteGuid %s, expected "
		 "parent_linkage %s", p->path, got, want);
	return -EBADMSG;
}

static int
vhdx_finish(struct vhd *v)
{
	return vhdx_rdwr_close(v, X(v));
}

const struct vhd_driver vhd_drv_vhdx = {
	"VHDX", VHD_FORMAT_VHDX, vhdx_probe, vhdx_open, vhdx_read, vhdx_map,
	vhdx_info, vhdx_free, vhdx_parent_candidates, vhdx_parent_check,
	VHD_OPEN_FORMAT_VHDX, vhdx_write, vhdx_zero, vhdx_finish,
	vhdx_merge_prepare,
};
