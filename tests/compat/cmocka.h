/*
 * cmocka.h - a minimal stand-in for the cmocka unit-test API, for the
 * cross builds (i686, s390x, mingw-w64) where the real library is not
 * installed.  It implements only what tests/test_*.c use: test tables
 * with per-test and group setup/teardown, the assert_* family, fail,
 * fail_msg, skip, print_message and print_error.  No mocking.
 *
 * Like cmocka, a failed assertion jumps (longjmp) out of the running
 * test, the runner reports it and goes on with the next test, and
 * cmocka_run_group_tests returns the number of failed tests.  An
 * assertion that fails in a thread other than the runner's cannot jump,
 * so it prints the failure and exits with status 1.
 *
 * The native x86_64 build keeps using the real cmocka; this header is
 * picked up only through -Itests/compat.
 */
#ifndef VHD_CMOCKA_SHIM_H
#define VHD_CMOCKA_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* mingw's "printf" archetype is msvcrt's (no %zu, %jd); the tests are
 * built with __USE_MINGW_ANSI_STDIO, whose printf is C99's. */
#ifdef __MINGW_PRINTF_FORMAT
#define VHD_CM_PRINTF __MINGW_PRINTF_FORMAT
#else
#define VHD_CM_PRINTF printf
#endif

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
	const char *name;
	CMUnitTestFunction test_func;
	CMFixtureFunction setup_func;
	CMFixtureFunction teardown_func;
	void *initial_state;
};

/* cmocka compares integers as its widest unsigned type. */
typedef uintmax_t LargestIntegralType;

#define cmocka_unit_test(f) { #f, f, NULL, NULL, NULL }
#define cmocka_unit_test_setup(f, setup) { #f, f, setup, NULL, NULL }
#define cmocka_unit_test_teardown(f, teardown) { #f, f, NULL, teardown, NULL }
#define cmocka_unit_test_setup_teardown(f, setup, teardown) \
	{ #f, f, setup, teardown, NULL }
#define cmocka_unit_test_prestate(f, state) { #f, f, NULL, NULL, state }
#define cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, state) \
	{ #f, f, setup, teardown, state }

#define cmocka_run_group_tests(tests, gsetup, gteardown) \
	_cmocka_run_group_tests(#tests, (tests), \
				sizeof(tests) / sizeof((tests)[0]), \
				(gsetup), (gteardown))
#define cmocka_run_group_tests_name(name, tests, gsetup, gteardown) \
	_cmocka_run_group_tests((name), (tests), \
				sizeof(tests) / sizeof((tests)[0]), \
				(gsetup), (gteardown))

int _cmocka_run_group_tests(const char *group,
			    const struct CMUnitTest *tests, size_t n,
			    CMFixtureFunction gsetup,
			    CMFixtureFunction gteardown);

/* Reporting; each ends the running test. */
void _cm_fail(const char *file, int line, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_CM_PRINTF, 3, 4), noreturn))
#endif
	;
void _cm_skip(const char *file, int line)
#ifdef __GNUC__
	__attribute__((noreturn))
#endif
	;
void _cm_int(uintmax_t a, uintmax_t b, int want_equal, const char *as,
	     const char *bs, const char *file, int line);
void _cm_range(uintmax_t v, uintmax_t lo, uintmax_t hi, int want_in,
	       const char *vs, const char *file, int line);
void _cm_str(const char *a, const char *b, int want_equal,
	     const char *file, int line);
void _cm_mem(const void *a, const void *b, size_t n, int want_equal,
	     const char *file, int line);
void _cm_true(int c, const char *expr, const char *file, int line);
void _cm_rc(intmax_t rc, int err, const char *expr, const char *file,
	    int line);

void print_message(const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_CM_PRINTF, 1, 2)))
#endif
	;
void print_error(const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_CM_PRINTF, 1, 2)))
#endif
	;

#define fail() _cm_fail(__FILE__, __LINE__, "%s", "fail()")
#define fail_msg(...) _cm_fail(__FILE__, __LINE__, __VA_ARGS__)
#define skip() _cm_skip(__FILE__, __LINE__)

#define assert_true(c) _cm_true(!!(c), #c, __FILE__, __LINE__)
#define assert_false(c) _cm_true(!(c), "!(" #c ")", __FILE__, __LINE__)
#define assert_null(p) \
	_cm_true((const void *)(p) == NULL, #p " == NULL", __FILE__, __LINE__)
#define assert_non_null(p) \
	_cm_true((const void *)(p) != NULL, #p " != NULL", __FILE__, __LINE__)
#define assert_ptr_equal(a, b) \
	_cm_true((const void *)(a) == (const void *)(b), #a " == " #b, \
		 __FILE__, __LINE__)
#define assert_ptr_not_equal(a, b) \
	_cm_true((const void *)(a) != (const void *)(b), #a " != " #b, \
		 __FILE__, __LINE__)
#define assert_int_equal(a, b) \
	_cm_int((uintmax_t)(a), (uintmax_t)(b), 1, #a, #b, __FILE__, __LINE__)
#define assert_int_not_equal(a, b) \
	_cm_int((uintmax_t)(a), (uintmax_t)(b), 0, #a, #b, __FILE__, __LINE__)
#define assert_uint_equal assert_int_equal
#define assert_uint_not_equal assert_int_not_equal
#define assert_in_range(v, lo, hi) \
	_cm_range((uintmax_t)(v), (uintmax_t)(lo), (uintmax_t)(hi), 1, #v, \
		  __FILE__, __LINE__)
#define assert_not_in_range(v, lo, hi) \
	_cm_range((uintmax_t)(v), (uintmax_t)(lo), (uintmax_t)(hi), 0, #v, \
		  __FILE__, __LINE__)
#define assert_string_equal(a, b) \
	_cm_str((const char *)(a), (const char *)(b), 1, __FILE__, __LINE__)
#define assert_string_not_equal(a, b) \
	_cm_str((const char *)(a), (const char *)(b), 0, __FILE__, __LINE__)
#define assert_memory_equal(a, b, n) \
	_cm_mem((a), (b), (size_t)(n), 1, __FILE__, __LINE__)
#define assert_memory_not_equal(a, b, n) \
	_cm_mem((a), (b), (size_t)(n), 0, __FILE__, __LINE__)
#define assert_return_code(rc, err) \
	_cm_rc((intmax_t)(rc), (int)(err), #rc, __FILE__, __LINE__)

/* No leak checking here: the plain allocator. */
#define test_malloc(n) malloc(n)
#define test_calloc(n, s) calloc(n, s)
#define test_realloc(p, n) realloc(p, n)
#define test_free(p) free(p)

#endif
