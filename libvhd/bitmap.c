/* bitmap.c - per-block sector bitmaps: a state byte per block (unknown,
 * full, partial) and a small direct-mapped cache of partial bitmaps.
 * Blocks whose bits are all set (every block we allocate in a dynamic
 * disk) never touch their bitmap again after the first look. */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

/* Cache memory ceiling: bitmaps are 512 B for 2 MiB blocks, 64 KiB for
 * 256 MiB blocks. */
#define BM_CACHE_BYTES (8u << 20)
#define BM_CACHE_MAX   1024u
/* Memory ceiling of the bitmaps changed since the last commit (16384
 * bitmaps of 2 MiB blocks: 32 GiB of disk). */
#define BM_DIRTY_BYTES (8u << 20)

int
vhd_bm_init(struct vhd *v)
{
	uint32_t slots = BM_CACHE_BYTES / v->bitmap_size;

	if (slots > BM_CACHE_MAX)
		slots = BM_CACHE_MAX;
	if (slots < 4)
		slots = 4;
	v->bm_slots = slots;
	v->bm_state = calloc(v->bat_entries ? v->bat_entries : 1,
			     sizeof(*v->bm_state));
	v->bm_cache = calloc(slots, sizeof(*v->bm_cache));
	/* The pending set of group commit (layout.c), dirty bitmaps. */
	v->pend = calloc(VHD_PEND_MAX, sizeof(*v->pend));
	v->pend_cap = VHD_PEND_MAX;
	v->pend_map = calloc((v->bat_entries + 7) / 8 + 1, 1);
	if (!v->bm_state || !v->bm_cache || !v->pend || !v->pend_map)
		return vhd_err(ENOMEM, "'%s': no memory", v->path);
	for (uint32_t i = 0; i < slots; i++)
		v->bm_cache[i].block = VHD_BAT_UNUSED;
	if (pthread_mutex_init(&v->bm_lock, NULL) != 0)
		return vhd_err(ENOMEM, "'%s': cannot create a lock", v->path);
	return 0;
}

void
vhd_bm_free(struct vhd *v)
{
	if (v->bm_cache) {
		for (uint32_t i = 0; i < v->bm_slots; i++)
			free(v->bm_cache[i].bits);
		pthread_mutex_destroy(&v->bm_lock);
	}
	free(v->bm_cache);
	free((void *)v->bm_state);
	for (uint32_t i = 0; v->bm_dirty && i < v->bm_ndirty; i++)
		free(v->bm_dirty[i].bits);
	free(v->bm_dirty);
	free(v->bm_dirty_idx);
	v->bm_dirty = NULL;
	v->bm_dirty_idx = NULL;
	v->bm_ndirty = v->bm_dirty_cap = 0;
	free(v->pend);
	free(v->pend_map);
	v->pend = NULL;
	v->pend_map = NULL;
	v->pend_n = 0;
	v->bm_cache = NULL;
	v->bm_state = NULL;
}

static int
all_set(const struct vhd *v, const uint8_t *bits)
{
	uint32_t full = v->spb / 8;

	for (uint32_t i = 0; i < full; i++)
		if (bits[i] != 0xff)
			return 0;
	for (uint32_t s = full * 8; s < v->spb; s++)
		if (!bit_test(bits, s))
			return 0;
	return 1;
}

/* The dirty entry of blk, whose state is BM_DIRTY. */
static struct bm_dirty *
dirty_of(struct vhd *v, uint32_t blk)
{
	return &v->bm_dirty[v->bm_dirty_idx[blk]];
}

/* The cached bitmap of blk, loading it; NULL with *full = 1 when every
 * bit is set.  Caller holds bm_lock. */
static int
bm_get(struct vhd *v, uint32_t blk, uint8_t **out)
{
	struct bm_entry *e = &v->bm_cache[blk % v->bm_slots];
	int r;

	*out = NULL;
	if (v->bm_state[blk] == BM_FULL)
		return 0;
	if (v->bm_state[blk] == BM_DIRTY) {
		*out = dirty_of(v, blk)->bits;
		return 0;
	}
	if (e->block == blk && e->bits) {
		*out = e->bits;
		return 0;
	}
	if (!e->bits) {
		e->bits = malloc(v->bitmap_size);
		if (!e->bits)
			return vhd_err(ENOMEM, "'%s': no memory", v->path);
	}
	e->block = VHD_BAT_UNUSED;
	uint64_t off = (uint64_t)v->bat[blk] * 512;
	r = v->io->ops->pread(v->io, e->bits, v->bitmap_size, off);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot read the bitmap of block %u "
			       "at %llu: %s", v->path, blk,
			       (unsigned long long)off, strerror(-r));
	if (all_set(v, e->bits)) {
		v->bm_state[blk] = BM_FULL;
		return 0;
	}
	v->bm_state[blk] = BM_PARTIAL;
	e->block = blk;
	*out = e->bits;
	return 0;
}

