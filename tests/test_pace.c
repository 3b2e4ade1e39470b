/* test_pace.c - writeback pacing of the POSIX file backend
 * (VHD_OPEN_PACE_WRITES): bulk writes through a file image ask the kernel
 * to start writeback (sync_file_range(SYNC_FILE_RANGE_WRITE) from a helper
 * thread, about once per 8 MiB of large writes, never a waiting or durable
 * variant), small random writes never do, nor does an image opened
 * without the flag, and the bytes read back the same in every case.
 *
 * Writes that start or end inside a page ask for those pages first
 * (posix_fadvise WILLNEED, only the partial edge pages, one call when
 * they touch): large writes always, small ones for a while after one of
 * them was slow (the file is not in the page cache), whether the image
 * was opened with the flag or not.  A 2 MiB region of the file that
 * takes 16 slow partial-page writes is then asked for whole.
 *
 * On Linux the test defines sync_file_range and posix_fadvise itself: the
 * static library's calls then land here instead of in the C library, and
 * are counted; the backend's clock for timing writes is the test's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib_testutil.h"
#include "vhd_test.h"

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

/* The clock the file backend times writes with: a microsecond per
 * reading, a millisecond while `slow` is set, so a write's time is chosen
 * here, not by the machine's load (as a write into an uncached page
 * takes long). */
static int slow;
static uint64_t fake_ns = 1000000000;

static uint64_t
fake_clock(void)
{
	fake_ns += slow ? 1000000 : 1000;
	return fake_ns;
}

/* The posix_fadvise calls since the last reset (single-threaded). */
static struct { off_t off, len; int advice; } adv[8];
static int nadv;

int
posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	(void)fd;
	if (nadv < (int)(sizeof adv / sizeof adv[0])) {
		adv[nadv].off = off;
		adv[nadv].len = len;
		adv[nadv].advice = advice;
	}
	nadv++;
	return 0;
}
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

/* Writes into a fixed image (data at file offset 0), with the model. */
static void
put(struct img *m, uint8_t *data, uint32_t off, uint32_t len, uint32_t *seed)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	tu_fill(buf, len, seed);
	memcpy(data + off, buf, len);
#ifdef __linux__
	nadv = 0;
#endif
	assert_int_equal(vhd_pwrite(m->v, buf, len, off), 0);
	free(buf);
}

#ifdef __linux__
/* Checks the calls of the last put: want[k] = {offset, length}. */
static void
expect_adv(int n, const off_t (*want)[2])
{
	assert_int_equal(nadv, n);
	for (int k = 0; k < n; k++) {
		assert_int_equal(adv[k].advice, POSIX_FADV_WILLNEED);
		assert_int_equal(adv[k].off, want[k][0]);
		assert_int_equal(adv[k].len, want[k][1]);
	}
}
#endif

/* Which pages a partial-page write asks for, and when. */
static void
test_edge_pages(void **state)
{
	static const struct {
		uint32_t off, len;
		int n;
		off_t want[2][2];
	} cases[] = {
		{ 512, 4096, 1, { { 0, 8192 } } },              /* QEMU layout */
		{ 8192, 4096, 0, { { 0, 0 } } },                /* whole page */
		{ 17408, 1024, 1, { { 16384, 4096 } } },        /* inside one */
		{ 40960 + 512, 8192, 2, { { 40960, 4096 }, { 49152, 4096 } } },
		{ 65536, 4096 + 512, 1, { { 69632, 4096 } } },  /* tail only */
	};
#ifdef __linux__
	static const off_t big[2][2] = { { 73728, 4096 },
	                                 { 73728 + (1 << 20), 4096 } };
#endif
	struct img m;
	uint32_t seed = 5;
	uint8_t *data = calloc(1, DISK);
	int asked = 0;

	(void)state;
	assert_non_null(data);
	img_new(&m, VHD_TYPE_FIXED, 0);
#ifdef __linux__
	vhd_test_edge_clock(fake_clock);
#endif
	/* Fast (cached) small writes ask for nothing; a large one always
	 * asks for its two edges. */
	put(&m, data, 512, 4096, &seed);
#ifdef __linux__
	expect_adv(0, NULL);
#endif
	put(&m, data, 73728 + 3584, 1u << 20, &seed);
#ifdef __linux__
	expect_adv(2, big);
	/* One slow small write: the file is cold, the next ones ask. */
	slow = 1;
	put(&m, data, 512, 4096, &seed);
	slow = 0;
	expect_adv(0, NULL);
#endif
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		put(&m, data, cases[i].off, cases[i].len, &seed);
#ifdef __linux__
		expect_adv(cases[i].n, cases[i].want);
		asked += cases[i].n > 0;
#endif
	}
	/* 256 partial writes ask in all; then one goes unaided, fast: the
	 * file is no longer taken for cold. */
	for (uint32_t i = 0; i < 300; i++) {
		put(&m, data, (2u << 20) + i * 8192 + 512, 4096, &seed);
#ifdef __linux__
		asked += nadv;
#endif
	}
