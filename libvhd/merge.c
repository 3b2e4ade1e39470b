/*
 * merge.c - fold the top of a chain into one of its ancestors (vhd_merge).
 *
 * Every sector whose topmost holder in the chain lies above `into` is read
 * through the chain and written into `into`.  The images above `into` are
 * left as they are, and each of them overrides every sector copied, so at
 * every moment of the merge (and after a crash at any point) the chain
 * still reads the same: the merge is crash-safe by construction.  Deleting
 * the merged images is the caller's business.
 *
 * Locking: the child and every image between it and `into` are locked
 * exclusively for the whole merge (no writer may change what we copy), the
 * chain we read through is opened without locks, and `into` is opened for
 * writing the ordinary way (exclusive lock on it, shared on its parents).
 */
#include <stdlib.h>
#include "internal.h"

/* Bytes moved per read/write: large enough to stream, small enough to
 * keep the memory flat. */
#define MERGE_CHUNK (4u * 1024 * 1024)

struct merge {
	struct vhd_vfs *vfs;    /* every file comes from here */
	struct vhd *chain;      /* the child and its ancestors, no locks */
	struct vhd *dst;        /* `into`, read-write */
	int into_depth;         /* level of `into` in chain (>= 1) */
	struct vhd_io *locks[VHD_MAX_CHAIN];
	int nlocks;
	uint8_t *buf;
};

/* *depth: the level of chain whose file is the one at path, or -1. */
static int
find_level(struct vhd_vfs *vfs, struct vhd *chain, const char *path,
	   int *depth)
{
	struct vhd_io *io;
	struct vhd *v;
	int r, d;

	r = vhd_vfs_open(vfs, &io, path, 0, VHD_LOCK_NONE);
	if (r < 0)
		return r;
	*depth = -1;
	for (v = chain, d = 0; v; v = v->parent, d++) {
		if (vhd_vfs_same(vfs, io, v->io)) {
			*depth = d;
			break;
		}
	}
	io->ops->close(io);
	return 0;
}