int
vhd_bm_run(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t limit,
	   int *set, uint32_t *run)
{
	uint8_t *bits;
	int r;

	if (v->bm_state[blk] == BM_FULL) {   /* benign racy fast path */
		*set = 1;
		*run = limit - sec;
		return 0;
	}
	pthread_mutex_lock(&v->bm_lock);
	r = bm_get(v, blk, &bits);
	if (r == 0) {
		if (!bits) {
			*set = 1;
			*run = limit - sec;
		} else {
			int b = bit_test(bits, sec);
			uint32_t s = sec + 1;
			/* Whole bytes at a time where possible. */
			while (s < limit) {
				if ((s & 7) == 0 && s + 8 <= limit &&
				    bits[s >> 3] == (b ? 0xff : 0)) {
					s += 8;
					continue;
				}
				if (bit_test(bits, s) != b)
					break;
				s++;
			}
			*set = b;
			*run = s - sec;
		}
	}
	pthread_mutex_unlock(&v->bm_lock);
	return r;
}

int
vhd_bm_dirty_full(const struct vhd *v, uint32_t blk)
{
	if (v->bm_state[blk] == BM_DIRTY)
		return 0;
	return (uint64_t)(v->bm_ndirty + 1) * v->bitmap_size > BM_DIRTY_BYTES;
}

/* Makes blk's bitmap (bits, from bm_get) a dirty entry.  Caller holds
 * bm_lock; there is room (vhd_bm_dirty_full). */
static int
make_dirty(struct vhd *v, uint32_t blk, uint8_t **bits)
{
	struct bm_dirty *d;
	uint8_t *copy;

	if (!v->bm_dirty_idx) {
		v->bm_dirty_idx = calloc(v->bat_entries ? v->bat_entries : 1,
					 sizeof(*v->bm_dirty_idx));
		if (!v->bm_dirty_idx)
			return vhd_err(ENOMEM, "'%s': no memory", v->path);
	}
	if (v->bm_ndirty == v->bm_dirty_cap) {
		uint32_t cap = v->bm_dirty_cap ? 2 * v->bm_dirty_cap : 64;
		d = realloc(v->bm_dirty, cap * sizeof(*d));
		if (!d)
			return vhd_err(ENOMEM, "'%s': no memory", v->path);
		v->bm_dirty = d;
		v->bm_dirty_cap = cap;
	}
	copy = malloc(v->bitmap_size);
	if (!copy)
		return vhd_err(ENOMEM, "'%s': no memory", v->path);
	memcpy(copy, *bits, v->bitmap_size);
	d = &v->bm_dirty[v->bm_ndirty];
	*d = (struct bm_dirty){ blk, UINT32_MAX, 0, copy };
	v->bm_dirty_idx[blk] = v->bm_ndirty++;
	if (v->bm_cache[blk % v->bm_slots].block == blk)
		v->bm_cache[blk % v->bm_slots].block = VHD_BAT_UNUSED;
	v->bm_state[blk] = BM_DIRTY;
	*bits = copy;
	return 0;
}

/* vhd_bm_set's work; caller holds bm_lock. */
static int
bm_set_locked(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t n,
	      int defer)
{
	uint8_t *bits;
	int r;

	r = bm_get(v, blk, &bits);
	if (r < 0 || !bits)
		goto out;
	uint32_t first = UINT32_MAX, last = 0;
	for (uint32_t s = sec; s < sec + n; s++) {
		if (bit_test(bits, s))
			continue;
		if (first == UINT32_MAX && defer &&
		    v->bm_state[blk] != BM_DIRTY &&
		    (r = make_dirty(v, blk, &bits)) < 0)
			goto out;
		bit_set(bits, s);
		if (first == UINT32_MAX)
			first = s;
		last = s;
	}
	if (first == UINT32_MAX)
		goto out;
	/* The bitmap sectors that changed (bit s is in byte s/8, so in
	 * bitmap sector s/4096). */
	uint32_t s0 = first / 4096, s1 = last / 4096;
	if (v->bm_state[blk] == BM_DIRTY) {
		struct bm_dirty *d = dirty_of(v, blk);
		if (s0 < d->lo)
			d->lo = s0;
		if (s1 > d->hi)
			d->hi = s1;
		goto out;
	}
	uint64_t base = (uint64_t)v->bat[blk] * 512;
	r = v->io->ops->pwrite(v->io, bits + (size_t)s0 * 512,
			       (size_t)(s1 - s0 + 1) * 512, base + s0 * 512ull);
	if (r < 0) {
		/* The disk copy is unknown now: reload next time. */
		v->bm_cache[blk % v->bm_slots].block = VHD_BAT_UNUSED;
		v->bm_state[blk] = BM_UNKNOWN;
		r = vhd_err(-r, "'%s': cannot write the bitmap of block %u: "
			    "%s", v->path, blk, strerror(-r));
		goto out;
	}
	if (all_set(v, bits)) {
		v->bm_state[blk] = BM_FULL;
		v->bm_cache[blk % v->bm_slots].block = VHD_BAT_UNUSED;
	}
out:
	return r;
}

