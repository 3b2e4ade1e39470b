/* test_check.c - vhd_check finds each kind of damage, counts only real
 * problems (leaked space is a warning), and never writes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

static char *dir;
static int nprob, nwarn;
static char last[1200];

static void
rep(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "warning: ", 9) == 0)
		nwarn++;
	else
		nprob++;
	snprintf(last, sizeof(last), "%s", msg);
}

/* A dynamic image with two blocks written, as bytes. */
static uint8_t *
image(size_t *n)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 4u << 20, 0);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint8_t b[4096];

	memset(b, 7, sizeof(b));
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, b, sizeof(b), 0), 0);
	assert_int_equal(vhd_pwrite(v, b, sizeof(b), 3u << 20), 0);
	assert_int_equal(vhd_flush(v), 0);     /* commits the BAT entries */
	const uint8_t *d = vhd_io_mem_data(io, n);
	uint8_t *c = malloc(*n + 4096);
	memcpy(c, d, *n);
	vhd_close(v);
	return c;
}

static int
check_bytes(const uint8_t *d, size_t n)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof(p), "%s/x.vhd", dir);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
	nprob = nwarn = 0;
	int r = vhd_check(p, 0, rep, NULL);
	/* Never writes: the file is unchanged. */
	uint8_t *back = malloc(n);
	f = fopen(p, "rb");
	assert_int_equal(fread(back, 1, n, f), n);
	fclose(f);
	assert_memory_equal(back, d, n);
	free(back);
	return r;
}

static void
test_clean(void **state)
{
	size_t n;
	uint8_t *d = image(&n);

	(void)state;
	assert_int_equal(check_bytes(d, n), 0);
	assert_int_equal(nprob, 0);
	assert_int_equal(nwarn, 0);
	free(d);
}

static void
test_damage(void **state)
{
	size_t n;
	uint8_t *d = image(&n), *o = malloc(n);

	(void)state;
	memcpy(o, d, n);
	d[n - 512 + 100] ^= 1;                       /* trailing footer sum */
	assert_int_equal(check_bytes(d, n), 1);
	assert_non_null(strstr(last, "checksum"));
	d[100] ^= 1;                                 /* and the copy */
	assert_int_equal(check_bytes(d, n), 2);
	memcpy(d, o, n);
	d[512 + 700] ^= 1;                           /* header sum */
	assert_int_equal(check_bytes(d, n), 1);
	assert_non_null(strstr(last, "dynamic header"));
	memcpy(d, o, n);
	put_be32(d + 40, 77);                        /* copy differs */
	put_be32(d + 64, vhd_checksum(d, 512, 64));
	assert_int_equal(check_bytes(d, n), 1);
	assert_non_null(strstr(last, "differs"));
	memcpy(d, o, n);
	put_be32(d + 1536 + 4, get_be32(d + 1536));  /* duplicate block */
	assert_true(check_bytes(d, n) >= 1);
	free(o);
	free(d);
}

/* Space after the last block (a crash before the BAT update) is only a
 * warning. */
static void
test_leak(void **state)
{
	size_t n;
	uint8_t *d = image(&n);

	(void)state;
	memmove(d + n + 4096 - 512, d + n - 512, 512);
	memset(d + n - 512, 0xaa, 4096);
	assert_int_equal(check_bytes(d, n + 4096), 0);
	assert_int_equal(nprob, 0);
	assert_int_equal(nwarn, 1);
	assert_non_null(strstr(last, "leaked"));
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_leak),
	};
	int r;

	dir = tu_tmpdir();
	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_rmrf(dir);
	free(dir);
	return r;
}
