/*
 * fuzz_open.c - libFuzzer target: the input is a whole image file.
 *
 * Each input goes through what a tool does with an untrusted image:
 * open it from a memory backend (strictly, then with checksums ignored),
 * describe it, read its first and last bytes and a few places derived
 * from the input, map the whole disk, then open a copy for writing,
 * write, discard and zero a little, close, reopen and read back.  Last,
 * vhd_check runs on the same bytes written to a file in /dev/shm.
 *
 * Besides the sanitizers, a few properties the API promises are checked
 * (an abort() is reported by libFuzzer like a crash):
 *  - vhd_map returns 0 < run <= len and some status bit;
 *  - a range mapped as zero reads as zeros (fixed and dynamic disks);
 *  - data written reads back, before and after a close and reopen;
 *  - an image vhd_open refuses as damaged is not reported clean by check.
 *
 * Differencing disks are always opened with VHD_OPEN_NO_PARENT: the
 * locators come from the input and must not send the fuzzer looking for
 * files (fuzz_locator.c covers their parsing).
 *
 * tests/test_fuzz_regress.c includes this file and calls
 * fuzz_open_input() on every committed regression input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vhd.h"

#define FZ_MAX_INPUT   (4u * 1024 * 1024)
#define FZ_BUF         (64u * 1024)
#define FZ_MAP_STEPS   4096
/* The copy opened for writing may grow by this much at most (a 2 GiB
 * block size is valid VHD, but allocating one would only measure RAM). */
#define FZ_GROW_LIMIT  (16u * 1024 * 1024)

#define FZ_ASSERT(cond, what) do { if (!(cond)) fz_fail(what, __LINE__); } \
	while (0)

#ifdef FUZZ_NO_MAIN
/* In tests/test_fuzz_regress.c a violated property fails the test case. */
void fuzz_regress_fail(const char *who, const char *what, int line);

static void
fz_fail(const char *what, int line)
{
	fuzz_regress_fail("fuzz_open", what, line);
}
#else
/* A property violated aborts, unless FUZZ_OPEN_IGNORE holds a part of
 * its description ('|' between several): a known bug awaiting its fix
 * must not stop the search for the next one. */
static void
fz_fail(const char *what, int line)
{
	const char *ign = getenv("FUZZ_OPEN_IGNORE");

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
	fprintf(stderr, "fuzz_open: property violated at line %d: %s (%s)\n",
		line, what, vhd_errmsg());
	abort();
}
#endif

/* ---- A capped backend that keeps its bytes after close --------------- */

struct fz_io {
	struct vhd_io io;
	struct vhd_io *mem;
	uint64_t limit;
	uint8_t **keep;         /* receives a copy of the bytes on close */
	size_t *keep_len;
};

static int
fz_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->pread(f->mem, buf, n, off);
}

static int
fz_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct fz_io *f = (struct fz_io *)io;

	if (off > f->limit || n > f->limit - off)
		return -ENOSPC;
	return f->mem->ops->pwrite(f->mem, buf, n, off);
}

static int
fz_flush(struct vhd_io *io)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->flush(f->mem);
}

static int
fz_get_size(struct vhd_io *io, uint64_t *size)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->get_size(f->mem, size);
}

static int
fz_truncate(struct vhd_io *io, uint64_t size)
{
	struct fz_io *f = (struct fz_io *)io;

	if (size > f->limit)
		return -ENOSPC;
	return f->mem->ops->truncate(f->mem, size);
}

static int
fz_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct fz_io *f = (struct fz_io *)io;

	return f->mem->ops->punch(f->mem, off, n);
}

static void
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

static struct vhd_io *
fz_io_open(const uint8_t *data, size_t size, uint8_t **keep, size_t *keep_len)
{
	struct fz_io *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	if (vhd_io_mem_open(&f->mem, data, size) < 0) {
		free(f);
		return NULL;
	}
	f->io.ops = &fz_ops;
	f->io.name = "/nonexistent/fuzz/input.vhd";
	f->limit = (uint64_t)size + FZ_GROW_LIMIT;
	f->keep = keep;
	f->keep_len = keep_len;
	return &f->io;
}

/* Opens data (copied) with flags; 0 or -errno. */
static int
fz_open(struct vhd **v, const uint8_t *data, size_t size, unsigned flags,
	uint8_t **keep, size_t *keep_len)
{
	struct vhd_open_opts o = { flags | VHD_OPEN_NO_PARENT, NULL };
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

/* ---- Reading -------------------------------------------------------- */

static uint64_t
fz_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static uint64_t
fz_seed(const uint8_t *data, size_t size)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * UINT64_C(0x100000001b3);
	return h;
}

