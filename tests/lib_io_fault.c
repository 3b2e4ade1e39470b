/* lib_io_fault.c - fault-injecting backend wrapper (see lib_io_fault.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib_io_fault.h"

enum { OP_WRITE, OP_TRUNCATE, OP_PUNCH };

struct pending {
	int op;
	uint64_t off, n;
	uint8_t *data;
};

struct fault_io {
	struct vhd_io io;
	struct fault_io *ctl;   /* who counts: itself, or the fault VFS's
				   one counter for all its files */
	int owns_inner;         /* a file of the fault VFS: closed with it */
	struct vhd_io *inner, *durable;
	enum fault_mode mode;
	long n, writes;
	int triggered, must_fail;
	uint32_t seed;
	struct pending *q;
	size_t nq, capq;
	long *report;           /* gets writes at close */
};

static int
apply(struct vhd_io *io, const struct pending *p)
{
	switch (p->op) {
	case OP_WRITE:
		return io->ops->pwrite(io, p->data, p->n, p->off);
	case OP_TRUNCATE:
		return io->ops->truncate(io, p->off);
	default:
		return io->ops->punch ? io->ops->punch(io, p->off, p->n) : 0;
	}
}

static void
drop_queue(struct fault_io *f)
{
	for (size_t i = 0; i < f->nq; i++)
		free(f->q[i].data);
	f->nq = 0;
}

/* The writes since the last barrier, to the durable copy: all of them
 * (a flush) or a random subset (power loss). */
static void
settle(struct fault_io *f, int all)
{
	for (size_t i = 0; i < f->nq; i++) {
		f->seed = f->seed * 1103515245u + 12345u;
		if (all || (f->seed >> 16) & 1)
			apply(f->durable, &f->q[i]);
	}
	drop_queue(f);
}

static int
enqueue(struct fault_io *f, int op, const void *buf, uint64_t off,
	uint64_t n)
{
	if (f->nq == f->capq) {
		size_t cap = f->capq ? 2 * f->capq : 64;
		struct pending *q = realloc(f->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		f->q = q;
		f->capq = cap;
	}
	struct pending *p = &f->q[f->nq];
	p->op = op;
	p->off = off;
	p->n = n;
	p->data = NULL;
	if (buf) {
		if (!(p->data = malloc(n ? n : 1)))
			return -ENOMEM;
		memcpy(p->data, buf, n);
	}
	f->nq++;
	return 0;
}

/* 1: pass the write on, 0: drop it (report success), 2: pass on only
 * the first half, <0: fail with that. */
static int
gate(struct fault_io *f, int op)
{
	f = f->ctl;
	f->writes++;
	if (f->mode == FAULT_NONE || f->writes < f->n)
		return 1;
	if (f->writes == f->n) {
		f->triggered = 1;
		f->must_fail = op != OP_PUNCH;
	}
	switch (f->mode) {
	case FAULT_FAIL:
		return f->writes == f->n ? -EIO : 1;
	case FAULT_ENOSPC:
		return -ENOSPC;
	case FAULT_SHORT:
		return f->writes == f->n && op == OP_WRITE ? 2 : -ENOSPC;
	case FAULT_REORDER:
		if (f->writes == f->n)
			settle(f, 0);
		return 1;
	default:
		return 0;
	}
}

static int
x_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct fault_io *f = (struct fault_io *)io;

	return f->inner->ops->pread(f->inner, buf, n, off);
}

static int
pass(struct fault_io *f, int op, const void *buf, uint64_t off, uint64_t n)
{
	struct pending p = { op, off, n, (uint8_t *)(uintptr_t)buf };
	int g = gate(f, op);

	if (g <= 0)
		return g;
	if (g == 2) {   /* short: half of it lands, then the disk is full */
		p.n = n / 2;
		if (p.n)
			apply(f->inner, &p);
		return -ENOSPC;
	}
	if (f->mode == FAULT_REORDER && !f->triggered) {
		int r = enqueue(f, op, buf, off, n);
		if (r < 0)
			return r;
	}
	if (op == OP_PUNCH && !f->inner->ops->punch)
		return -ENOTSUP;
	return apply(f->inner, &p);
}

