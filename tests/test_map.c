/* test_map.c - vhd_map on dynamic and fixed disks: runs, statuses,
 * unaligned ends, partial bitmaps of blocks other tools wrote. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

#define MB (1u << 20)

static void
test_dynamic(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 10 * MB, 0);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint64_t run;
	unsigned st;
	int d;
	uint8_t b[1000] = { 1 };

	(void)state;
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_map(v, 0, 10 * MB, &run, &st, &d), 0);
	assert_true(run == 10 * MB);
	assert_int_equal(st, VHD_MAP_ZERO);
	assert_int_equal(d, -1);
	assert_int_equal(vhd_pwrite(v, b, sizeof(b), 3 * MB), 0);
	/* Block 1 (2..4 MiB) is allocated: data, depth 0. */
	assert_int_equal(vhd_map(v, 0, 10 * MB, &run, &st, &d), 0);
	assert_true(run == 2 * MB);
	assert_int_equal(st, VHD_MAP_ZERO);
	assert_int_equal(vhd_map(v, 2 * MB + 7, 10 * MB - 2 * MB - 7, &run, &st,
				 &d), 0);
	assert_true(run == 2 * MB - 7);
	assert_int_equal(st, VHD_MAP_DATA);
	assert_int_equal(d, 0);
	assert_int_equal(vhd_map(v, 5 * MB, 100, &run, &st, NULL), 0);
	assert_true(run == 100);
	assert_int_equal(vhd_map(v, 5 * MB, 0, &run, &st, NULL), -EINVAL);
	assert_int_equal(vhd_map(v, 9 * MB, 2 * MB, &run, &st, NULL), -EINVAL);
	vhd_close(v);
}

/* A block with a partial bitmap (as Windows leaves them): clear bits read
 * as zeros and map as such; writes there set them. */
static void
test_partial_bitmap(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 4 * MB, 0), *c;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint8_t *b = malloc(2 * MB), *got = malloc(2 * MB);
	uint64_t run;
	unsigned st;
	size_t n;

	(void)state;
	memset(b, 0x33, 2 * MB);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, b, 2 * MB, 0), 0);
	assert_int_equal(vhd_flush(v), 0);     /* commits the BAT entry */
	const uint8_t *src = vhd_io_mem_data(io, &n);
	uint8_t *d = malloc(n);
	memcpy(d, src, n);
	vhd_close(v);
	/* Clear the bits of sectors 8..15 of block 0. */
	uint64_t bm = (uint64_t)get_be32(d + 1536) * 512;
	d[bm + 1] = 0;
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), 0);
	assert_int_equal(vhd_map(v, 0, 4 * MB, &run, &st, NULL), 0);
	assert_true(run == 4096);
	assert_int_equal(st, VHD_MAP_DATA);
	assert_int_equal(vhd_map(v, 4096, 4 * MB - 4096, &run, &st, NULL), 0);
	assert_true(run == 4096);
	assert_int_equal(st, VHD_MAP_ZERO);
	assert_int_equal(vhd_pread(v, got, 2 * MB, 0), 0);
	memset(b + 4096, 0, 4096);
	assert_memory_equal(got, b, 2 * MB);
	/* A partial-sector write into a clear sector: the rest is zeros. */
	assert_int_equal(vhd_pwrite(v, "xy", 2, 4096 + 100), 0);
	assert_int_equal(vhd_pread(v, got, 2 * MB, 0), 0);
	memcpy(b + 4096 + 100, "xy", 2);
	assert_memory_equal(got, b, 2 * MB);
	assert_int_equal(vhd_map(v, 4096, 512, &run, &st, NULL), 0);
	assert_int_equal(st, VHD_MAP_DATA);
	vhd_close(v);
	free(d);
	free(b);
	free(got);
}

static void
test_fixed(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_FIXED, 3 * MB, 0);
	struct vhd_open_opts oo = { sizeof oo, 0, NULL };
	struct vhd *v;
	uint64_t run;
	unsigned st;
	int d;

	(void)state;
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_map(v, 1, 3 * MB - 1, &run, &st, &d), 0);
	assert_true(run == 3 * MB - 1);
	assert_int_equal(st, VHD_MAP_DATA);
	assert_int_equal(d, 0);
	vhd_close(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic),
		cmocka_unit_test(test_partial_bitmap),
		cmocka_unit_test(test_fixed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
