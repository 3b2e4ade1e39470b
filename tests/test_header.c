/* test_header.c - dynamic header validation: start from a valid header,
 * change one field, recompute the checksum. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

#define SIZE (8u << 20)
#define FILE_SIZE (1u << 20)

static void
valid(uint8_t h[1024])
{
	memset(h, 0, 1024);
	memcpy(h, "cxsparse", 8);
	put_be64(h + 8, VHD_NO_OFFSET);
	put_be64(h + 16, 1536);
	put_be32(h + 24, 0x00010000);
	put_be32(h + 28, 4);
	put_be32(h + 32, 2u << 20);
	put_be32(h + 36, vhd_checksum(h, 1024, 36));
}

static int
check(uint8_t h[1024], unsigned flags, unsigned *warn, char *msg, int resum)
{
	struct vhd_problems p = { .fn = NULL };
	unsigned w = 0;

	if (resum)
		put_be32(h + 36, vhd_checksum(h, 1024, 36));
	int n = vhd_header_check(h, "x.vhd", 512, SIZE, FILE_SIZE, flags, &w,
				 &p);
	if (warn)
		*warn = w;
	if (msg)
		strcpy(msg, p.first.text);
	return n;
}

static void
expect(uint8_t h[1024], const char *field)
{
	char msg[1024];

	assert_int_equal(check(h, 0, NULL, msg, 1), 1);
	assert_non_null(strstr(msg, field));
	assert_non_null(strstr(msg, "x.vhd"));
	assert_non_null(strstr(msg, "expected"));
}

static void
test_rules(void **state)
{
	uint8_t h[1024];
	unsigned w;

	(void)state;
	valid(h);
	assert_int_equal(check(h, 0, NULL, NULL, 0), 0);
	valid(h); h[2] = 'X'; expect(h, "cookie");
	valid(h); put_be32(h + 24, 0x00020000); expect(h, "header version");
	valid(h); put_be32(h + 32, 3u << 20); expect(h, "block size");
	valid(h); put_be32(h + 32, 256); expect(h, "block size");
	valid(h); put_be32(h + 32, 1u << 31); expect(h, "block size");
	valid(h); put_be32(h + 28, 3); expect(h, "max table entries");
	valid(h); put_be64(h + 16, FILE_SIZE); expect(h, "table offset");
	valid(h); put_be64(h + 16, 1024); expect(h, "table offset");
	valid(h); put_be64(h + 16, 0); expect(h, "table offset");
	/* A BAT far larger than the file. */
	valid(h); put_be32(h + 28, 0x40000000); expect(h, "table offset");
	/* More entries than needed (blktap preallocation) are fine. */
	valid(h); put_be32(h + 28, 32);
	assert_int_equal(check(h, 0, NULL, NULL, 1), 0);
	/* Checksum. */
	valid(h); h[600] = 1;
	assert_int_equal(check(h, 0, NULL, NULL, 0), 1);
	assert_int_equal(check(h, VHD_OPEN_IGNORE_CHECKSUM, &w, NULL, 0), 0);
	assert_int_equal(w, VHD_WARN_HEADER_CHECKSUM);
}

static void
test_decode(void **state)
{
	uint8_t h[1024];
	struct vhd_header d;

	(void)state;
	valid(h);
	memset(h + 40, 0xab, 16);
	put_be32(h + 56, 1234);
	put_be32(h + 576, VHD_PLAT_W2KU);
	put_be32(h + 580, 512);
	put_be32(h + 584, 20);
	put_be64(h + 592, 4096);
	vhd_header_decode(h, &d);
	assert_true(d.table_offset == 1536);
	assert_int_equal(d.max_entries, 4);
	assert_int_equal(d.block_size, 2u << 20);
	assert_int_equal(d.parent_id[15], 0xab);
	assert_int_equal(d.parent_ts, 1234);
	assert_int_equal(d.loc[0].code, VHD_PLAT_W2KU);
	assert_int_equal(d.loc[0].length, 20);
	assert_true(d.loc[0].offset == 4096);
	assert_int_equal(vhd_bitmap_size(2u << 20), 512);
	assert_int_equal(vhd_bitmap_size(512), 512);
	assert_int_equal(vhd_bitmap_size(256u << 20), 65536);
}

/* Header problems found on open are refused with the message. */
static void
test_open_refuses(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, SIZE, 0), *c;
	struct vhd_open_opts oo = { sizeof oo, 0, NULL };
	struct vhd *v;
	size_t n;
	const uint8_t *src = vhd_io_mem_data(io, &n);
	uint8_t *d = malloc(n);

	(void)state;
	memcpy(d, src, n);
	put_be32(d + 512 + 32, 12345);
	put_be32(d + 512 + 36, vhd_checksum(d + 512, 1024, 36));
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), -EBADMSG);
	assert_non_null(strstr(vhd_errmsg(), "block size"));
	c->ops->close(c);
	/* Header beyond the file. */
	memcpy(d, src, n);
	put_be64(d + 16, n);
	put_be32(d + 64, vhd_checksum(d, 512, 64));
	memcpy(d + n - 512, d, 512);
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&v, c, &oo), -EBADMSG);
	assert_non_null(strstr(vhd_errmsg(), "data offset"));
	c->ops->close(c);
	free(d);
	io->ops->close(io);
}

/* A damaged cookie is shown escaped: no raw bytes reach a terminal. */
static void
test_cookie_escaped(void **state)
{
	uint8_t h[1024];
	char msg[1024];

	(void)state;
	valid(h);
	memcpy(h, "i\xef\xbf\xbd" "9\x01'\\", 8);
	assert_int_equal(check(h, 0, NULL, msg, 1), 1);
	assert_non_null(strstr(msg, "found 'i\\xef\\xbf\\xbd9\\x01\\x27\\x5c'"));
	for (const char *c = msg; *c; c++)
		assert_true(*c >= 0x20 && *c < 0x7f);
	/* The footer's cookie too. */
	uint8_t f[512];
	struct vhd_problems p = { .fn = NULL };
	unsigned w = 0;
	memset(f, 0, sizeof(f));
	memcpy(f, "\xffonectix", 8);
	assert_int_equal(vhd_footer_check(f, "x.vhd", 0, 0, &w, &p), 1);
	assert_non_null(strstr(p.first.text, "found '\\xffonectix'"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_open_refuses),
		cmocka_unit_test(test_cookie_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