static int
x_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	return pass((struct fault_io *)io, OP_WRITE, buf, off, n);
}

static int
x_flush(struct vhd_io *io)
{
	struct fault_io *f = (struct fault_io *)io;

	if (f->ctl->mode == FAULT_CRASH && f->ctl->triggered)
		return 0;
	if (f->mode == FAULT_REORDER && !f->triggered)
		settle(f, 1);
	return f->inner->ops->flush(f->inner);
}

static int
x_get_size(struct vhd_io *io, uint64_t *size)
{
	struct fault_io *f = (struct fault_io *)io;

	return f->inner->ops->get_size(f->inner, size);
}

static int
x_truncate(struct vhd_io *io, uint64_t size)
{
	return pass((struct fault_io *)io, OP_TRUNCATE, NULL, size, 0);
}

static int
x_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	return pass((struct fault_io *)io, OP_PUNCH, NULL, off, n);
}

static void
x_close(struct vhd_io *io)
{
	struct fault_io *f = (struct fault_io *)io;

	if (f->report)
		*f->report = f->writes;
	drop_queue(f);
	free(f->q);
	if (f->owns_inner)
		f->inner->ops->close(f->inner);
	free(f);
}

static const struct vhd_io_ops fault_ops = {
	1, x_pread, x_pwrite, x_flush, x_get_size, x_truncate, x_punch,
	x_close,
};

struct vhd_io *
fault_io_wrap(struct vhd_io *inner, enum fault_mode mode, long n)
{
	struct fault_io *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->io.ops = &fault_ops;
	f->io.name = inner->name;
	f->ctl = f;
	f->inner = inner;
	f->mode = mode;
	f->n = n;
	return &f->io;
}

struct vhd_io *
fault_io_wrap_reorder(struct vhd_io *inner, struct vhd_io *durable, long n,
		      uint32_t seed)
{
	struct vhd_io *io = fault_io_wrap(inner, FAULT_REORDER, n);

	if (io) {
		((struct fault_io *)io)->durable = durable;
		((struct fault_io *)io)->seed = seed;
	}
	return io;
}

void
fault_io_report_writes(struct vhd_io *io, long *writes)
{
	((struct fault_io *)io)->report = writes;
}

long
fault_io_writes(struct vhd_io *io)
{
	return ((struct fault_io *)io)->writes;
}

int
fault_io_triggered(struct vhd_io *io)
{
	return ((struct fault_io *)io)->triggered;
}

int
fault_io_trigger_must_fail(struct vhd_io *io)
{
	return ((struct fault_io *)io)->must_fail;
}

/* ---- The fault VFS ---------------------------------------------------- */
struct fault_vfs {
	struct vhd_vfs vfs;
	struct vhd_vfs *inner;
	struct fault_io ctl;    /* the counter and the mode */
};

static struct vhd_io *
inner_io(struct vhd_io *io)
{
	return io && io->ops == &fault_ops ? ((struct fault_io *)io)->inner :
	       NULL;
}

static int
v_open(struct vhd_vfs *vfs, const char *name, unsigned flags, int lock,
       struct vhd_io **out)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;
	struct vhd_io *in;
	struct fault_io *f;
	int r;

	/* Creating a file is a write too (what a crash may not leave). */
	if ((flags & VHD_IO_CREATE) && (r = gate(&fv->ctl, OP_WRITE)) != 1)
		return r == 0 ? -EIO : r == 2 ? -ENOSPC : r;
	if ((r = fv->inner->open_name(fv->inner, name, flags, lock, &in)) < 0)
		return r;
	if (!(f = (struct fault_io *)fault_io_wrap(in, fv->ctl.mode,
						    fv->ctl.n))) {
		in->ops->close(in);
		return -ENOMEM;
	}
	f->ctl = &fv->ctl;
	f->owns_inner = 1;
	*out = &f->io;
	return 0;
}

