/*
 * test_vhdx.c - the VHDX driver through the public calls, on the fuzz
 * seed tests/fuzz/seeds/open/vhdx-log.vhdx (a 4 MiB VHDX written by
 * make-seeds.py from the specification: an 8 MiB disk of 1 MiB blocks,
 * 512-byte logical and 4096-byte physical sectors, a log entry to replay)
 * held in a memory backend, one field changed per case.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "vhdx.h"
#include "lib_testutil.h"
#include "lib_io_fault.h"

#define MIB (1u << 20)

static uint8_t *seed;
static size_t seed_len;

static int
load_seed(void **state)
{
	const char *top = getenv("TOP");
	char path[4096];

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/fuzz/seeds/open/vhdx-log.vhdx",
		 top ? top : ".");
	seed = tu_slurp(path, &seed_len);
	return seed && seed_len == 4 * MIB ? 0 : -1;
}

static int
free_seed(void **state)
{
	(void)state;
	free(seed);
	return 0;
}

/* Opens a copy of img[0..n) read-only; returns vhd_open_io's result. */
static int
open_mem(struct vhd **v, const uint8_t *img, size_t n, struct vhd_io **io)
{
	struct vhd_open_opts o = { sizeof o, VHD_OPEN_RDONLY, NULL };
	int r;

	assert_int_equal(vhd_io_mem_open(io, img, n), 0);
	r = vhd_open_io(v, *io, &o);
	if (r < 0)
		(*io)->ops->close(*io);
	return r;
}

/* Recomputes the CRC-32C at off + 4 of the n-byte structure at off. */
static void
reseal(uint8_t *img, size_t off, size_t n)
{
	put_le32(img + off + 4, vhdx_crc32c_skip(img + off, n, 4));
}

static void
test_crc32c_vector(void **state)
{
	(void)state;
	/* The check value of CRC-32C (RFC 3720, iSCSI). */
	assert_int_equal(vhdx_crc32c_update(0, (const uint8_t *)"123456789",
					    9), 0xE3069283u);
}

