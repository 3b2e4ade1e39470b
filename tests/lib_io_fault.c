/* lib_io_fault.c - fault-injecting backend wrapper (see lib_io_fault.h). */
#include <errno.h>
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
	struct vhd_io *inner, *durable;
	enum fault_mode mode;
	long n, writes;
	int triggered, must_fail;
	uint32_t seed;
	struct pending *q;
	size_t nq, capq;
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

	if (f->mode == FAULT_CRASH && f->triggered)
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

	drop_queue(f);
	free(f->q);
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
