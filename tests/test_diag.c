/* test_diag.c - diagnostics are records whose code decides (issue 16):
 * every damaged fixture is refused by open and reported by check with the
 * code of what is wrong, the record names the file and the offset, and
 * warnings and repairs carry their severity. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib_testutil.h"

static const char *top;
static char *dir;

struct seen {
	int n, errors, warnings;
	enum vhd_code codes[64];
	uint64_t offsets[64];
	int bad_record;         /* a record whose parts disagree */
	const char *path;
};

/* Every record: its text names its file, its message is the rest. */
static void
on_diag(void *arg, const struct vhd_diag *d)
{
	struct seen *s = arg;
	char want[1200];

	if (d->struct_size != sizeof(*d) || !d->text || !d->message)
		s->bad_record = 1;
	if (d->file) {
		snprintf(want, sizeof(want), "'%s': %s", d->file, d->message);
		if (strcmp(want, d->text) != 0 || strcmp(d->file, s->path) != 0)
			s->bad_record = 1;
	}
	if (d->severity == VHD_SEV_ERROR)
		s->errors++;
	else if (d->severity == VHD_SEV_WARNING)
		s->warnings++;
	if (s->n < 64) {
		s->codes[s->n] = d->code;
		s->offsets[s->n] = d->offset;
	}
	s->n++;
}

static int
has_code(const struct seen *s, enum vhd_code c)
{
	for (int i = 0; i < s->n && i < 64; i++)
		if (s->codes[i] == c)
			return 1;
	return 0;
}

static const struct {
	const char *file;
	enum vhd_code open_code;        /* vhd_open's refusal */
	enum vhd_code check_code;       /* among check's records */
} cases[] = {
	{ "footer-cookie.vhd",   VHD_CODE_NOT_VHD, VHD_CODE_FOOTER_COOKIE },
	{ "zeros-4k.vhd",        VHD_CODE_NOT_VHD, VHD_CODE_NOT_VHD },
	{ "empty.vhd",           VHD_CODE_NOT_VHD, VHD_CODE_NOT_VHD },
	{ "footer-checksum.vhd", VHD_CODE_FOOTER_CHECKSUM,
				 VHD_CODE_FOOTER_CHECKSUM },
	{ "footer-version.vhd",  VHD_CODE_FOOTER_VERSION,
				 VHD_CODE_FOOTER_VERSION },
	{ "disk-type-5.vhd",     VHD_CODE_FOOTER_TYPE, VHD_CODE_FOOTER_TYPE },
	{ "size-not-sector-multiple.vhd", VHD_CODE_FOOTER_SIZE,
				 VHD_CODE_FOOTER_SIZE },
	{ "fixed-short.vhd",     VHD_CODE_FOOTER_SIZE, VHD_CODE_FOOTER_SIZE },
	{ "data-offset-zero.vhd", VHD_CODE_FOOTER_DATA_OFFSET,
				 VHD_CODE_FOOTER_DATA_OFFSET },
	{ "header-cookie.vhd",   VHD_CODE_HEADER_COOKIE, VHD_CODE_HEADER_COOKIE },
	{ "header-checksum.vhd", VHD_CODE_HEADER_CHECKSUM,
				 VHD_CODE_HEADER_CHECKSUM },
	{ "header-version.vhd",  VHD_CODE_HEADER_VERSION,
				 VHD_CODE_HEADER_VERSION },
	{ "block-size-not-pow2.vhd", VHD_CODE_HEADER_BLOCK_SIZE,
				 VHD_CODE_HEADER_BLOCK_SIZE },
	{ "table-entries-too-few.vhd", VHD_CODE_HEADER_TABLE_ENTRIES,
				 VHD_CODE_HEADER_TABLE_ENTRIES },
	{ "table-offset-past-eof.vhd", VHD_CODE_HEADER_TABLE_OFFSET,
				 VHD_CODE_HEADER_TABLE_OFFSET },
	{ "bat-entry-past-eof.vhd", VHD_CODE_BAT_ENTRY, VHD_CODE_BAT_ENTRY },
	{ "bat-entries-overlap.vhd", VHD_CODE_BAT_ENTRY, VHD_CODE_BAT_ENTRY },
	{ "diff-locator-offset-past-eof.vhd", VHD_CODE_PARENT_MISSING,
				 VHD_CODE_LOCATOR },
	{ "diff-locator-loop.vhd", VHD_CODE_CHAIN_LOOP, VHD_CODE_NONE },
	{ "diff-parent-id-mismatch.vhd", VHD_CODE_PARENT_MISMATCH,
				 VHD_CODE_NONE },
};