static int
fz_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void
fz_reads(struct vhd *v, uint64_t disk, uint64_t *seed, uint8_t *buf)
{
	uint64_t n = disk < FZ_BUF ? disk : FZ_BUF;

	(void)vhd_pread(v, buf, (size_t)n, 0);
	(void)vhd_pread(v, buf, (size_t)n, disk - n);
	for (int i = 0; i < 4 && disk > 0; i++) {
		uint64_t off = fz_rand(seed) % disk;
		uint64_t len = 1 + fz_rand(seed) % FZ_BUF;

		if (len > disk - off)
			len = disk - off;
		(void)vhd_pread(v, buf, (size_t)len, off);
	}
	/* Past the end: must fail, without touching anything. */
	FZ_ASSERT(vhd_pread(v, buf, 1, disk) < 0, "read past the end succeeded");
	(void)vhd_pread(v, buf, 2, disk ? disk - 1 : 0);
	(void)vhd_pread(v, buf, 0, disk);
}

static void
fz_map(struct vhd *v, uint64_t disk, int zero_oracle, uint8_t *buf)
{
	uint64_t off = 0;

	for (int i = 0; i < FZ_MAP_STEPS && off < disk; i++) {
		uint64_t run = 0;
		unsigned status = 0;
		int depth = -2;
		int r = vhd_map(v, off, disk - off, &run, &status, &depth);

		if (r < 0)
			return;
		FZ_ASSERT(run > 0 && run <= disk - off, "vhd_map run out of range");
		FZ_ASSERT(status & (VHD_MAP_DATA | VHD_MAP_ZERO),
			  "vhd_map status without DATA or ZERO");
		if (zero_oracle && (status & VHD_MAP_ZERO) &&
		    !(status & VHD_MAP_DATA)) {
			size_t n = run < FZ_BUF ? (size_t)run : FZ_BUF;

			if (vhd_pread(v, buf, n, off) == 0)
				FZ_ASSERT(fz_all_zero(buf, n),
					  "range mapped as zero reads non-zero");
		}
		off += run;
	}
}

/* One read-only pass; returns the open result. */
static int
fz_read_pass(const uint8_t *data, size_t size, unsigned flags, uint8_t *buf)
{
	struct vhd *v = NULL;
	struct vhd_info info;
	uint64_t seed = fz_seed(data, size);
	int r = fz_open(&v, data, size, flags, NULL, NULL);

	if (r < 0)
		return r;
	if (vhd_get_info(v, &info) == 0) {
		FZ_ASSERT(info.type == VHD_TYPE_FIXED ||
			  info.type == VHD_TYPE_DYNAMIC ||
			  info.type == VHD_TYPE_DIFF, "bad type in info");
		(void)vhd_type_name(info.type);
		(void)vhd_path(v);
		(void)vhd_chain_depth(v);
		fz_reads(v, info.virtual_size, &seed, buf);
		fz_map(v, info.virtual_size, info.type != VHD_TYPE_DIFF, buf);
	}
	vhd_close(v);
	return 0;
}

/* ---- Writing -------------------------------------------------------- */

struct fz_write {
	uint64_t off;
	size_t len;
	uint8_t fill;
	int ok;
};

