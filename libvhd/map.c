/* map.c - allocation status through the chain (vhd_map). */
#include <stdio.h>
#include "internal.h"

/* Status of one run starting at off at level v (depth relative to v's
 * own depth field; the caller rebases). */
int
vhd_map_level(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
	      unsigned *status, int *depth)
{
	int d = -1;

	if (off >= v->size) {
		*run = len;
		*status = VHD_MAP_ZERO;
		goto done;
	}
	if (len > v->size - off)
		len = v->size - off;
	return v->drv->map(v, off, len, run, status, depth);
done:
	if (depth)
		*depth = d;
	return 0;
}

/* The VHD driver's map of one level: off < v->size, len <= v->size - off. */
int
vhd_vhd_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
	    unsigned *status, int *depth)
{
	int d = -1, r;

	if (v->type == VHD_TYPE_FIXED) {
		*run = len;
		*status = VHD_MAP_DATA;
		d = v->depth;
		goto done;
	}
	uint32_t blk = (uint32_t)(off / v->block_size);
	uint64_t bs = (uint64_t)blk * v->block_size;
	uint64_t k = bs + v->block_size - off;
	if (k > len)
		k = len;
	int set = 0;
	if (v->bat[blk] != VHD_BAT_UNUSED) {
		uint32_t sec = (uint32_t)((off - bs) / 512), srun;
		uint32_t send = (uint32_t)((off - bs + k + 511) / 512);
		if ((r = vhd_bm_run(v, blk, sec, send, &set, &srun)) < 0)
			return r;
		uint64_t e = bs + (uint64_t)(sec + srun) * 512;
		if (e - off < k)
			k = e - off;
	}
	if (set) {
		*run = k;
		*status = VHD_MAP_DATA;
		d = v->depth;
		goto done;
	}
	if (v->type == VHD_TYPE_DIFF) {
		if (!v->parent)
			return vhd_err(ENOTSUP, "'%s': opened without its "
				       "parent: the map of sectors it does not "
				       "store is unknown", v->path);
		return vhd_map_level(v->parent, off, k, run, status, depth);
	}
	*run = k;
	*status = VHD_MAP_ZERO;
done:
	if (depth)
		*depth = d;
	return 0;
}

int
vhd_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
	unsigned *status, int *depth)
{
	uint64_t total = 0, k;
	unsigned st, st2;
	int d, d2, r;

	if (!v || !run || !status || len == 0)
		return vhd_err(EINVAL, "vhd_map: bad arguments");
	if (off > v->size || len > v->size - off)
		return vhd_err(EINVAL, "'%s': map of %llu bytes at %llu is past "
			       "the end of the disk (%llu bytes)", v->path,
			       (unsigned long long)len, (unsigned long long)off,
			       (unsigned long long)v->size);
	pthread_rwlock_rdlock(&v->lock);
	r = vhd_map_level(v, off, len, &k, &st, &d);
	if (r < 0)
		goto out;
	total = k;
	/* Extend over following runs with the same answer. */
	while (total < len) {
		/* A failure further on is reported when the caller gets
		 * there; this run stands. */
		if (vhd_map_level(v, off + total, len - total, &k, &st2,
				  &d2) < 0)
			break;
		if (st2 != st || d2 != d)
			break;
		total += k;
	}
	r = 0;
	*run = total;
	*status = st;
	if (depth)
		*depth = d < 0 ? -1 : d - v->depth;
out:
	pthread_rwlock_unlock(&v->lock);
	return r;
}
