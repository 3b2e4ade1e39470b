/* test_repair.c - vhd_repair: restores a missing or torn trailing footer
 * from the copy (byte for byte the image before the damage), a damaged
 * copy from the trailing footer, cuts leaked space (data intact, check
 * then clean without warnings), refuses to guess (header checksum, both
 * footers bad, BAT damage: file unchanged), changes nothing on valid
 * images, and never runs under a writer (EBUSY). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_testutil.h"

static char *dir;
static const char *top;

static void
copy_file(const char *from, const char *to)
{
	size_t n;
	uint8_t *p = tu_slurp(from, &n);

	tu_spill(to, p, n);
	free(p);
}

struct lines {
	int fixes, refusals, problems, warnings;
	char last[1024];
};

static void
on_repair(void *arg, const char *msg)
{
	struct lines *l = arg;

	if (strncmp(msg, "repaired: ", 10) == 0)
		l->fixes++;
	else if (strncmp(msg, "not repaired: ", 14) == 0)
		l->refusals++;
	else
		fail_msg("unexpected repair line: %s", msg);
	snprintf(l->last, sizeof(l->last), "%s", msg);
}

static void
on_check(void *arg, const char *msg)
{
	struct lines *l = arg;

	if (strncmp(msg, "warning: ", 9) == 0)
		l->warnings++;
	else
		l->problems++;
}

static int
files_equal(const char *a, const char *b)
{
	size_t na, nb;
	uint8_t *pa = tu_slurp(a, &na), *pb = tu_slurp(b, &nb);
	int eq = na == nb && memcmp(pa, pb, na) == 0;

	free(pa);
	free(pb);
	return eq;
}

static char *
fixture(const char *sub, const char *name)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/fixtures/%s/%s", top, sub, name);
	return buf;
}

static char *
scratch(const char *name)
{
	static char buf[2][4096];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

/* Torn or missing trailing footers come back byte for byte. */
static void
test_trailing_footer(void **state)
{
	const char *names[] = { "no-trailing-footer.vhd",
				"zeroed-trailing-footer.vhd" };
	(void)state;
	for (int i = 0; i < 2; i++) {
		char *p = scratch("t.vhd");
		struct lines l = { 0 };
		copy_file(fixture("valid", names[i]), p);
		assert_true(vhd_check(p, 0, on_check, &l) > 0);
		l = (struct lines){ 0 };
		assert_int_equal(vhd_repair(p, on_repair, &l), 1);
		assert_int_equal(l.fixes, 1);
		assert_int_equal(l.refusals, 0);
		assert_true(files_equal(p, fixture("valid", "dyn-base.vhd")));
		l = (struct lines){ 0 };
		assert_int_equal(vhd_check(p, 0, on_check, &l), 0);
		assert_int_equal(l.warnings, 0);
		/* a second repair has nothing left to do */
		l = (struct lines){ 0 };
		assert_int_equal(vhd_repair(p, on_repair, &l), 0);
		unlink(p);
	}
}

/* A dynamic image with data, on a file; returns its bytes. */
static uint8_t *
make_image(const char *p, size_t *n, uint8_t *data, size_t dn)
{
	struct vhd_create_opts o = { sizeof o,
				     VHD_TYPE_DYNAMIC, 4u << 20, 64u << 10, 0,
				     NULL, NULL };
	struct vhd *v;
	uint32_t seed = 7;

	unlink(p);
	assert_int_equal(vhd_create(p, &o), 0);
	assert_int_equal(vhd_open(&v, p, VHD_OPEN_RDWR), 0);
	tu_fill(data, dn, &seed);
	assert_int_equal(vhd_pwrite(v, data, dn, 100000), 0);
	assert_int_equal(vhd_pwrite(v, data, 1000, 3u << 20), 0);
	vhd_close(v);
	return tu_slurp(p, n);
}

