/*
 * test_portable_large.c - disk and file offsets beyond 4 GiB, on real
 * (sparse) files.  Built for every target of `make portability` (x86_64,
 * i686, s390x, mingw-w64): on 32-bit targets a size_t, long or off_t in
 * the offset path truncates at 2 or 4 GiB and these tests see the bytes
 * land in the wrong place.  Only the public API and standard C are used,
 * so the same file builds on Windows.
 *
 * The files are a few hundred KiB on disk: the images are 8 GiB but
 * sparse.  They go to $TMPDIR (or $TEMP, else /tmp).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "lib_testutil.h"
#include "vhd.h"

#define KiB UINT64_C(1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define DISK_SIZE (8 * GiB)

static char img_path[1024];

static uint32_t
prng(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void
pattern(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)prng(&seed);
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

/* A fresh name in the temporary directory (vhd_create refuses to
 * overwrite, so a clash fails loudly instead of reusing a file). */
static int
setup(void **state)
{
	static unsigned counter;
	const char *dir = getenv("TMPDIR");
	uint32_t s = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)&counter;

	(void)state;
	if (!dir || !*dir)
		dir = getenv("TEMP");
	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(img_path, sizeof(img_path), "%s/vhd-large-%08x-%u.vhd", dir,
		 (unsigned)prng(&s), counter++);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	/* (Windows' remove() takes ANSI names: the UTF-8 one stays behind in
	 * the temporary directory, which the portability script removes.) */
	remove(img_path);
	return 0;
}

static void
write_at(struct vhd *v, uint64_t off, size_t n, uint32_t seed)
{
	uint8_t *buf = malloc(n);

	assert_non_null(buf);
	pattern(buf, n, seed);
	if (vhd_pwrite(v, buf, n, off) != 0)
		fail_msg("write %zu at %" PRIu64 ": %s", n, off, vhd_errmsg());
	free(buf);
}

static void
expect_at(struct vhd *v, uint64_t off, size_t n, uint32_t seed)
{
	uint8_t *buf = malloc(n), *want = malloc(n);

	assert_non_null(buf);
	assert_non_null(want);
	pattern(want, n, seed);
	if (vhd_pread(v, buf, n, off) != 0)
		fail_msg("read %zu at %" PRIu64 ": %s", n, off, vhd_errmsg());
	assert_memory_equal(buf, want, n);
	free(buf);
	free(want);
}

static void
expect_zero(struct vhd *v, uint64_t off, size_t n)
{
	uint8_t *buf = malloc(n);

	assert_non_null(buf);
	memset(buf, 0xAA, n);
	if (vhd_pread(v, buf, n, off) != 0)
		fail_msg("read %zu at %" PRIu64 ": %s", n, off, vhd_errmsg());
	assert_true(is_zero(buf, n));
	free(buf);
}

static int problems;

static void
count_problem(void *arg, const char *msg)
{
	(void)arg;
	print_error("check: %s\n", msg);
	problems++;
}

static void
expect_clean(void)
{
	problems = 0;
	assert_int_equal(vhd_check(img_path, 0, count_problem, NULL), 0);
	assert_int_equal(problems, 0);
}

/* The writes both kinds of image get: one spanning the 4 GiB boundary,
 * one at 6 GiB (unaligned), the last sector; a neighbour that must stay
 * zero on each side of the first. */
static void
write_set(struct vhd *v)
{
	uint8_t b;

	write_at(v, 4 * GiB - 100, 200, 1);
	write_at(v, 6 * GiB + 123, 5000, 2);
	write_at(v, DISK_SIZE - 512, 512, 3);
	/* Past the end: refused, nothing wraps round to offset 0. */
	assert_true(vhd_pwrite(v, &b, 1, DISK_SIZE) < 0);
	assert_true(vhd_pread(v, &b, 1, DISK_SIZE) < 0);
	assert_true(vhd_pread(v, &b, 1, UINT64_MAX) < 0);
}

static void
verify_set(struct vhd *v)
{
	expect_at(v, 4 * GiB - 100, 200, 1);
	expect_at(v, 6 * GiB + 123, 5000, 2);
	expect_at(v, DISK_SIZE - 512, 512, 3);
	expect_zero(v, 4 * GiB - 4096, 4096 - 100);
	expect_zero(v, 4 * GiB + 100, 4096);
	expect_zero(v, 6 * GiB, 123);
	/* The same offsets minus 4 GiB: a truncated offset would land here. */
	expect_zero(v, 0, 4096);
	expect_zero(v, 2 * GiB, 8192);
	expect_zero(v, 4 * GiB - 512, 412);
}