int
vhd_bm_set(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t n, int defer)
{
	pthread_mutex_lock(&v->bm_lock);
	int r = bm_set_locked(v, blk, sec, n, defer);
	pthread_mutex_unlock(&v->bm_lock);
	return r;
}

int
vhd_bm_set_shared(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t n)
{
	int r = 0;

	pthread_mutex_lock(&v->bm_lock);
	if (!vhd_bm_dirty_full(v, blk) &&
	    (r = bm_set_locked(v, blk, sec, n, 1)) == 0)
		r = 1;
	pthread_mutex_unlock(&v->bm_lock);
	return r;
}

/* Drops dirty entry i (its bits go to the cache when they fit). */
static void
drop_dirty(struct vhd *v, uint32_t i, int keep)
{
	struct bm_dirty *d = &v->bm_dirty[i];
	struct bm_entry *e = &v->bm_cache[d->block % v->bm_slots];
	uint32_t blk = d->block;

	v->bm_state[blk] = BM_UNKNOWN;
	if (keep && all_set(v, d->bits)) {
		v->bm_state[blk] = BM_FULL;
	} else if (keep) {
		/* The slot takes the bits; its old block reloads later. */
		free(e->bits);
		e->bits = d->bits;
		d->bits = NULL;
		e->block = blk;
		v->bm_state[blk] = BM_PARTIAL;
	}
	free(d->bits);
	*d = v->bm_dirty[--v->bm_ndirty];
	if (i < v->bm_ndirty)
		v->bm_dirty_idx[d->block] = i;
}

int
vhd_bm_commit(struct vhd *v)
{
	int r = 0;

	pthread_mutex_lock(&v->bm_lock);
	while (v->bm_ndirty > 0) {
		struct bm_dirty *d = &v->bm_dirty[v->bm_ndirty - 1];
		uint64_t base = (uint64_t)v->bat[d->block] * 512;
		if (d->lo <= d->hi) {
			r = v->io->ops->pwrite(v->io,
					       d->bits + (size_t)d->lo * 512,
					       (size_t)(d->hi - d->lo + 1) * 512,
					       base + d->lo * 512ull);
			if (r < 0) {
				/* Stays dirty: the next commit tries again. */
				r = vhd_err(-r, "'%s': cannot write the bitmap "
					    "of block %u: %s", v->path,
					    d->block, strerror(-r));
				break;
			}
		}
		drop_dirty(v, v->bm_ndirty - 1, 1);
	}
	pthread_mutex_unlock(&v->bm_lock);
	return r;
}

void
vhd_bm_new_block(struct vhd *v, uint32_t blk, const uint8_t *bits)
{
	struct bm_entry *e = &v->bm_cache[blk % v->bm_slots];

	pthread_mutex_lock(&v->bm_lock);
	if (v->bm_state[blk] == BM_DIRTY)       /* a block reused: stale */
		drop_dirty(v, (uint32_t)(dirty_of(v, blk) - v->bm_dirty), 0);
	if (!bits || all_set(v, bits)) {
		v->bm_state[blk] = BM_FULL;
		if (e->block == blk)
			e->block = VHD_BAT_UNUSED;
	} else {
		v->bm_state[blk] = BM_UNKNOWN;
		if (!e->bits)
			e->bits = malloc(v->bitmap_size);
		if (e->bits) {
			memcpy(e->bits, bits, v->bitmap_size);
			e->block = blk;
			v->bm_state[blk] = BM_PARTIAL;
		}
	}
	pthread_mutex_unlock(&v->bm_lock);
}

void
vhd_bm_forget(struct vhd *v, uint32_t blk)
{
	struct bm_entry *e = &v->bm_cache[blk % v->bm_slots];

	pthread_mutex_lock(&v->bm_lock);
	if (v->bm_state[blk] == BM_DIRTY)
		drop_dirty(v, (uint32_t)(dirty_of(v, blk) - v->bm_dirty), 0);
	v->bm_state[blk] = BM_UNKNOWN;
	if (e->block == blk)
		e->block = VHD_BAT_UNUSED;
	pthread_mutex_unlock(&v->bm_lock);
}
