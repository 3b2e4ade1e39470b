/*
 * fuzz_util.h - what the fuzz targets share: a memory backend that caps
 * growth and can keep its bytes after close, and a reproducible
 * pseudo-random stream seeded from the input.  Header-only (static
 * inline), so each target and test_fuzz_regress.c include it as is.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "largefile.h"
#include "vhd.h"
#include "vhd_test.h"

#define FZ_BUF         (64u * 1024)
/* A copy opened for writing may grow by this much at most (a 2 GiB
 * block size is valid VHD, but allocating one would only measure RAM). */
#define FZ_GROW_LIMIT  (16u * 1024 * 1024)
#define FZ_NAME        "/nonexistent/fuzz/input.vhd"

/* ---- A capped backend that keeps its bytes after close --------------- */

struct fz_io {
	struct vhd_io io;
	struct vhd_io *mem;
	uint64_t limit;
	uint8_t **keep;         /* receives a copy of the bytes on close */
	size_t *keep_len;
};

static inline int
fz_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->pread(f->mem, buf, n, off);
}

static inline int
fz_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct fz_io *f = (struct fz_io *)io;

	if (off > f->limit || n > f->limit - off)
		return -ENOSPC;
	return f->mem->ops->pwrite(f->mem, buf, n, off);
}

static inline int
fz_flush(struct vhd_io *io)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->flush(f->mem);
}

static inline int
fz_get_size(struct vhd_io *io, uint64_t *size)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->get_size(f->mem, size);
}

static inline int
fz_truncate(struct vhd_io *io, uint64_t size)
{
	struct fz_io *f = (struct fz_io *)io;

	if (size > f->limit)
		return -ENOSPC;
	return f->mem->ops->truncate(f->mem, size);
}

static inline int
fz_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->punch(f->mem, off, n);
}

static inline void
fz_close(struct vhd_io *io)
{
	struct fz_io *f = (struct fz_io *)io;

	if (f->keep) {
		size_t n;
		const uint8_t *d = vhd_io_mem_data(f->mem, &n);

		*f->keep = malloc(n ? n : 1);
		if (*f->keep) {
			if (n)
				memcpy(*f->keep, d, n);
			*f->keep_len = n;
		}
	}
	f->mem->ops->close(f->mem);
	free(f);
}

static inline struct vhd_io *
fz_io_open(const uint8_t *data, size_t size, uint8_t **keep, size_t *keep_len)
{
	static const struct vhd_io_ops fz_ops = {
		.version = 1,
		.pread = fz_pread,
		.pwrite = fz_pwrite,
		.flush = fz_flush,
		.get_size = fz_get_size,
		.truncate = fz_truncate,
		.punch = fz_punch,
		.close = fz_close,
	};
	struct fz_io *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	if (vhd_io_mem_open(&f->mem, data, size) < 0) {
		free(f);
		return NULL;
	}
	f->io.ops = &fz_ops;
	f->io.name = FZ_NAME;
	f->limit = (uint64_t)size + FZ_GROW_LIMIT;
	f->keep = keep;
	f->keep_len = keep_len;
	return &f->io;
}

/* Opens data (copied) with flags; 0 or -errno. */
static inline int
fz_open(struct vhd **v, const uint8_t *data, size_t size, unsigned flags,
	uint8_t **keep, size_t *keep_len)
{
	struct vhd_open_opts o = { sizeof o, flags | VHD_OPEN_NO_PARENT, NULL };
	struct vhd_io *io = fz_io_open(data, size, keep, keep_len);
	int r;

	if (!io)
		return -ENOMEM;
	r = vhd_open_io(v, io, &o);
	if (r < 0) {
		io->ops->close(io);
		if (keep && *keep) {
			free(*keep);
			*keep = NULL;
		}
	}
	return r;
}

/* Writes data to path (a tmpfs file, for the calls that take a path);
 * 0 or -1. */
static inline int
fz_write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	return close(fd);
}

#ifdef FUZZ_NO_MAIN
/* In tests/test_fuzz_regress.c a violated property fails the test case. */
void fuzz_regress_fail(const char *who, const char *what, int line);

static inline void
fz_property_fail(const char *who, const char *ignore_env, const char *what,
		 int line)
{
	(void)ignore_env;
	fuzz_regress_fail(who, what, line);
}
#else
/* A violated property aborts, unless the environment variable ignore_env
 * holds a part of its description ('|' between several): a known bug
 * awaiting its fix must not stop the search for the next one. */
static inline void
fz_property_fail(const char *who, const char *ignore_env, const char *what,
		 int line)
{
	const char *ign = getenv(ignore_env);

	while (ign && *ign) {
		size_t n = strcspn(ign, "|");
		char part[128];

		if (n > 0 && n < sizeof(part)) {
			memcpy(part, ign, n);
			part[n] = '\0';
			if (strstr(what, part))
				return;
		}
		ign += n + (ign[n] == '|');
	}
	fprintf(stderr, "%s: property violated at line %d: %s (%s)\n", who,
		line, what, vhd_errmsg());
	abort();
}
#endif

static inline uint64_t
fz_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* A hash of the input: all of it up to 256 KiB, beyond that the first
 * 4 KiB of every 64 KiB (where VHD and VHDX keep their structures), so
 * that fuzz_vhdx's megabytes of unpacked image cost little in the
 * coverage-instrumented loop. */
static inline uint64_t
fz_seed(const uint8_t *data, size_t size)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < size; i++) {
		if (size > (256u << 10) && (i & 0xffff) == 4096) {
			i += 0xffff - 4096;
			continue;
		}
		h = (h ^ data[i]) * UINT64_C(0x100000001b3);
	}
	return (h ^ size) * UINT64_C(0x100000001b3);
}

/* memcmp against itself shifted by one: fast under the sanitizers. */
static inline int
fz_all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

#endif
