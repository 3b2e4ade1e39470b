/* lib_io_fault.c - fault-injecting backend wrapper (see lib_io_fault.h). */
#include <errno.h>
#include <stdlib.h>
#include "lib_io_fault.h"

struct fault_io {
	struct vhd_io io;
	struct vhd_io *inner;
	enum fault_mode mode;
	long n, writes;
	int triggered;
};

/* 1: pass the write on, 0: drop it (report success), -EIO: fail. */
static int
gate(struct fault_io *f)
{
	f->writes++;
	if (f->mode == FAULT_NONE || f->writes < f->n)
		return 1;
	if (f->mode == FAULT_FAIL) {
		if (f->writes == f->n) {
			f->triggered = 1;
			return -EIO;
		}
		return 1;
	}
	f->triggered = 1;
	return 0;
}

static int
x_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct fault_io *f = (struct fault_io *)io;

	return f->inner->ops->pread(f->inner, buf, n, off);
}

static int
x_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct fault_io *f = (struct fault_io *)io;
	int g = gate(f);

	return g == 1 ? f->inner->ops->pwrite(f->inner, buf, n, off) : g;
}

static int
x_flush(struct vhd_io *io)
{
	struct fault_io *f = (struct fault_io *)io;

	if (f->mode == FAULT_CRASH && f->triggered)
		return 0;
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
	struct fault_io *f = (struct fault_io *)io;
	int g = gate(f);

	return g == 1 ? f->inner->ops->truncate(f->inner, size) : g;
}

static int
x_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct fault_io *f = (struct fault_io *)io;
	int g = gate(f);

	if (!f->inner->ops->punch)
		return -ENOTSUP;
	return g == 1 ? f->inner->ops->punch(f->inner, off, n) : g;
}

static void
x_close(struct vhd_io *io)
{
	free(io);
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