static int
v_lock(struct vhd_vfs *vfs, struct vhd_io *io, int lock)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;

	if (!inner_io(io))
		return -EINVAL;
	return fv->inner->lock(fv->inner, inner_io(io), lock);
}

static int
v_identity(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2])
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;

	if (!inner_io(io))
		return 0;
	return fv->inner->identity(fv->inner, inner_io(io), id);
}

static int
v_realpath(struct vhd_vfs *vfs, const char *name, char **out)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;

	return fv->inner->full_name(fv->inner, name, out);
}

static int
v_mtime(struct vhd_vfs *vfs, const char *name, int64_t *secs)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;

	return fv->inner->mtime(fv->inner, name, secs);
}

static int
v_random(struct vhd_vfs *vfs, void *buf, size_t n)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;

	return fv->inner->randomness(fv->inner, buf, n);
}

/* rename and unlink count as writes: dropped after a crash, failed as a
 * write would be. */
static int
v_rename(struct vhd_vfs *vfs, const char *from, const char *to)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;
	int g = gate(&fv->ctl, OP_WRITE);

	if (g <= 0)
		return g;
	if (g == 2)
		return -ENOSPC;
	return fv->inner->rename_name(fv->inner, from, to);
}

static int
v_unlink(struct vhd_vfs *vfs, const char *name)
{
	struct fault_vfs *fv = (struct fault_vfs *)vfs;
	int g = gate(&fv->ctl, OP_WRITE);

	if (g <= 0)
		return g;
	if (g == 2)
		return -ENOSPC;
	return fv->inner->delete_name(fv->inner, name);
}

struct vhd_vfs *
fault_vfs_new(struct vhd_vfs *inner, enum fault_mode mode, long n)
{
	struct fault_vfs *fv = calloc(1, sizeof(*fv));

	if (!fv || mode == FAULT_REORDER) {
		free(fv);
		return NULL;
	}
	fv->vfs.version = VHD_VFS_VERSION;
	fv->vfs.name = "fault";
	fv->vfs.data = fv;
	fv->vfs.open_name = v_open;
	fv->vfs.lock = v_lock;
	fv->vfs.identity = v_identity;
	fv->vfs.full_name = v_realpath;
	fv->vfs.mtime = v_mtime;
	fv->vfs.randomness = v_random;
	fv->vfs.rename_name = v_rename;
	fv->vfs.delete_name = v_unlink;
	fv->inner = inner;
	fv->ctl.ctl = &fv->ctl;
	fv->ctl.mode = mode;
	fv->ctl.n = n;
	return &fv->vfs;
}

void
fault_vfs_free(struct vhd_vfs *vfs)
{
	free(vfs);
}

long
fault_vfs_writes(struct vhd_vfs *vfs)
{
	return ((struct fault_vfs *)vfs)->ctl.writes;
}

int
fault_vfs_triggered(struct vhd_vfs *vfs)
{
	return ((struct fault_vfs *)vfs)->ctl.triggered;
}

int
fault_vfs_trigger_must_fail(struct vhd_vfs *vfs)
{
	return ((struct fault_vfs *)vfs)->ctl.must_fail;
}

int
fault_vfs_run(int (*op)(struct vhd_vfs *), enum fault_mode mode, long n,
	      long *writes, int *must_fail)
{
	struct vhd_vfs *fv = fault_vfs_new(vhd_vfs_platform(), mode, n);
	int r;

	if (fv == NULL) {
		fprintf(stderr, "fault_vfs_run: cannot make the fault VFS\n");
		abort();
	}
	r = op(fv);
	if (writes)
		*writes = fault_vfs_writes(fv);
	if (must_fail)
		*must_fail = fault_vfs_triggered(fv) &&
			     fault_vfs_trigger_must_fail(fv);
	fault_vfs_free(fv);
	return r;
}