static void
fz_write_pass(const uint8_t *data, size_t size, unsigned flags, uint8_t *buf)
{
	struct vhd *v = NULL;
	struct vhd_info info;
	struct fz_write w[4];
	uint8_t *out = NULL;
	size_t out_len = 0;
	uint64_t seed = fz_seed(data, size) ^ 0x5a5a;
	uint64_t disk;
	int r, diff;

	r = fz_open(&v, data, size, flags | VHD_OPEN_RDWR, &out, &out_len);
	if (r < 0)
		return;
	if (vhd_get_info(v, &info) < 0 || info.virtual_size == 0) {
		vhd_close(v);
		free(out);
		return;
	}
	disk = info.virtual_size;
	diff = info.type == VHD_TYPE_DIFF;
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 4; i++) {
		w[i].off = fz_rand(&seed) % disk;
		if (i == 0)
			w[i].off = 0;
		if (i == 1)
			w[i].off = disk - 1;
		if (i < 2 || (fz_rand(&seed) & 1))
			w[i].off &= ~(uint64_t)511;
		w[i].len = 1 + fz_rand(&seed) % 8192;
		if (w[i].len > disk - w[i].off)
			w[i].len = (size_t)(disk - w[i].off);
		w[i].fill = (uint8_t)(0x11 * (i + 1));
		memset(buf, w[i].fill, w[i].len);
		w[i].ok = vhd_pwrite(v, buf, w[i].len, w[i].off) == 0;
		if (w[i].ok) {
			FZ_ASSERT(vhd_pread(v, buf, w[i].len, w[i].off) == 0 ||
				  diff, "reading back a write failed");
			FZ_ASSERT(diff || (buf[0] == w[i].fill &&
					   buf[w[i].len - 1] == w[i].fill),
				  "written data does not read back");
		}
		/* A later write may overlap an earlier one. */
		for (int j = 0; j < i; j++)
			if (w[j].off < w[i].off + w[i].len &&
			    w[i].off < w[j].off + w[j].len)
				w[j].ok = 0;
	}
	{
		uint64_t off = fz_rand(&seed) % disk, len = fz_rand(&seed) % (4u << 20);

		if (len > disk - off)
			len = disk - off;
		if (vhd_discard(v, off, len) == 0)
			for (int j = 0; j < 4; j++)
				if (w[j].off < off + len && off < w[j].off + w[j].len)
					w[j].ok = 0;
		off = fz_rand(&seed) % disk;
		len = fz_rand(&seed) % (1u << 20);
		if (len > disk - off)
			len = disk - off;
		if (vhd_write_zeroes(v, off, len, (unsigned)(fz_rand(&seed) & 3)) == 0)
			for (int j = 0; j < 4; j++)
				if (w[j].off < off + len && off < w[j].off + w[j].len)
					w[j].ok = 0;
	}
	(void)vhd_flush(v);
	vhd_close(v);
	if (!out)
		return;

	/* What the library wrote must open again and hold the data. */
	v = NULL;
	r = fz_open(&v, out, out_len, flags, NULL, NULL);
	FZ_ASSERT(r == 0, "image written by libvhd does not reopen");
	for (int i = 0; i < 4; i++) {
		if (!w[i].ok || diff)
			continue;
		FZ_ASSERT(vhd_pread(v, buf, w[i].len, w[i].off) == 0,
			  "reading back after reopen failed");
		FZ_ASSERT(buf[0] == w[i].fill && buf[w[i].len - 1] == w[i].fill,
			  "written data lost after reopen");
	}
	fz_map(v, disk, !diff, buf);
	vhd_close(v);
	free(out);
}

/* ---- Checking ------------------------------------------------------- */

static char fz_shm_path[64];

static void
fz_shm_cleanup(void)
{
	if (fz_shm_path[0])
		unlink(fz_shm_path);
}

/* Counts the problems reported ("warning: " lines are reported but, by
 * check.c's design, not counted). */
static void
fz_count(void *arg, const char *problem)
{
	FZ_ASSERT(problem && problem[0], "check reported an empty problem");
	if (strncmp(problem, "warning: ", 9) != 0)
		++*(int *)arg;
}

/* vhd_check takes a path: the input goes to a tmpfs file.  Returns what
 * vhd_check returned, or INT32_MIN when the file could not be written. */
static int
fz_check(const uint8_t *data, size_t size)
{
	int fd, reported = 0, r;

	if (!fz_shm_path[0]) {
		snprintf(fz_shm_path, sizeof(fz_shm_path),
			 "/dev/shm/vhd-fuzz-%ld.vhd", (long)getpid());
		atexit(fz_shm_cleanup);
	}
	fd = open(fz_shm_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return INT32_MIN;
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0) {
			close(fd);
			return INT32_MIN;
		}
		done += (size_t)n;
	}
	close(fd);
	r = vhd_check(fz_shm_path, VHD_CHECK_NO_PARENT, fz_count, &reported);
	FZ_ASSERT(r < 0 || r == reported, "check's count differs from its reports");
	return r;
}

/* The whole pipeline for one input (also used by test_fuzz_regress.c). */
int fuzz_open_input(const uint8_t *data, size_t size);

int
fuzz_open_input(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	int strict, lenient, checked;

	if (size > FZ_MAX_INPUT)
		return 0;
	buf = malloc(FZ_BUF);
	if (!buf)
		return 0;
	strict = fz_read_pass(data, size, VHD_OPEN_RDONLY, buf);
	lenient = fz_read_pass(data, size, VHD_OPEN_IGNORE_CHECKSUM, buf);
	FZ_ASSERT(strict < 0 || lenient == 0,
		  "IGNORE_CHECKSUM refuses what a strict open accepts");
	fz_write_pass(data, size, strict == 0 ? 0 : VHD_OPEN_IGNORE_CHECKSUM, buf);
	checked = fz_check(data, size);
	if (strict == -EBADMSG && checked != INT32_MIN)
		FZ_ASSERT(checked != 0, "check reports clean an image open refuses");
	free(buf);
	return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_open_input(data, size);
}
#endif
