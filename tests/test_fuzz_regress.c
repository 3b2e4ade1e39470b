/* test_fuzz_regress.c - every input the fuzzers found a bug with, kept in
 * tests/fuzz/regress/{open,modify,locator,nbd,vhdx}/, replayed on each run, and the
 * fuzzers' seeds after them (so the harnesses also run in the gcc and
 * sanitized builds).
 *
 * An image must open from a memory backend (vhd_io_mem_open +
 * vhd_open_io) or fail cleanly: a negative errno the API documents and a
 * message.  Then the input goes through the fuzz target's whole pipeline
 * (the harness sources are included below; inputs of open/ also go
 * through fuzz_modify's), whose property checks fail
 * the test here instead of aborting.  The sanitized build (build-san) of
 * this test is what catches memory errors and leaks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhd.h"

#define FUZZ_NO_MAIN 1

static int regress_failures;
static char regress_first[512];

void fuzz_regress_fail(const char *who, const char *what, int line);

void
fuzz_regress_fail(const char *who, const char *what, int line)
{
	if (regress_failures++ == 0)
		snprintf(regress_first, sizeof(regress_first),
			 "%s line %d: %s (%s)", who, line, what, vhd_errmsg());
}

#include "fuzz/fuzz_open.c"
#include "fuzz/fuzz_modify.c"
#include "fuzz/fuzz_locator.c"
#include "fuzz/fuzz_nbd.c"
#include "fuzz/fuzz_vhdx.c"

static char *
read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *d = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (d = malloc((size_t)len + 1)) &&
	    fread(d, 1, (size_t)len, f) == (size_t)len) {
		*n = (size_t)len;
	} else {
		free(d);
		d = NULL;
	}
	fclose(f);
	return d;
}

/* Calls fn on each file of tests/fuzz/KIND/sub (KIND: regress or
 * seeds); returns how many there were. */
static int
each_input(const char *kind, const char *sub,
	   void (*fn)(const char *name, const uint8_t *d, size_t n))
{
	const char *top = getenv("TOP");
	char dir[4096], path[8192];
	struct dirent *e;
	DIR *dp;
	int count = 0, bad = 0;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s/%s", top ? top : ".",
		 kind, sub);
	dp = opendir(dir);
	if (!dp)
		fail_msg("cannot open %s: %s", dir, strerror(errno));
	/* Every input runs even when one fails, and nothing is held when
	 * the case fails (fail_msg jumps out). */
	/* A listing that stops on an error (EOVERFLOW: a 32-bit off_t meeting
	 * ext4's 64-bit cookies) fails instead of looking empty. */
	for (;;) {
		errno = 0;
		if ((e = readdir(dp)) == NULL) {
			if (errno != 0)
				fail_msg("cannot list %s: %s", dir,
					 strerror(errno));
			break;
		}
		size_t n = 0;
		char *d;

		if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		d = read_all(path, &n);
		if (!d) {
			print_error("cannot read %s\n", path);
			bad++;
			continue;
		}
		regress_failures = 0;
		regress_first[0] = '\0';
		fn(e->d_name, (const uint8_t *)d, n);
		if (regress_failures) {
			print_error("%s/%s/%s: %s\n", kind, sub, e->d_name,
				    regress_first);
			bad++;
		}
		free(d);
		count++;
	}
	closedir(dp);
	if (bad)
		fail_msg("%d input(s) of tests/fuzz/%s/%s failed", bad, kind, sub);
	return count;
}

/* The errno values vhd.h documents for a failed open. */
static int
documented_open_error(int r)
{
	switch (-r) {
	case EINVAL: case EBADMSG: case ENOTSUP: case ENOENT: case EIO:
	case ENOMEM: case ENOSPC: case EROFS: case EBUSY:
		return 1;
	}
	return 0;
}

static void
open_one(const char *name, const uint8_t *d, size_t n)
{
	static const unsigned flags[] = {
		VHD_OPEN_NO_PARENT,
		VHD_OPEN_NO_PARENT | VHD_OPEN_IGNORE_CHECKSUM,
		VHD_OPEN_NO_PARENT | VHD_OPEN_RDWR,
	};

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct vhd_open_opts o = { sizeof o, flags[i], NULL };
		struct vhd_io *io;
		struct vhd *v = NULL;
		int r;

		if (vhd_io_mem_open(&io, d, n) < 0) {
			fuzz_regress_fail(name, "vhd_io_mem_open failed", 0);
			return;
		}
		r = vhd_open_io(&v, io, &o);
		if (r < 0) {
			io->ops->close(io);
			if (!documented_open_error(r))
				fuzz_regress_fail(name, "open returned an errno "
						  "vhd.h does not document", r);
			if (!vhd_errmsg() || !vhd_errmsg()[0])
				fuzz_regress_fail(name, "open failed without a "
						  "message", (int)flags[i]);
		} else {
			vhd_close(v);
		}
	}
	fuzz_open_input(d, n);
	fuzz_modify_input(d, n);
}

static void
modify_one(const char *name, const uint8_t *d, size_t n)
{
	(void)name;
	fuzz_modify_input(d, n);
}

static void
locator_one(const char *name, const uint8_t *d, size_t n)
{
	(void)name;
	fuzz_locator_input(d, n);
}

static void
nbd_one(const char *name, const uint8_t *d, size_t n)
{
	(void)name;
	fuzz_nbd_input(d, n);
}

static void
test_open_inputs(void **state)
{
	(void)state;
	assert_true(each_input("regress", "open", open_one) > 0);
	assert_true(each_input("seeds", "open", open_one) > 0);
}

static void
test_modify_inputs(void **state)
{
	(void)state;
	assert_true(each_input("regress", "modify", modify_one) > 0);
}

static void
test_locator_inputs(void **state)
{
	(void)state;
	each_input("regress", "locator", locator_one);
	assert_true(each_input("seeds", "locator", locator_one) > 0);
}

static void
test_nbd_inputs(void **state)
{
	(void)state;
	each_input("regress", "nbd", nbd_one);
	assert_true(each_input("seeds", "nbd", nbd_one) > 0);
}

static void
vhdx_one(const char *name, const uint8_t *d, size_t n)
{
	(void)name;
	fuzz_vhdx_input(d, n);
}

static void
test_vhdx_inputs(void **state)
{
	(void)state;
	each_input("regress", "vhdx", vhdx_one);
	assert_true(each_input("seeds", "vhdx", vhdx_one) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_inputs),
		cmocka_unit_test(test_modify_inputs),
		cmocka_unit_test(test_locator_inputs),
		cmocka_unit_test(test_nbd_inputs),
		cmocka_unit_test(test_vhdx_inputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