static void
test_corrupt_codes(void **state)
{
	char p[4096];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen s = { 0 };
		struct vhd *v = NULL;
		int r;

		snprintf(p, sizeof(p), "%s/fixtures/corrupt/%s", top,
			 cases[i].file);
		s.path = p;
		r = vhd_open(&v, p, VHD_OPEN_RDONLY);
		assert_true(r < 0);
		const struct vhd_diag *e = vhd_last_error();
		if (e->code != cases[i].open_code)
			fail_msg("%s: open: code %s, expected %s",
				 cases[i].file, vhd_code_name(e->code),
				 vhd_code_name(cases[i].open_code));
		assert_int_equal(e->severity, VHD_SEV_ERROR);
		assert_string_equal(e->text, vhd_errmsg());
		/* The file is taken apart from the message, not cut off. */
		if (e->file && strcmp(e->file, p) == 0)
			assert_string_equal(vhd_errmsg_about(p), e->message);
		if (cases[i].check_code == VHD_CODE_NONE)
			continue;
		r = vhd_check_diag(p, VHD_CHECK_NO_PARENT, on_diag, &s);
		assert_true(r > 0);
		assert_int_equal(r, s.errors);
		assert_false(s.bad_record);
		if (!has_code(&s, cases[i].check_code))
			fail_msg("%s: check: no %s record", cases[i].file,
				 vhd_code_name(cases[i].check_code));
	}
}

/* Offsets and values of a record: the byte of the field. */
static void
test_record_fields(void **state)
{
	char p[4096];
	struct seen s = { 0 };
	(void)state;

	snprintf(p, sizeof(p), "%s/fixtures/corrupt/header-cookie.vhd", top);
	s.path = p;
	struct vhd *v;
	assert_int_equal(vhd_open(&v, p, 0), -EBADMSG);
	const struct vhd_diag *e = vhd_last_error();
	assert_int_equal(e->code, VHD_CODE_HEADER_COOKIE);
	assert_int_equal(e->offset, 512);
	assert_string_equal(e->expected, "cxsparse");
	assert_non_null(e->found);
	assert_string_not_equal(e->found, "cxsparse");
	assert_string_equal(e->file, p);

	snprintf(p, sizeof(p), "%s/fixtures/corrupt/footer-checksum.vhd", top);
	s.path = p;
	assert_int_equal(vhd_check_diag(p, 0, on_diag, &s), 2);
	/* Both footers: the checksum field, at the end and at 0 + 64. */
	assert_int_equal(s.codes[0], VHD_CODE_FOOTER_CHECKSUM);
	assert_int_equal(s.codes[1], VHD_CODE_FOOTER_CHECKSUM);
	assert_true(s.offsets[0] % 512 == 64);
	assert_int_equal(s.offsets[1], 64);
}

/* A tolerated quirk is a warning: reported, not counted. */
static void
test_warning_severity(void **state)
{
	char p[4096];
	struct seen s = { 0 };
	(void)state;

	snprintf(p, sizeof(p), "%s/fixtures/valid/fixed-footer-511.vhd", top);
	s.path = p;
	assert_int_equal(vhd_check_diag(p, 0, on_diag, &s), 0);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.warnings, 1);
	assert_int_equal(s.codes[0], VHD_CODE_FOOTER_511);
	assert_false(s.bad_record);
}