static int
is_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Copies [off, off+len) from the chain into dst. */
static int
copy_range(struct merge *m, uint64_t off, uint64_t len)
{
	while (len > 0) {
		size_t n = len > MERGE_CHUNK ? MERGE_CHUNK : (size_t)len;
		uint64_t run;
		unsigned st;
		int r;

		r = vhd_pread(m->chain, m->buf, n, off);
		if (r < 0)
			return r;
		/* Zeros need not be written where `into` reads zeros anyway
		 * (a dynamic `into` would allocate blocks for nothing). */
		if (is_zero(m->buf, n) &&
		    vhd_map(m->dst, off, n, &run, &st, NULL) == 0 &&
		    run == n && (st & VHD_MAP_DATA) == 0) {
			/* nothing to do */
		} else {
			r = vhd_pwrite(m->dst, m->buf, n, off);
			if (r < 0)
				return r;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* Walks the chain's map; with copy 0 only adds up the bytes to copy.
 *
 * Ranges are widened to whole 4 KiB groups (8 sectors, one bitmap byte).
 * That is always safe: the extra sectors are read through the chain, and
 * below the images being folded the chain and `into` read the same.  It
 * keeps the bitmaps written into a differencing `into` byte-aligned, which
 * libvhdi needs (it reads a sector as present when any earlier sector of
 * the same bitmap byte is), and the copies aligned. */
#define MERGE_ALIGN 4096u
static int
walk(struct merge *m, int copy, uint64_t *total, vhd_progress_fn progress,
     void *arg)
{
	uint64_t size = m->chain->size, off = 0, start = 0, pending = 0;
	uint64_t done = 0, copied_to = 0;
	int r;

	while (off < size) {
		uint64_t run, s, e;
		unsigned st;
		int depth;

		int want;

		r = vhd_map(m->chain, off, size - off, &run, &st, &depth);
		if (r < 0)
			return r;
		want = (st & VHD_MAP_DATA) && depth >= 0 &&
		       depth < m->into_depth;
		if (!(st & VHD_MAP_DATA)) {
			/* The chain reads zeros where `into` may read data:
			 * a level above it says so (a VHDX block in state
			 * ZERO; a VHD chain never has this).  Those zeros are
			 * copied too, run by run of `into`'s map. */
			uint64_t drun;
			unsigned dst;

			r = vhd_map(m->dst, off, run, &drun, &dst, NULL);
			if (r < 0)
				return r;
			run = drun;
			want = (dst & VHD_MAP_DATA) != 0;
		}
		if (want) {
			if (pending == 0)
				start = off;
			pending += run;
		}
		off += run;
		/* copy the pending range at a gap, at the end, or when big */
		if (!pending || (start + pending == off && off < size &&
				 pending < 16 * (uint64_t)MERGE_CHUNK))
			continue;
		s = start / MERGE_ALIGN * MERGE_ALIGN;
		e = align_up(start + pending, MERGE_ALIGN);
		if (e > size)
			e = size;
		if (s < copied_to)
			s = copied_to;
		pending = 0;
		if (s >= e)
			continue;
		copied_to = e;
		if (copy) {
			/* Blocks allocated in `into` become durable range by
			 * range: one barrier each (vhd_alloc_commit), not one
			 * per block (10^4 4 KiB blocks took 30 s). */
			r = copy_range(m, s, e - s);
			if (r == 0)
				r = vhd_alloc_commit(m->dst);
			if (r < 0)
				return r;
			done += e - s;
			if (progress)
				progress(arg, done, *total);
		} else {
			*total += e - s;
		}
	}
	return 0;
}

static void
merge_free(struct merge *m)
{
	int i;

	vhd_close(m->dst);
	vhd_close(m->chain);
	for (i = 0; i < m->nlocks; i++)
		m->locks[i]->ops->close(m->locks[i]);
	free(m->buf);
}

int
vhd_merge(const char *child, const char *into, vhd_progress_fn progress,
	  void *arg)
{
	return vhd_merge_vfs(NULL, child, into, progress, arg);
}

/* Do a and b carry the same identity: the unique id a VHD's writes keep,
 * a VHDX's DataWriteGuid (vhd_get_info's unique_id for both)? */
static int
same_identity(struct vhd *a, struct vhd *b)
{
	struct vhd_info ia = { .struct_size = sizeof ia };
	struct vhd_info ib = { .struct_size = sizeof ib };

	return vhd_get_info(a, &ia) == 0 && vhd_get_info(b, &ib) == 0 &&
	       memcmp(ia.unique_id, ib.unique_id, 16) == 0;
}

/* vhd_open_vfs with flags alone. */
static int
open_flags(struct vhd **out, struct vhd_vfs *vfs, const char *path,
	   unsigned flags)
{
	struct vhd_open_opts oo = { sizeof(oo), flags, NULL };

	return vhd_open_vfs(out, vfs, path, &oo);
}

int
vhd_merge_vfs(struct vhd_vfs *vfs, const char *child, const char *into,
	      vhd_progress_fn progress, void *arg)
{
	struct merge m = { 0 };
	struct vhd *v;
	uint64_t total = 0;
	int i, r;

	if (child == NULL)
		return vhd_err(EINVAL, "vhd_merge: no child given");
	if ((r = vhd_vfs_use(&vfs, "vhd_merge_vfs")) < 0)
		return r;
	m.vfs = vfs;
	/* Lock the child first, so nobody writes it while we read it. */
	r = vhd_vfs_open(vfs, &m.locks[0], child, 0, VHD_LOCK_WRITE);
	if (r < 0)
		return r;
	m.nlocks = 1;
	/* VHD or VHDX; a chain is one format throughout (each driver opens
	 * parents of its own format only, so a mixed chain fails here). */
	r = open_flags(&m.chain, vfs, child, VHD_OPEN_RDONLY |
		       VHD_OPEN_NOLOCK);
	if (r < 0)
		goto fail;
	if (m.chain->type != VHD_TYPE_DIFF || m.chain->parent == NULL) {
		r = vhd_err(EINVAL, "'%s': not a differencing disk: nothing to merge",
			    child);
		goto fail;
	}
	if (into == NULL) {
		m.into_depth = 1;
	} else {
		r = find_level(vfs, m.chain, into, &m.into_depth);
		if (r < 0)
			goto fail;
		if (m.into_depth == 0) {
			r = vhd_err(EINVAL, "'%s': cannot merge an image into itself",
				    into);
			goto fail;
		}
		if (m.into_depth < 0) {
			r = vhd_err(EINVAL, "'%s' is not an ancestor of '%s'",
				    into, child);
			goto fail;
		}
	}
	for (v = m.chain, i = 0; i < m.into_depth; v = v->parent, i++)
		;
	if (v->kind == VHD_KIND_RAW) {
		r = vhd_err(ENOTSUP, "'%s': cannot merge into a raw parent image",
			    v->path);
		goto fail;
	}
	if (v->drv != m.chain->drv) {
		r = vhd_err(ENOTSUP, "'%s': a %s image, where only a %s can be "
			    "used (the chain of '%s' is %s)", v->path,
			    v->drv->name, m.chain->drv->name, child,
			    m.chain->drv->name);
		goto fail;
	}
	if (m.chain->size > v->size) {
		r = vhd_err(ENOTSUP, "'%s' (%llu bytes) is larger than '%s' (%llu bytes)",
			    child, (unsigned long long)m.chain->size, v->path,
			    (unsigned long long)v->size);
		goto fail;
	}
	/* The images in between lose their meaning too: lock them. */
	{
		struct vhd *w = m.chain->parent;

		for (i = 1; i < m.into_depth; i++, w = w->parent) {
			r = vhd_vfs_open(vfs, &m.locks[m.nlocks], w->path, 0,
					 VHD_LOCK_WRITE);
			if (r < 0)
				goto fail;
			m.nlocks++;
		}
	}
	r = open_flags(&m.dst, vfs, v->path, VHD_OPEN_RDWR |
		       v->drv->parent_flags);
	if (r < 0)
		goto fail;
	/* Still the image the chain was opened with: the same unique id
	 * (VHD), the same DataWriteGuid (VHDX: nothing written since; our
	 * first write below gives it the one merge_prepare records in the
	 * image above it). */
	if (!same_identity(m.dst, v)) {
		r = vhd_err(EBUSY, "'%s' changed while the merge was starting",
			    v->path);
		goto fail;
	}
	/* VHDX: the target's next DataWriteGuid is recorded first in the
	 * image above it, so that the chain keeps opening after a crash at
	 * any point and the same merge run again completes it (SPEC.md 20,
	 * merge). */
	if (m.dst->drv->merge_prepare) {
		struct vhd *above = m.chain, *ab = NULL;

		for (i = 1; i < m.into_depth; i++)
			above = above->parent;
		/* Locked already (m.locks): no lock of its own. */
		r = open_flags(&ab, vfs, above->path, VHD_OPEN_RDWR |
			       above->drv->parent_flags | VHD_OPEN_NO_PARENT |
			       VHD_OPEN_NOLOCK);
		if (r == 0)
			r = m.dst->drv->merge_prepare(ab, m.dst);
		vhd_close(ab);
		if (r < 0)
			goto fail;
	}
	m.buf = malloc(MERGE_CHUNK);
	if (m.buf == NULL) {
		r = vhd_err(ENOMEM, "vhd_merge: out of memory");
		goto fail;
	}
	r = walk(&m, 0, &total, NULL, NULL);
	if (r < 0)
		goto fail;
	if (progress)
		progress(arg, 0, total);
	vhd_alloc_batch(m.dst, 1);
	r = walk(&m, 1, &total, progress, arg);
	if (r < 0)
		goto fail;
	r = vhd_flush(m.dst);
	/* VHDX: the clean close's header update is a write of the merge
	 * too; its failure is reported (the target stays consistent: a
	 * live log that the next open replays). */
	if (r == 0 && m.dst->drv->finish)
		r = m.dst->drv->finish(m.dst);
fail:
	merge_free(&m);
	return r;
}