static void
expect_data(const char *p, const uint8_t *data, size_t dn)
{
	struct vhd *v;
	uint8_t *got = malloc(dn);

	assert_non_null(got);
	assert_int_equal(vhd_open(&v, p, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(v, got, dn, 100000), 0);
	assert_memory_equal(got, data, dn);
	assert_int_equal(vhd_pread(v, got, 1000, 3u << 20), 0);
	assert_memory_equal(got, data, 1000);
	vhd_close(v);
	free(got);
}

/* Leaked space after the last block (a crash between a block's data and
 * its BAT entry): the footer moves down and the file is cut. */
static void
test_leak(void **state)
{
	static uint8_t data[200000];
	char *p = scratch("leak.vhd");
	size_t n;
	uint8_t *img = make_image(p, &n, data, sizeof(data));
	struct lines l = { 0 };
	(void)state;

	/* 3 leaked blocks' worth of garbage, then the footer */
	size_t big = n + 3 * (64u << 10);
	uint8_t *x = malloc(big);
	assert_non_null(x);
	memcpy(x, img, n - 512);
	memset(x + n - 512, 0xa5, big - n);
	memcpy(x + big - 512, img + n - 512, 512);
	tu_spill(p, x, big);
	assert_int_equal(vhd_check(p, 0, on_check, &l), 0);
	assert_int_equal(l.warnings, 1);
	l = (struct lines){ 0 };
	assert_int_equal(vhd_repair(p, on_repair, &l), 1);
	assert_non_null(strstr(l.last, "leaked"));
	size_t m;
	uint8_t *after = tu_slurp(p, &m);
	assert_int_equal(m, n);
	assert_memory_equal(after, img, n);
	free(after);
	l = (struct lines){ 0 };
	assert_int_equal(vhd_check(p, 0, on_check, &l), 0);
	assert_int_equal(l.warnings, 0);
	expect_data(p, data, sizeof(data));

	/* Leaked space and no trailing footer at all (torn at the end). */
	memset(x + big - 512, 0, 512);
	tu_spill(p, x, big - 100);
	l = (struct lines){ 0 };
	assert_true(vhd_check(p, 0, on_check, &l) > 0);
	l = (struct lines){ 0 };
	assert_int_equal(vhd_repair(p, on_repair, &l), 1);
	after = tu_slurp(p, &m);
	assert_int_equal(m, n);
	assert_memory_equal(after, img, n);
	free(after);
	expect_data(p, data, sizeof(data));
	free(x);
	free(img);
	unlink(p);
}

/* The copy at 0 damaged (or stale): rewritten from the trailing footer. */
static void
test_bad_copy(void **state)
{
	static uint8_t data[70000];
	char *p = scratch("copy.vhd");
	size_t n;
	uint8_t *img = make_image(p, &n, data, sizeof(data));
	struct lines l = { 0 };
	(void)state;

	uint8_t *x = malloc(n);
	assert_non_null(x);
	for (int k = 0; k < 2; k++) {
		memcpy(x, img, n);
		if (k == 0)
			x[100] ^= 0x40;              /* checksum now wrong */
		else
			memset(x, 0, 512);           /* copy gone */
		tu_spill(p, x, n);
		l = (struct lines){ 0 };
		assert_true(vhd_check(p, 0, on_check, &l) > 0);
		l = (struct lines){ 0 };
		assert_int_equal(vhd_repair(p, on_repair, &l), 1);
		assert_non_null(strstr(l.last, "offset 0"));
		size_t m;
		uint8_t *after = tu_slurp(p, &m);
		assert_int_equal(m, n);
		assert_memory_equal(after, img, n);
		free(after);
		expect_data(p, data, sizeof(data));
	}
	free(x);
	free(img);
	unlink(p);
}

/* Refusals leave the file as it was. */
static void
expect_refused(const char *from)
{
	char *p = scratch("r.vhd");
	struct lines l = { 0 };

	copy_file(from, p);
	int r = vhd_repair(p, on_repair, &l);
	if (r != 0 || l.fixes != 0)
		fail_msg("%s: repair made %d fixes: %s", from, r, l.last);
	if (!files_equal(p, from))
		fail_msg("%s: repair changed the file", from);
	unlink(p);
}

static void
test_refuses_to_guess(void **state)
{
	(void)state;
	expect_refused(fixture("corrupt", "header-checksum.vhd"));
	expect_refused(fixture("corrupt", "footer-checksum.vhd"));
	expect_refused(fixture("corrupt", "truncated-in-block.vhd"));
	expect_refused(fixture("corrupt", "bat-entries-overlap.vhd"));

	/* header checksum: reported as refused, not fixed */
	struct lines l = { 0 };
	char *p = scratch("h.vhd");
	copy_file(fixture("corrupt", "header-checksum.vhd"), p);
	assert_int_equal(vhd_repair(p, on_repair, &l), 0);
	assert_int_equal(l.refusals, 1);
	assert_non_null(strstr(l.last, "checksum"));
	unlink(p);
}

/* Every damaged fixture: no crash; whatever repair does, the image is
 * not made to look clean unless only footers were wrong. */
static void
test_corrupt_corpus(void **state)
{
	char d[4096];
	DIR *dp;
	struct dirent *e;
	int n = 0;
	(void)state;

	snprintf(d, sizeof(d), "%s/fixtures/corrupt", top);
	dp = opendir(d);
	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 4, ".vhd") != 0)
			continue;
		char *p = scratch("c.vhd");
		struct lines l = { 0 };
		copy_file(fixture("corrupt", e->d_name), p);
		int r = vhd_repair(p, on_repair, &l);
		assert_true(r >= 0);
		if (r == 0 && !files_equal(p, fixture("corrupt", e->d_name)))
			fail_msg("%s: changed without a fix reported",
				 e->d_name);
		l = (struct lines){ 0 };
		int c = vhd_check(p, VHD_CHECK_NO_PARENT, on_check, &l);
		if (c == 0 && r == 0 && strncmp(e->d_name, "diff-", 5) != 0)
			fail_msg("%s: checks clean", e->d_name);
		if (r > 0)
			print_message("%s: %d fixes\n", e->d_name, r);
		unlink(p);
		n++;
	}
	closedir(dp);
	assert_true(n >= 30);
}

