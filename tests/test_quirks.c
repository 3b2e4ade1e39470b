/* test_quirks.c - the producer quirks table (libvhd/quirks.c) and SPEC.md
 * §7 say the same (issue 16): the same ids in the same order, with the
 * same producers, VHD_WARN_* bits and check codes; every warning bit an
 * open can set is in it; QEMU's size rule before and from 10.0 per
 * block/vpc.c for every creator it names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib_testutil.h"

static const char *top;

/* The cells of a markdown table row "| a | b |" (in place, trimmed). */
static int
cells(char *line, char *out[], int max)
{
	int n = 0;
	char *p = line;

	if (*p != '|')
		return 0;
	p++;
	while (n < max) {
		char *end = strchr(p, '|');
		if (!end)
			break;
		*end = 0;
		while (*p == ' ')
			p++;
		char *e = end;
		while (e > p && e[-1] == ' ')
			*--e = 0;
		out[n++] = p;
		p = end + 1;
	}
	return n;
}

/* `x` -> x */
static const char *
unquote(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '`' && s[n - 1] == '`') {
		s[n - 1] = 0;
		return s + 1;
	}
	return s;
}

static const char *
warn_name(unsigned w)
{
	switch (w) {
	case 0:                         return "—";
	case VHD_WARN_FOOTER_CHECKSUM:  return "VHD_WARN_FOOTER_CHECKSUM";
	case VHD_WARN_HEADER_CHECKSUM:  return "VHD_WARN_HEADER_CHECKSUM";
	case VHD_WARN_FOOTER_FROM_COPY: return "VHD_WARN_FOOTER_FROM_COPY";
	case VHD_WARN_FOOTER_511:       return "VHD_WARN_FOOTER_511";
	case VHD_WARN_HIDDEN_BYTE:      return "VHD_WARN_HIDDEN_BYTE";
	case VHD_WARN_LOG_REPLAYED:     return "VHD_WARN_LOG_REPLAYED";
	}
	return "?";
}

static void
test_spec_agrees(void **state)
{
	char path[4096], line[8192];
	size_t n, row = 0;
	const struct vhd_quirk *q = vhd_quirk_table(&n);
	int in7 = 0, header_seen = 0;
	FILE *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/SPEC.md", top);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "## ", 3) == 0) {
			in7 = strncmp(line, "## 7.", 5) == 0;
			continue;
		}
		if (!in7)
			continue;
		char *c[8];
		int k = cells(line, c, 8);
		if (k == 0)
			continue;
		if (!header_seen) {
			/* The quirks table is §7's first, with these columns. */
			assert_int_equal(k, 7);
			assert_string_equal(c[0], "id");
			assert_string_equal(c[2], "producer");
			assert_string_equal(c[5], "open warns");
			assert_string_equal(c[6], "check reports");
			header_seen = 1;
			continue;
		}
		if (strncmp(c[0], "---", 3) == 0)
			continue;
		if (k != 7)
			break;          /* the next table (creators) */
		if (row >= n)
			fail_msg("SPEC.md §7 has a row '%s' the table lacks",
				 c[0]);
		const char *id = unquote(c[0]);
		if (strcmp(id, q[row].id) != 0)
			fail_msg("row %zu: SPEC.md says '%s', quirks.c '%s'",
				 row, id, q[row].id);
		assert_string_equal(c[2], q[row].producers);
		assert_string_equal(unquote(c[5]), warn_name(q[row].warn));
		assert_string_equal(unquote(c[6]), q[row].code ?
				    vhd_code_name(q[row].code) : "—");
		row++;
	}
	fclose(f);
	assert_true(header_seen);
	if (row != n)
		fail_msg("SPEC.md §7 lists %zu quirks, quirks.c %zu", row, n);
}

/* Each warning bit once, with its words; ids unique. */
static void
test_table_complete(void **state)
{
	size_t n;
	const struct vhd_quirk *q = vhd_quirk_table(&n);
	unsigned seen = 0;
	(void)state;

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(q[i].id, q[j].id);
		if (!q[i].warn)
			continue;
		assert_int_equal(seen & q[i].warn, 0);
		seen |= q[i].warn;
		assert_non_null(q[i].warn_text);
		assert_string_equal(vhd_warning_text(q[i].warn), q[i].warn_text);
	}
	assert_int_equal(seen, VHD_WARN_FOOTER_CHECKSUM | VHD_WARN_HEADER_CHECKSUM |
			 VHD_WARN_FOOTER_FROM_COPY | VHD_WARN_FOOTER_511 |
			 VHD_WARN_HIDDEN_BYTE | VHD_WARN_LOG_REPLAYED);
	assert_null(vhd_warning_text(0x80000000u));
}

/* QEMU's block/vpc.c: before 10.0 the current size for win, qem2, d2v,
 * tap\0 and CTXS, the CHS capacity for the rest; from 10.0 the CHS
 * capacity for vpc and qemu only; the maximum geometry always the current
 * size. */
static void
test_qemu_rule(void **state)
{
	static const struct {
		char app[5];
		int chs_old, chs_new;
	} c[] = {
		{ "vpc ", 1, 1 }, { "qemu", 1, 1 }, { "qem2", 0, 0 },
		{ "win ", 0, 0 }, { "d2v ", 0, 0 }, { "tap", 0, 0 },
		{ "CTXS", 0, 0 }, { "wa", 1, 0 }, { "vbox", 1, 0 },
		{ "lvhd", 1, 0 }, { "xyz ", 1, 0 }, { "tap ", 1, 0 },
	};
	struct vhd_info in = { .struct_size = sizeof in };
	(void)state;

	in.virtual_size = UINT64_C(1) << 30;
	in.cylinders = 2080;
	in.heads = 16;
	in.sectors_per_track = 63;
	in.chs_size = UINT64_C(2080) * 16 * 63 * 512;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memcpy(in.creator_app, c[i].app, 5);
		assert_int_equal(vhd_qemu_size(&in, 702), c[i].chs_old ?
				 in.chs_size : in.virtual_size);
		assert_int_equal(vhd_qemu_size(&in, 900), c[i].chs_old ?
				 in.chs_size : in.virtual_size);
		assert_int_equal(vhd_qemu_size(&in, 1000), c[i].chs_new ?
				 in.chs_size : in.virtual_size);
		assert_int_equal(vhd_qemu_size(&in, 1002), c[i].chs_new ?
				 in.chs_size : in.virtual_size);
	}
	/* The maximum geometry: the current size, whoever made it. */
	memcpy(in.creator_app, "vpc ", 5);
	in.cylinders = 65535;
	in.heads = 16;
	in.sectors_per_track = 255;
	in.chs_size = UINT64_C(65535) * 16 * 255 * 512;
	assert_int_equal(vhd_qemu_size(&in, 702), in.virtual_size);
	assert_int_equal(vhd_qemu_size(&in, 1000), in.virtual_size);
	assert_int_equal(vhd_qemu_size(NULL, 702), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_agrees),
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_qemu_rule),
	};

	top = getenv("TOP");
	if (!top)
		top = ".";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