/* A repair is a record of severity "repaired" with the problem's code. */
static void
test_repair_records(void **state)
{
	char src[4096], p[4096];
	struct seen s = { 0 };
	size_t n;
	(void)state;

	snprintf(src, sizeof(src), "%s/fixtures/valid/dyn-base.vhd", top);
	snprintf(p, sizeof(p), "%s/copy0.vhd", dir);
	uint8_t *b = tu_slurp(src, &n);
	b[3] ^= 0x20;           /* the copy at 0: a bad cookie */
	tu_spill(p, b, n);
	free(b);
	s.path = p;
	assert_int_equal(vhd_repair_diag(p, on_diag, &s), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.codes[0], VHD_CODE_FOOTER_COPY_DIFFERS);
	assert_int_equal(s.errors, 0);
	assert_false(s.bad_record);
	memset(&s, 0, sizeof(s));
	s.path = p;
	assert_int_equal(vhd_check_diag(p, 0, on_diag, &s), 0);
	assert_int_equal(s.n, 0);
	unlink(p);
}

/* set-parent's refusals that --force overrides are told by code. */
static void
test_set_parent_codes(void **state)
{
	char a[4096], b[4096], c[4096];
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC,
				     .size = 8 << 20 };
	(void)state;

	snprintf(a, sizeof(a), "%s/a.vhd", dir);
	snprintf(b, sizeof(b), "%s/b.vhd", dir);
	snprintf(c, sizeof(c), "%s/c.vhd", dir);
	assert_int_equal(vhd_create(a, &o), 0);
	assert_int_equal(vhd_create(b, &o), 0);
	struct vhd_create_opts co = { .struct_size = sizeof co, .parent = a };
	assert_int_equal(vhd_create(c, &co), 0);
	assert_int_equal(vhd_set_parent(c, b, 0), -EINVAL);
	assert_int_equal(vhd_last_error()->code, VHD_CODE_PARENT_MISMATCH);
	unlink(b);
	o.size = 16 << 20;
	assert_int_equal(vhd_create(b, &o), 0);
	assert_int_equal(vhd_set_parent(c, b, 0), -EINVAL);
	assert_int_equal(vhd_last_error()->code, VHD_CODE_PARENT_SIZE);
	unlink(a);
	struct vhd *v;
	assert_int_equal(vhd_open(&v, c, 0), -ENOENT);
	assert_int_equal(vhd_last_error()->code, VHD_CODE_PARENT_MISSING);
	assert_string_equal(vhd_last_error()->file, c);
	unlink(b);
	unlink(c);
}

/* A lock held by another writer: code "locked", naming the file. */
static void
test_locked_code(void **state)
{
	char a[4096];
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC,
				     .size = 8 << 20 };
	struct vhd *w, *v;
	(void)state;

	snprintf(a, sizeof(a), "%s/l.vhd", dir);
	assert_int_equal(vhd_create(a, &o), 0);
	assert_int_equal(vhd_open(&w, a, VHD_OPEN_RDWR), 0);
	assert_int_equal(vhd_open(&v, a, VHD_OPEN_RDWR), -EBUSY);
	assert_int_equal(vhd_last_error()->code, VHD_CODE_LOCKED);
	assert_string_equal(vhd_last_error()->file, a);
	/* Said after the file by a program that names it itself. */
	assert_ptr_equal(vhd_errmsg_about(a), vhd_last_error()->message);
	assert_ptr_equal(vhd_errmsg_about("other.vhd"), vhd_errmsg());
	vhd_close(w);
	unlink(a);
}

/* Every code has its own stable name. */
static void
test_code_names(void **state)
{
	(void)state;
	for (int i = 0; i < VHD_CODE_COUNT_; i++) {
		const char *n = vhd_code_name((enum vhd_code)i);
		assert_string_not_equal(n, "unknown");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n,
						vhd_code_name((enum vhd_code)j));
	}
	assert_string_equal(vhd_code_name(VHD_CODE_COUNT_), "unknown");
	assert_string_equal(vhd_code_name(VHD_CODE_FOOTER_CHECKSUM),
			    "footer-checksum");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corrupt_codes),
		cmocka_unit_test(test_record_fields),
		cmocka_unit_test(test_warning_severity),
		cmocka_unit_test(test_repair_records),
		cmocka_unit_test(test_set_parent_codes),
		cmocka_unit_test(test_locked_code),
		cmocka_unit_test(test_code_names),
	};
	int r;

	top = getenv("TOP");
	if (!top)
		top = ".";
	dir = tu_tmpdir();
	vhd_set_lock_wait(0, NULL, NULL);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_rmrf(dir);
	free(dir);
	return r;
}