static void
test_seed_reads(void **state)
{
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd_io *io;
	struct vhd *v;
	uint8_t *buf = malloc(8 * MIB);
	uint64_t run;
	unsigned st;
	size_t n;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(open_mem(&v, seed, seed_len, &io), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.format, VHD_FORMAT_VHDX);
	assert_int_equal(in.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(in.virtual_size, 8 * MIB);
	assert_int_equal(in.block_size, MIB);
	assert_int_equal(in.logical_sector_size, 512);
	assert_int_equal(in.physical_sector_size, 4096);
	assert_int_equal(in.disk_id[0], 0x42);
	assert_true(in.warnings & VHD_WARN_LOG_REPLAYED);
	memset(buf, 0xee, 8 * MIB);
	assert_int_equal(vhd_pread(v, buf, 8 * MIB, 0), 0);
	for (size_t i = 0; i < 8 * MIB; i++)
		if (buf[i])
			fail_msg("byte %zu is %u", i, buf[i]);
	assert_int_equal(vhd_map(v, 0, 8 * MIB, &run, &st, NULL), 0);
	assert_int_equal(run, 8 * MIB);
	assert_int_equal(st, VHD_MAP_ZERO);
	assert_int_equal(vhd_pread(v, buf, 1, 8 * MIB), -EINVAL);
	/* The replay happened in memory: the backend's bytes are the seed. */
	assert_memory_equal(vhd_io_mem_data(io, &n), seed, seed_len);
	vhd_close(v);
	free(buf);
}

/* A read-write open writes the replayed log back and clears it from the
 * header (sequence + 1): the file then reads the same disk without a
 * replay, and a write lands. */
static void
test_rdwr_replays(void **state)
{
	struct vhd_open_opts o = { sizeof o, VHD_OPEN_RDWR, NULL };
	static const uint8_t zero16[16];
	struct vhd_io *mem, *io2;
	struct vhd *v;
	uint8_t *buf = malloc(8 * MIB), sec[512];
	size_t n;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(vhd_io_mem_open(&mem, seed, seed_len), 0);
	assert_int_equal(vhd_open_io(&v, fault_io_wrap(mem, FAULT_NONE, 0),
				     &o), 0);
	assert_true(v->warnings & VHD_WARN_LOG_REPLAYED);
	memset(sec, 0x3c, sizeof(sec));
	assert_int_equal(vhd_pwrite(v, sec, sizeof(sec), 5 * MIB + 512), 0);
	vhd_close(v);
	const uint8_t *d = vhd_io_mem_data(mem, &n);
	uint64_t s1 = get_le64(d + 64 * 1024 + 8);
	uint64_t s2 = get_le64(d + 128 * 1024 + 8);
	const uint8_t *h = d + (s2 > s1 ? 128 : 64) * 1024;
	assert_true((s1 > s2 ? s1 : s2) > get_le64(seed + 64 * 1024 + 8) &&
		    (s1 > s2 ? s1 : s2) > get_le64(seed + 128 * 1024 + 8));
	assert_memory_equal(h + 48, zero16, 16);        /* no log */
	assert_int_equal(open_mem(&v, d, n, &io2), 0);
	assert_int_equal(v->warnings & VHD_WARN_LOG_REPLAYED, 0);
	assert_int_equal(vhd_pread(v, buf, 8 * MIB, 0), 0);
	for (size_t i = 0; i < 8 * MIB; i++)
		if (buf[i] != (i >= 5 * MIB + 512 && i < 5 * MIB + 1024 ?
			       0x3c : 0))
			fail_msg("byte %zu is %u", i, buf[i]);
	vhd_close(v);
	mem->ops->close(mem);
	free(buf);
}

/* One damaged header is tolerated, both are refused, naming both. */
static void
test_headers(void **state)
{
	uint8_t *img = malloc(seed_len);
	struct vhd_io *io;
	struct vhd *v;

	(void)state;
	assert_non_null(img);
	memcpy(img, seed, seed_len);
	img[64 * 1024 + 200] ^= 1;              /* header 1: checksum fails */
	assert_int_equal(open_mem(&v, img, seed_len, &io), 0);
	vhd_close(v);
	img[128 * 1024 + 66] = 2;               /* header 2: version 2 */
	reseal(img, 128 * 1024, 4096);
	assert_int_equal(open_mem(&v, img, seed_len, &io), -EBADMSG);
	assert_non_null(strstr(vhd_errmsg(), "header 1 at offset 65536: "
			       "checksum"));
	assert_non_null(strstr(vhd_errmsg(), "header 2: version at offset "
			       "131138: expected 1, found 2"));
	free(img);
}

/* Metadata fields out of range, each refused with the value found. */
static void
test_metadata(void **state)
{
	static const struct {
		size_t off;             /* in the seed's metadata region */
		uint32_t value;
		const char *msg;
	} cases[] = {
		{ 64 * 1024, 3 * MIB, "block size at offset 3211264: expected "
		  "a power of two from 1 MiB to 256 MiB, found 3145728" },
		{ 64 * 1024, 512 * MIB, "found 536870912" },
		{ 64 * 1024 + 4, 4, "reserved flags" },
		{ 64 * 1024 + 4096 * 3, 1024, "logical sector size" },
		{ 64 * 1024 + 4096 * 4, 0, "physical sector size" },
		{ 64 * 1024 + 4096, 1000, "virtual disk size" },
	};
	uint8_t *img = malloc(seed_len);

	(void)state;
	assert_non_null(img);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vhd_io *io;
		struct vhd *v;

		memcpy(img, seed, seed_len);
		put_le32(img + 3 * MIB + cases[i].off, cases[i].value);
		assert_int_equal(open_mem(&v, img, seed_len, &io), -EBADMSG);
		if (!strstr(vhd_errmsg(), cases[i].msg))
			fail_msg("case %zu: %s", i, vhd_errmsg());
	}
	free(img);
}

/* A log entry whose checksum fails is not part of any sequence: nothing
 * is replayed, and the image still opens. */
static void
test_log_entry_checksum(void **state)
{
	struct vhd_info in = { .struct_size = sizeof in };
	uint8_t *img = malloc(seed_len);
	struct vhd_io *io;
	struct vhd *v;

	(void)state;
	assert_non_null(img);
	memcpy(img, seed, seed_len);
	img[MIB + 4096 + 100] ^= 1;             /* its data sector */
	assert_int_equal(open_mem(&v, img, seed_len, &io), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_false(in.warnings & VHD_WARN_LOG_REPLAYED);
	vhd_close(v);
	free(img);
}

/* Every truncation of the seed is refused as damaged (the regions end at
 * 4 MiB), never anything else, never a crash. */
static void
test_truncations(void **state)
{
	(void)state;
	for (size_t n = 0; n < seed_len; n += 4096 * 7) {
		struct vhd_io *io;
		struct vhd *v;
		int r = open_mem(&v, seed, n, &io);

		if (r != -EBADMSG)
			fail_msg("%zu bytes: %d (%s)", n, r, vhd_errmsg());
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vector),
		cmocka_unit_test(test_seed_reads),
		cmocka_unit_test(test_rdwr_replays),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_log_entry_checksum),
		cmocka_unit_test(test_truncations),
	};

	return cmocka_run_group_tests(tests, load_seed, free_seed);
}