#ifdef __linux__
	assert_int_equal(asked, 256);
#else
	(void)asked;
#endif
	img_verify_free(&m, data);
#ifdef __linux__
	vhd_test_edge_clock(NULL);
#endif
	free(data);
}

/* Slow 4 KiB partial-page writes at a region's offset k (fixed image:
 * disk offsets are file offsets); returns whether the last one asked for
 * the whole 2 MiB region. */
#define REGION (2u << 20)
#ifdef __linux__
static int
slow_put(struct vhd *v, uint64_t region, uint32_t k)
{
	uint8_t buf[4096];
	int whole = 0;

	memset(buf, (int)(region + k), sizeof buf);
	nadv = 0;
	slow = 1;
	assert_int_equal(vhd_pwrite(v, buf, sizeof buf,
				    region * REGION + k * 8192 + 512), 0);
	slow = 0;
	for (int i = 0; i < nadv && i < (int)(sizeof adv / sizeof adv[0]); i++)
		if (adv[i].off == (off_t)(region * REGION) &&
		    adv[i].len == (off_t)REGION) {
			assert_int_equal(adv[i].advice, POSIX_FADV_WILLNEED);
			whole++;
		}
	assert_in_range(whole, 0, 1);
	return whole;
}
#endif

/* A region of the file that takes its 16th slow partial-page write is
 * asked for whole, once per 16; regions that share a slot of the table
 * (1024 slots, io_file.c's HEAT_SLOTS) never add up each other's writes;
 * fast (cached) writes never count. */
static void
test_hot_region(void **state)
{
#ifdef __linux__
	const uint64_t slots = 1024;
	struct vhd_create_opts co = { sizeof co, VHD_TYPE_FIXED,
				      (slots + 8) * REGION, 0, 0, NULL, NULL };
	char *dir = tu_tmpdir(), path[512];
	struct vhd *v;
	uint8_t got[4096];

	(void)state;
	snprintf(path, sizeof path, "%s/hot.vhd", dir);
	assert_int_equal(vhd_create(path, &co), 0);
	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDWR), 0);
	vhd_test_edge_clock(fake_clock);
	/* 15 slow writes into each of regions 3 and 3 + 1024 (one slot),
	 * interleaved: 30 in the slot, none asks. */
	for (uint32_t k = 0; k < 15; k++) {
		assert_false(slow_put(v, 3, k));
		assert_false(slow_put(v, 3 + slots, k));
	}
	/* Region 5: the 16th asks, then 15 more do not, the 32nd does. */
	for (uint32_t k = 0; k < 32; k++)
		assert_int_equal(slow_put(v, 5, k), k == 15 || k == 31);
	/* Region 6: 100 fast writes between slow ones do not count. */
	for (uint32_t k = 0; k < 15; k++)
		assert_false(slow_put(v, 6, k));
	for (uint32_t k = 0; k < 100; k++) {
		memset(got, 1, sizeof got);
		nadv = 0;
		assert_int_equal(vhd_pwrite(v, got, sizeof got,
					    6 * REGION + k * 4096 + 1024), 0);
		for (int i = 0; i < nadv; i++)
			assert_int_not_equal(adv[i].len, (off_t)REGION);
	}
	assert_true(slow_put(v, 6, 200));
	vhd_test_edge_clock(NULL);
	/* The data is what was written last. */
	assert_int_equal(vhd_pread(v, got, sizeof got,
				   (3 + slots) * REGION + 14 * 8192 + 512), 0);
	for (size_t i = 0; i < sizeof got; i++)
		assert_int_equal(got[i], (uint8_t)(3 + slots + 14));
	vhd_close(v);
	tu_rmrf(dir);
	free(dir);
#else
	(void)state;
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_bulk),
		cmocka_unit_test(test_fixed_bulk),
		cmocka_unit_test(test_not_asked),
		cmocka_unit_test(test_small_writes_do_not),
		cmocka_unit_test(test_edge_pages),
		cmocka_unit_test(test_hot_region),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
