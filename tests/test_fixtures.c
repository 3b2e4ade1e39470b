/* test_fixtures.c - every image made by other software (SHARED_FIXTURES,
 * default ../shared/fixtures) opens as its expected.tsv line says: "ok"
 * reads with the given SHA-256 and checks clean; "damaged" is refused
 * plainly, reported by check, and reads with the hash under
 * VHD_OPEN_IGNORE_CHECKSUM; "parent-missing" is refused naming the
 * parent; "ok-or-refuse" reads with the hash or is refused clearly.
 * If SHARED_FIXTURES is set but unreadable the test fails. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_testutil.h"

static const char *dir;

static int
hash_disk(struct vhd *v, char out[65])
{
	struct vhd_info in = { .struct_size = sizeof in };
	struct tu_sha256 s;
	size_t bs = 1 << 20;
	uint8_t *b = malloc(bs);

	assert_non_null(b);
	assert_int_equal(vhd_get_info(v, &in), 0);
	tu_sha256_init(&s);
	for (uint64_t o = 0; o < in.virtual_size; o += bs) {
		size_t n = in.virtual_size - o < bs ? (size_t)(in.virtual_size - o)
						    : bs;
		int r = vhd_pread(v, b, n, o);
		if (r < 0) {
			free(b);
			return r;
		}
		tu_sha256_update(&s, b, n);
	}
	free(b);
	tu_sha256_hex(&s, out);
	return 0;
}

static int nproblems;
static void
count(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "warning: ", 9) != 0)
		nproblems++;
}

static void
one(const char *file, const char *type, uint64_t size, const char *hash,
    const char *expect)
{
	char path[4096], got[65];
	struct vhd *v;
	struct vhd_info in = { .struct_size = sizeof in };
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	print_message("%s: %s\n", file, expect);
	if (strcmp(expect, "ok") == 0) {
		r = vhd_open(&v, path, VHD_OPEN_RDONLY);
		if (r < 0)
			print_error("%s: %s\n", file, vhd_errmsg());
		assert_int_equal(r, 0);
		assert_int_equal(vhd_get_info(v, &in), 0);
		assert_string_equal(vhd_type_name(in.type), type);
		assert_true(in.virtual_size == size);
		assert_int_equal(hash_disk(v, got), 0);
		assert_string_equal(got, hash);
		vhd_close(v);
		nproblems = 0;
		assert_int_equal(vhd_check(path, 0, count, NULL), 0);
		assert_int_equal(nproblems, 0);
	} else if (strcmp(expect, "damaged") == 0) {
		r = vhd_open(&v, path, VHD_OPEN_RDONLY);
		assert_int_equal(r, -EBADMSG);
		assert_non_null(strstr(vhd_errmsg(), file));
		nproblems = 0;
		assert_true(vhd_check(path, 0, count, NULL) > 0);
		assert_true(nproblems > 0);
		r = vhd_open(&v, path, VHD_OPEN_IGNORE_CHECKSUM);
		assert_int_equal(r, 0);
		assert_int_equal(hash_disk(v, got), 0);
		assert_string_equal(got, hash);
		vhd_close(v);
	} else if (strcmp(expect, "parent-missing") == 0) {
		r = vhd_open(&v, path, VHD_OPEN_RDONLY);
		assert_int_equal(r, -ENOENT);
		print_message("  %s\n", vhd_errmsg());
		assert_non_null(strstr(vhd_errmsg(), "parent"));
		assert_non_null(strstr(vhd_errmsg(), ".vhd'"));
		/* Metadata alone still opens. */
		assert_int_equal(vhd_open(&v, path, VHD_OPEN_NO_PARENT), 0);
		vhd_close(v);
	} else if (strcmp(expect, "ok-or-refuse") == 0) {
		r = vhd_open(&v, path, VHD_OPEN_RDONLY);
		if (r < 0) {
			assert_true(strlen(vhd_errmsg()) > 0);
			return;
		}
		assert_int_equal(hash_disk(v, got), 0);
		assert_string_equal(got, hash);
		vhd_close(v);
	} else {
		fail_msg("%s: unknown expectation '%s'", file, expect);
	}
}

static void
test_fixtures(void **state)
{
	char path[4096], line[4096];
	int n = 0;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/expected.tsv", dir);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		char *fld[8];
		int k = 0;
		if (line[0] == '#')
			continue;
		line[strcspn(line, "\n")] = 0;
		for (char *p = line; k < 8; k++) {
			fld[k] = p;
			p = strchr(p, '\t');
			if (!p) {
				k++;
				break;
			}
			*p++ = 0;
		}
		if (k < 6)
			continue;
		one(fld[0], fld[2], strtoull(fld[3], NULL, 10), fld[4], fld[5]);
		n++;
	}
	fclose(f);
	assert_true(n > 0);
	print_message("fixtures checked: %d\n", n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
	};
	dir = getenv("SHARED_FIXTURES");
	if (!dir) {
		/* The suite runs without the corpus; say so. */
		dir = "../shared/fixtures";
		FILE *f = fopen("../shared/fixtures/expected.tsv", "r");
		if (!f) {
			printf("SHARED_FIXTURES not set and ../shared/fixtures "
			       "absent: nothing to check\n");
			return 0;
		}
		fclose(f);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
