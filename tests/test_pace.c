/* test_pace.c - writeback pacing of the POSIX file backend
 * (VHD_OPEN_PACE_WRITES): bulk writes through a file image ask the kernel
 * to start writeback (sync_file_range(SYNC_FILE_RANGE_WRITE) from a helper
 * thread, about once per 8 MiB of large writes, never a waiting or durable
 * variant), small random writes never do, nor does an image opened
 * without the flag, and the bytes read back the same in every case.
 *
 * On Linux the test defines sync_file_range itself: the static library's
 * call then lands here instead of in the C library, and is counted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib_testutil.h"

#define DISK  (64u << 20)
#define CHUNK (1u << 20)

#ifdef __linux__
#include <stdatomic.h>
static atomic_int calls, bad_flags;

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	(void)fd; (void)off; (void)n;
	atomic_fetch_add(&calls, 1);
	if (flags != SYNC_FILE_RANGE_WRITE)
		atomic_fetch_add(&bad_flags, 1);
	return 0;
}
#define RESET() (atomic_store(&calls, 0), atomic_store(&bad_flags, 0))
#endif

struct img {
	char *dir, path[512];
	struct vhd *v;
};

static void
img_new(struct img *m, enum vhd_type type, unsigned flags)
{
	struct vhd_create_opts co = { sizeof co, type, DISK, 0, 0, NULL, NULL };
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR | flags, NULL };

	m->dir = tu_tmpdir();
	snprintf(m->path, sizeof m->path, "%s/p.vhd", m->dir);
	assert_int_equal(vhd_create(m->path, &co), 0);
#ifdef __linux__
	RESET();
#endif
	assert_int_equal(vhd_open_opts(&m->v, m->path, &oo), 0);
}

/* Flushes and closes (which ends the helper thread), then compares the
 * image, opened again, with what was written. */
static void
img_verify_free(struct img *m, const uint8_t *want)
{
	uint8_t *got = malloc(DISK);

	assert_non_null(got);
	assert_int_equal(vhd_flush(m->v), 0);
	vhd_close(m->v);
	assert_int_equal(vhd_open(&m->v, m->path, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(m->v, got, DISK, 0), 0);
	assert_memory_equal(got, want, DISK);
	vhd_close(m->v);
	tu_rmrf(m->dir);
	free(m->dir);
	free(got);
}

/* 64 MiB in 1 MiB writes; returns the sync_file_range calls made. */
static int
bulk(enum vhd_type type, unsigned flags)
{
	struct img m;
	uint32_t seed = 7;
	uint8_t *data = malloc(DISK);
	int n = 0;

	assert_non_null(data);
	tu_fill(data, DISK, &seed);
	img_new(&m, type, flags);
	for (uint32_t off = 0; off < DISK; off += CHUNK)
		assert_int_equal(vhd_pwrite(m.v, data + off, CHUNK, off), 0);
	img_verify_free(&m, data);
#ifdef __linux__
	n = atomic_load(&calls);
	assert_int_equal(atomic_load(&bad_flags), 0);
#endif
	free(data);
	return n;
}

/* One request per 8 MiB at most (the thread merges requests that arrive
 * while it works), at least one. */
static void
expect_paced(enum vhd_type type)
{
	int n = bulk(type, VHD_OPEN_PACE_WRITES);
#ifdef __linux__
	assert_in_range(n, 1, DISK / (8u << 20) + 1);
#else
	(void)n;
#endif
}

static void
test_dynamic_bulk(void **state)
{
	(void)state;
	expect_paced(VHD_TYPE_DYNAMIC);
}

static void
test_fixed_bulk(void **state)
{
	(void)state;
	expect_paced(VHD_TYPE_FIXED);
}

/* Without the flag nothing is paced. */
static void
test_not_asked(void **state)
{
	(void)state;
	assert_int_equal(bulk(VHD_TYPE_DYNAMIC, 0), 0);
}

/* 4 KiB writes, as many bytes as the bulk test: none start writeback
 * (their pages are often written again before the kernel's own
 * writeback; starting it early would only cost the disk). */
static void
test_small_writes_do_not(void **state)
{
	struct img m;
	uint32_t seed = 11;
	uint8_t *data = calloc(1, DISK), buf[4096];

	(void)state;
	assert_non_null(data);
	img_new(&m, VHD_TYPE_DYNAMIC, VHD_OPEN_PACE_WRITES);
	for (int i = 0; i < (int)(DISK / sizeof buf); i++) {
		uint32_t off = tu_rand(&seed) % (DISK / sizeof buf) * sizeof buf;
		tu_fill(buf, sizeof buf, &seed);
		memcpy(data + off, buf, sizeof buf);
		assert_int_equal(vhd_pwrite(m.v, buf, sizeof buf, off), 0);
	}
	img_verify_free(&m, data);
#ifdef __linux__
	assert_int_equal(atomic_load(&calls), 0);
#endif
	free(data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_bulk),
		cmocka_unit_test(test_fixed_bulk),
		cmocka_unit_test(test_not_asked),
		cmocka_unit_test(test_small_writes_do_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
