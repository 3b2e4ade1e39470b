/* io_mem.c - a growable in-memory file (tests, fuzzing). */
#include <stdlib.h>
#include "internal.h"

struct io_mem {
	struct vhd_io io;
	uint8_t *data;
	size_t size, cap;
	pthread_mutex_t lock;
};

static int
m_reserve(struct io_mem *m, uint64_t size)
{
	if (size > SIZE_MAX / 2)
		return -ENOSPC;
	if (size <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap < size)
		cap *= 2;
	uint8_t *d = realloc(m->data, cap);
	if (!d)
		return -ENOMEM;
	memset(d + m->cap, 0, cap - m->cap);
	m->data = d;
	m->cap = cap;
	return 0;
}

static int
m_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct io_mem *m = (struct io_mem *)io;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	if (off > m->size || n > m->size - off)
		r = -EIO;
	else
		memcpy(buf, m->data + off, n);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int
m_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct io_mem *m = (struct io_mem *)io;
	int r;

	if (off > SIZE_MAX / 2 || n > SIZE_MAX / 2 - off)
		return -ENOSPC;     /* off + n would wrap */
	pthread_mutex_lock(&m->lock);
	r = m_reserve(m, off + n);
	if (r == 0) {
		memcpy(m->data + off, buf, n);
		if (off + n > m->size)
			m->size = (size_t)(off + n);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int
m_flush(struct vhd_io *io)
{
	(void)io;
	return 0;
}

static int
m_get_size(struct vhd_io *io, uint64_t *size)
{
	struct io_mem *m = (struct io_mem *)io;

	pthread_mutex_lock(&m->lock);
	*size = m->size;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
m_truncate(struct vhd_io *io, uint64_t size)
{
	struct io_mem *m = (struct io_mem *)io;
	int r;

	pthread_mutex_lock(&m->lock);
	r = m_reserve(m, size);
	if (r == 0) {
		if (size < m->size)
			memset(m->data + size, 0, m->size - size);
		m->size = (size_t)size;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int
m_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct io_mem *m = (struct io_mem *)io;

	pthread_mutex_lock(&m->lock);
	if (off < m->size) {
		if (n > m->size - off)
			n = m->size - off;
		memset(m->data + off, 0, (size_t)n);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void
m_close(struct vhd_io *io)
{
	struct io_mem *m = (struct io_mem *)io;

	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->data);
	free(m);
}

static const struct vhd_io_ops mem_ops = {
	.version = VHD_IO_OPS_VERSION,
	.pread = m_pread,
	.pwrite = m_pwrite,
	.flush = m_flush,
	.get_size = m_get_size,
	.truncate = m_truncate,
	.punch = m_punch,
	.close = m_close,
};

int
vhd_io_mem_open(struct vhd_io **out, const void *data, size_t n)
{
	struct io_mem *m = calloc(1, sizeof(*m));

	if (!m)
		return vhd_err(ENOMEM, "no memory");
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return vhd_err(ENOMEM, "no memory");
	}
	if (n && (m_reserve(m, n) < 0)) {
		m_close(&m->io);
		return vhd_err(ENOMEM, "no memory");
	}
	if (n)
		memcpy(m->data, data, n);
	m->size = n;
	m->io.ops = &mem_ops;
	m->io.name = "memory";
	*out = &m->io;
	return 0;
}

const uint8_t *
vhd_io_mem_data(struct vhd_io *io, size_t *n)
{
	struct io_mem *m = (struct io_mem *)io;

	if (!io || io->ops != &mem_ops) {
		if (n)
			*n = 0;
		return NULL;
	}
	if (n)
		*n = m->size;
	return m->data;
}