static void
test_dynamic_8g(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC,
				     .size = DISK_SIZE };
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v = NULL;
	uint64_t run;
	unsigned st;

	(void)state;
	if (vhd_create(img_path, &o) != 0)
		fail_msg("create: %s", vhd_errmsg());
	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDWR), 0);
	write_set(v);
	vhd_close(v);

	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY), 0);
	verify_set(v);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.virtual_size, DISK_SIZE);
	/* 4 GiB - 100 spans blocks 2047 and 2048 (2 MiB blocks). */
	assert_int_equal(in.allocated_blocks, 4);
	assert_int_equal(vhd_map(v, 6 * GiB, 4096, &run, &st, NULL), 0);
	assert_true(st & VHD_MAP_DATA);
	assert_int_equal(vhd_map(v, 5 * GiB, 4096, &run, &st, NULL), 0);
	assert_true(st & VHD_MAP_ZERO);
	assert_int_equal(run, 4096);
	vhd_close(v);
	expect_clean();
}

static void
test_fixed_8g(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_FIXED,
				     .size = DISK_SIZE,
				     .flags = VHD_CREATE_SPARSE };
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd_io *io = NULL;
	struct vhd *v = NULL;
	uint64_t fs = 0;
	uint8_t raw[512], want[512];

	(void)state;
	if (vhd_create(img_path, &o) != 0)
		fail_msg("create: %s", vhd_errmsg());
	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDWR), 0);
	write_set(v);
	vhd_close(v);

	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY), 0);
	verify_set(v);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.virtual_size, DISK_SIZE);
	assert_int_equal(in.file_size, DISK_SIZE + 512);
	vhd_close(v);

	/* A fixed disk's data sits at the same offset in the file: look at
	 * the file through the plain file backend, and at the footer. */
	assert_int_equal(vhd_io_file_open(&io, img_path, 0), 0);
	assert_int_equal(io->ops->get_size(io, &fs), 0);
	assert_int_equal(fs, DISK_SIZE + 512);
	assert_int_equal(io->ops->pread(io, raw, 512, DISK_SIZE - 512), 0);
	pattern(want, 512, 3);
	assert_memory_equal(raw, want, 512);
	assert_int_equal(io->ops->pread(io, raw, 512, DISK_SIZE), 0);
	assert_memory_equal(raw, "conectix", 8);
	assert_int_equal(tu_be64(raw + 48), DISK_SIZE);    /* current size */
	io->ops->close(io);
	expect_clean();
}

/* A block whose data lies beyond 4 GiB in the FILE (as in any well-used
 * image): put it there by hand, then read it, write into it and let the
 * library allocate the next block after it. */