/* Valid images (clean or tolerated quirks, e.g. a 511-byte footer, the
 * tapdisk hidden byte, a gap after the BAT) are left alone. */
static void
test_valid_untouched(void **state)
{
	const char *names[] = { "dyn-base.vhd", "fixed-base.vhd",
		"fixed-footer-511.vhd", "bat-larger.vhd", "bat-descending.vhd",
		"block-512k.vhd", "block-4k.vhd", "batmap-after-bat.vhd",
		"gap-after-bat.vhd", "unaligned-data.vhd",
		"clear-bits-garbage.vhd", "hidden-byte-stale-checksum.vhd",
		"features-zero.vhd", "diff-child.vhd" };
	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = scratch("v.vhd");
		struct lines l = { 0 };
		copy_file(fixture("valid", names[i]), p);
		int r = vhd_repair(p, on_repair, &l);
		if (r != 0 || l.refusals)
			fail_msg("%s: repair said %d: %s", names[i], r, l.last);
		if (!files_equal(p, fixture("valid", names[i])))
			fail_msg("%s: changed", names[i]);
		unlink(p);
	}
}

/* An image open for writing is not repaired under its writer. */
static void
test_busy(void **state)
{
	static uint8_t data[1000];
	char *p = scratch("busy.vhd");
	size_t n;
	struct vhd *v;
	(void)state;

	free(make_image(p, &n, data, sizeof(data)));
	assert_int_equal(vhd_open(&v, p, VHD_OPEN_RDWR), 0);
	assert_int_equal(vhd_repair(p, NULL, NULL), -EBUSY);
	assert_non_null(strstr(vhd_errmsg(), "in use"));
	vhd_close(v);
	assert_int_equal(vhd_repair(p, NULL, NULL), 0);
	assert_int_equal(vhd_repair(scratch("missing.vhd"), NULL, NULL),
			 -ENOENT);
	unlink(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trailing_footer),
		cmocka_unit_test(test_leak),
		cmocka_unit_test(test_bad_copy),
		cmocka_unit_test(test_refuses_to_guess),
		cmocka_unit_test(test_corrupt_corpus),
		cmocka_unit_test(test_valid_untouched),
		cmocka_unit_test(test_busy),
	};
	top = getenv("TOP");
	if (!top)
		top = ".";
	dir = tu_tmpdir();
	int r;

	/* Lock conflicts are asserted: fail them at once, not after 5 s. */
	vhd_set_lock_wait(0, NULL, NULL);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_rmrf(dir);
	free(dir);
	return r;
}
