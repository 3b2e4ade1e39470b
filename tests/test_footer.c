/* test_footer.c - footer decoding and every validation rule: start from a
 * valid footer, change one field, recompute the checksum. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

static void
valid(uint8_t raw[512], uint32_t type)
{
	struct vhd_footer f;

	memset(&f, 0, sizeof(f));
	f.features = 2;
	f.version = 0x00010000;
	f.data_offset = type == VHD_TYPE_FIXED ? VHD_NO_OFFSET : 512;
	memcpy(f.creator_app, "test", 4);
	f.orig_size = f.cur_size = 10485760;
	vhd_chs(f.cur_size, &f.cylinders, &f.heads, &f.spt);
	f.type = type;
	f.uuid[0] = 1;
	vhd_footer_encode(&f, raw);
}

static void
resum(uint8_t raw[512])
{
	put_be32(raw + 64, vhd_checksum(raw, 512, 64));
}

/* Problems found in raw; *msg gets the first. */
static int
problems(const uint8_t raw[512], unsigned flags, unsigned *warn,
	 char *msg)
{
	struct vhd_problems p = { .fn = NULL };
	unsigned w = 0;
	int n = vhd_footer_check(raw, "x.vhd", 1000, flags, &w, &p);

	if (warn)
		*warn = w;
	if (msg)
		strcpy(msg, p.first.text);
	return n;
}

static void
test_valid_and_roundtrip(void **state)
{
	uint8_t raw[512], raw2[512];
	struct vhd_footer f;

	(void)state;
	for (uint32_t t = 2; t <= 4; t++) {
		valid(raw, t);
		assert_int_equal(problems(raw, 0, NULL, NULL), 0);
		vhd_footer_decode(raw, &f);
		assert_int_equal(f.type, t);
		assert_true(f.cur_size == 10485760);
		vhd_footer_encode(&f, raw2);
		assert_memory_equal(raw, raw2, 512);
	}
}

static void
expect_problem(uint8_t raw[512], const char *field)
{
	char msg[1024];

	resum(raw);
	assert_int_equal(problems(raw, 0, NULL, msg), 1);
	assert_non_null(strstr(msg, field));
	assert_non_null(strstr(msg, "x.vhd"));
	assert_non_null(strstr(msg, "1000"));      /* the offset */
	assert_non_null(strstr(msg, "expected"));
	assert_non_null(strstr(msg, "found"));
}

static void
test_each_rule(void **state)
{
	uint8_t raw[512];

	(void)state;
	valid(raw, 3); raw[0] = 'k';
	expect_problem(raw, "cookie");
	valid(raw, 3); put_be32(raw + 12, 0x00020000);
	expect_problem(raw, "format version");
	valid(raw, 3); put_be32(raw + 60, 5);
	expect_problem(raw, "disk type");
	valid(raw, 3); put_be32(raw + 60, 0);
	expect_problem(raw, "disk type");
	valid(raw, 3); put_be64(raw + 48, 10485761);
	expect_problem(raw, "current size");
	valid(raw, 3); put_be64(raw + 48, UINT64_C(1) << 52);
	expect_problem(raw, "current size");
	valid(raw, 2); put_be64(raw + 16, 512);
	expect_problem(raw, "data offset");
	valid(raw, 3); put_be64(raw + 16, 513);
	expect_problem(raw, "data offset");
	valid(raw, 3); put_be64(raw + 16, VHD_NO_OFFSET);
	expect_problem(raw, "data offset");
	valid(raw, 4); put_be64(raw + 16, 0);
	expect_problem(raw, "data offset");
}

static void
test_lenient(void **state)
{
	uint8_t raw[512];

	(void)state;
	/* Missing "reserved" feature bit: accepted. */
	valid(raw, 3); put_be32(raw + 8, 0); resum(raw);
	assert_int_equal(problems(raw, 0, NULL, NULL), 0);
	/* The spec text's 32-bit data offset for fixed disks. */
	valid(raw, 2); put_be64(raw + 16, 0xFFFFFFFFu); resum(raw);
	assert_int_equal(problems(raw, 0, NULL, NULL), 0);
	/* Minor version and sizes above 2040 GiB (blktap) are accepted. */
	valid(raw, 3); put_be32(raw + 12, 0x00010005);
	put_be64(raw + 48, VHD_MAX_DISK_SIZE + 512); resum(raw);
	assert_int_equal(problems(raw, 0, NULL, NULL), 0);
}