static void
test_dynamic_block_past_4g(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC,
				     .size = DISK_SIZE };
	const uint64_t bitmap_off = 5 * GiB - 512;      /* 2 MiB: 1 sector */
	const uint64_t data_off = 5 * GiB;
	const uint32_t blk = 3000;                      /* disk 5.86 GiB */
	const uint64_t disk_off = (uint64_t)blk * 2 * MiB;
	uint8_t foot[512], hdr[1024], e[4], ones[512], zero[512];
	uint8_t *data = malloc(64 * KiB);
	struct vhd_io *io = NULL;
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v = NULL;
	uint64_t fs = 0, hdr_off, bat_off, sec;

	(void)state;
	assert_non_null(data);
	if (vhd_create(img_path, &o) != 0)
		fail_msg("create: %s", vhd_errmsg());
	assert_int_equal(vhd_io_file_open(&io, img_path, VHD_IO_RDWR), 0);
	assert_int_equal(io->ops->get_size(io, &fs), 0);
	assert_int_equal(io->ops->pread(io, foot, 512, fs - 512), 0);
	hdr_off = tu_be64(foot + 16);
	assert_int_equal(io->ops->pread(io, hdr, 1024, hdr_off), 0);
	assert_memory_equal(hdr, "cxsparse", 8);
	bat_off = tu_be64(hdr + 16);
	assert_int_equal(tu_be32(hdr + 32), 2 * MiB);
	assert_true(tu_be32(hdr + 28) > blk);

	memset(ones, 0xFF, sizeof(ones));
	memset(zero, 0, sizeof(zero));
	pattern(data, 64 * KiB, 7);
	assert_int_equal(io->ops->pwrite(io, ones, 512, bitmap_off), 0);
	assert_int_equal(io->ops->pwrite(io, data, 64 * KiB, data_off), 0);
	/* The footer moves to just after the block; the old one is zeroed. */
	assert_int_equal(io->ops->pwrite(io, foot, 512, data_off + 2 * MiB),
			 0);
	assert_int_equal(io->ops->pwrite(io, zero, 512, fs - 512), 0);
	sec = bitmap_off / 512;
	e[0] = (uint8_t)(sec >> 24);
	e[1] = (uint8_t)(sec >> 16);
	e[2] = (uint8_t)(sec >> 8);
	e[3] = (uint8_t)sec;
	assert_int_equal(io->ops->pwrite(io, e, 4, bat_off + 4 * blk), 0);
	assert_int_equal(io->ops->flush(io), 0);
	io->ops->close(io);
	io = NULL;

	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY), 0);
	expect_at(v, disk_off, 64 * KiB, 7);
	expect_zero(v, disk_off + 64 * KiB, 4096);
	expect_zero(v, disk_off - 4096, 4096);
	vhd_close(v);

	/* Into the existing block (file offset 5 GiB + 100000) and a new
	 * block, which the library must place after the far one. */
	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDWR), 0);
	write_at(v, disk_off + 100000, 3000, 8);
	write_at(v, 7 * GiB + 1, 1000, 9);
	vhd_close(v);

	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY), 0);
	expect_at(v, disk_off, 64 * KiB, 7);
	expect_at(v, disk_off + 100000, 3000, 8);
	expect_at(v, 7 * GiB + 1, 1000, 9);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 2);
	assert_true(in.file_size > data_off + 4 * MiB);
	vhd_close(v);

	/* The bytes are where the BAT says, seen without the library's
	 * read path. */
	assert_int_equal(vhd_io_file_open(&io, img_path, 0), 0);
	assert_int_equal(io->ops->pread(io, data, 3000, data_off + 100000), 0);
	{
		uint8_t want[3000];
		pattern(want, sizeof(want), 8);
		assert_memory_equal(data, want, sizeof(want));
	}
	io->ops->close(io);
	free(data);
	expect_clean();
}

/* A UTF-8 file name with characters outside Latin-1: the Windows backend
 * converts names to UTF-16 for the wide API, POSIX passes the bytes. */
static void
test_utf8_name(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC,
				     .size = 64 * MiB };
	struct vhd *v = NULL;
	char *dot;

	(void)state;
	dot = strrchr(img_path, '.');
	assert_non_null(dot);
	snprintf(dot, sizeof(img_path) - (size_t)(dot - img_path),
		 "-\xc3\xbc\xe2\x82\xac\xe6\x97\xa5.vhd");   /* u-umlaut, euro, CJK */
	if (vhd_create(img_path, &o) != 0)
		fail_msg("create: %s", vhd_errmsg());
	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDWR), 0);
	write_at(v, 1 * MiB + 7, 777, 11);
	vhd_close(v);
	assert_int_equal(vhd_probe(img_path), 1);
	assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY), 0);
	assert_string_equal(vhd_path(v), img_path);
	expect_at(v, 1 * MiB + 7, 777, 11);
	vhd_close(v);
	expect_clean();
	/* Exclusive: a second writer is refused while the first is open. */
	{
		struct vhd *w = NULL, *w2 = NULL;
		vhd_set_lock_wait(0, NULL, NULL);
		assert_int_equal(vhd_open(&w, img_path, VHD_OPEN_RDWR), 0);
		assert_int_equal(vhd_open(&w2, img_path, VHD_OPEN_RDWR), -EBUSY);
		/* a consistent reader is kept out too (QEMU's protocol) ... */
		assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY), -EBUSY);
		/* ... one that accepts inconsistency (force-share) reads */
		assert_int_equal(vhd_open(&v, img_path, VHD_OPEN_RDONLY |
					  VHD_OPEN_FORCE_SHARE), 0);
		expect_at(v, 1 * MiB + 7, 777, 11);
		vhd_close(v);
		vhd_close(w);
		vhd_set_lock_wait(5000, NULL, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dynamic_8g, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fixed_8g, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_block_past_4g,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_utf8_name, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