static void
test_checksum(void **state)
{
	uint8_t raw[512];
	unsigned w;
	char msg[1024];

	(void)state;
	valid(raw, 3);
	raw[100] = 7;                   /* stale checksum */
	assert_int_equal(problems(raw, 0, &w, msg), 1);
	assert_non_null(strstr(msg, "checksum"));
	assert_int_equal(problems(raw, VHD_OPEN_IGNORE_CHECKSUM, &w, NULL), 0);
	assert_int_equal(w, VHD_WARN_FOOTER_CHECKSUM);
	/* tapdisk's hidden byte set without updating the checksum. */
	valid(raw, 3);
	raw[85] = 1;
	assert_int_equal(problems(raw, 0, &w, NULL), 0);
	assert_int_equal(w, VHD_WARN_HIDDEN_BYTE);
	/* ...but not any other stale byte along with it. */
	raw[86] = 1;
	assert_int_equal(problems(raw, 0, &w, NULL), 1);
}

static void
test_chs(void **state)
{
	uint16_t c;
	uint8_t h, s;

	(void)state;
	vhd_chs(10485760, &c, &h, &s);          /* Windows fixture */
	assert_int_equal(c, 301);
	assert_int_equal(h, 4);
	assert_int_equal(s, 17);
	vhd_chs(VHD_MAX_DISK_SIZE, &c, &h, &s);
	assert_int_equal(h, 16);
	assert_int_equal(s, 255);
	/* qemu-img rounds 1 GiB up to 1073995776 (2080/16/63). */
	assert_true(vhd_chs_round_up(1073741824) == 1073995776);
	uint64_t r = vhd_chs_round_up(4212736);
	vhd_chs(r, &c, &h, &s);
	assert_true((uint64_t)c * h * s * 512 == r);
	for (uint64_t sz = 512; sz < (64u << 20); sz = sz * 3 + 512) {
		uint64_t x = vhd_chs_round_up(sz);
		assert_true(x >= sz);
		vhd_chs(x, &c, &h, &s);
		assert_true((uint64_t)c * h * s * 512 == x);
	}
	assert_string_equal(vhd_type_name(VHD_TYPE_DIFF), "differencing");
}

/* Footer search on open: 511-byte footers and the copy at offset 0. */
static void
test_footer_search(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 4 << 20, 0);
	struct vhd_io *c;
	struct vhd *v;
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd_open_opts oo = { sizeof oo, 0, NULL };
	size_t n;
	uint8_t *d;

	(void)state;
	assert_non_null(io);
	d = malloc(1 << 20);
	const uint8_t *src = vhd_io_mem_data(io, &n);
	memcpy(d, src, n);
	/* 511-byte footer: drop the last (reserved, zero) byte. */
	assert_int_equal(vhd_io_mem_open(&c, d, n - 1), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.warnings, VHD_WARN_FOOTER_511);
	vhd_close(v);
	/* Torn trailing footer: the copy at 0 is used. */
	d[n - 512] ^= 0xff;
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.warnings, VHD_WARN_FOOTER_FROM_COPY);
	vhd_close(v);
	/* Both bad: refused with the trailing footer's problem. */
	d[0] ^= 0xff;
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), -EBADMSG);
	assert_non_null(strstr(vhd_errmsg(), "not a VHD"));
	c->ops->close(c);
	/* Too small to be a VHD. */
	assert_int_equal(vhd_io_mem_open(&c, d, 100), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), -EBADMSG);
	c->ops->close(c);
	free(d);
	io->ops->close(io);
}

/* A fixed disk's file is exactly size + 512; no copy at 0 is used. */
static void
test_fixed_size(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_FIXED, 1 << 20, 0);
	struct vhd_io *c;
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, 0, NULL };
	size_t n;
	uint8_t *d = calloc(1, (2 << 20));

	(void)state;
	const uint8_t *src = vhd_io_mem_data(io, &n);
	memcpy(d, src, n);
	assert_int_equal(n, (1 << 20) + 512);
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), 0);
	vhd_close(v);
	/* Footer moved 512 bytes further: the file is larger than size+512. */
	memmove(d + n, d + n - 512, 512);
	memset(d + n - 512, 0, 512);
	assert_int_equal(vhd_io_mem_open(&c, d, n + 512), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), -EBADMSG);
	assert_non_null(strstr(vhd_errmsg(), "fixed"));
	c->ops->close(c);
	free(d);
	io->ops->close(io);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_and_roundtrip),
		cmocka_unit_test(test_each_rule),
		cmocka_unit_test(test_lenient),
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_chs),
		cmocka_unit_test(test_footer_search),
		cmocka_unit_test(test_fixed_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
