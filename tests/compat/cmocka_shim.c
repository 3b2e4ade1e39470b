/*
 * cmocka_shim.c - the runner and assertions behind tests/compat/cmocka.h
 * (see there).  Output follows cmocka's: "[ RUN      ] name" then
 * "[       OK ]", "[  FAILED  ]" or "[  SKIPPED ]", and a summary.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmocka.h"

enum { CM_OK, CM_FAILED, CM_SKIPPED };

static jmp_buf cm_jmp;
/* Set only in the runner's thread while a test or fixture runs: other
 * threads cannot longjmp into it. */
static _Thread_local int cm_active;

static void
cm_vreport(const char *file, int line, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s:%d: error: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
cm_end(int status)
{
	fflush(stdout);
	fflush(stderr);
	if (!cm_active) {
		fprintf(stderr, "cmocka shim: failure outside the test's "
			"thread; exiting\n");
		exit(1);
	}
	longjmp(cm_jmp, status);
}

void
_cm_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_vreport(file, line, fmt, ap);
	va_end(ap);
	cm_end(CM_FAILED);
	abort();        /* not reached */
}

void
_cm_skip(const char *file, int line)
{
	(void)file;
	(void)line;
	cm_end(CM_SKIPPED);
	abort();        /* not reached */
}

void
_cm_int(uintmax_t a, uintmax_t b, int want_equal, const char *as,
	const char *bs, const char *file, int line)
{
	if ((a == b) == !!want_equal)
		return;
	_cm_fail(file, line, "%s %s %s: %" PRIdMAX " (%#" PRIxMAX ") %s %"
		 PRIdMAX " (%#" PRIxMAX ")", as, want_equal ? "==" : "!=", bs,
		 (intmax_t)a, a, want_equal ? "!=" : "==", (intmax_t)b, b);
}

void
_cm_range(uintmax_t v, uintmax_t lo, uintmax_t hi, int want_in,
	  const char *vs, const char *file, int line)
{
	int in = v >= lo && v <= hi;

	if (in == !!want_in)
		return;
	_cm_fail(file, line, "%s = %" PRIuMAX " is %s [%" PRIuMAX ", %"
		 PRIuMAX "]", vs, v, in ? "in" : "not in", lo, hi);
}

void
_cm_str(const char *a, const char *b, int want_equal, const char *file,
	int line)
{
	int eq = a && b ? strcmp(a, b) == 0 : a == b;

	if (eq == !!want_equal)
		return;
	_cm_fail(file, line, "\"%s\" %s \"%s\"", a ? a : "(null)",
		 want_equal ? "!=" : "==", b ? b : "(null)");
}

void
_cm_mem(const void *a, const void *b, size_t n, int want_equal,
	const char *file, int line)
{
	const unsigned char *p = a, *q = b;
	size_t i;

	if (!a || !b)
		_cm_fail(file, line, "memory compare of a NULL pointer");
	for (i = 0; i < n && p[i] == q[i]; i++)
		;
	if ((i == n) == !!want_equal)
		return;
	if (want_equal)
		_cm_fail(file, line, "memory differs at byte %zu of %zu: "
			 "0x%02x != 0x%02x", i, n, p[i], q[i]);
	_cm_fail(file, line, "%zu bytes of memory are equal", n);
}

void
_cm_true(int c, const char *expr, const char *file, int line)
{
	if (!c)
		_cm_fail(file, line, "%s is false", expr);
}

void
_cm_rc(intmax_t rc, int err, const char *expr, const char *file, int line)
{
	if (rc < 0)
		_cm_fail(file, line, "%s = %" PRIdMAX " < 0 (errno %d: %s)",
			 expr, rc, err, strerror(err));
}

void
print_message(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

void
print_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

/* Runs fn(state) or t->test_func(state) with a jump target; returns the
 * CM_* outcome.  volatile: the values must survive the longjmp. */
static int
cm_call_fixture(CMFixtureFunction fn, void **state)
{
	volatile int status = CM_OK;
	int j;

	cm_active = 1;
	j = setjmp(cm_jmp);
	if (j == 0) {
		if (fn(state) != 0) {
			fprintf(stderr, "fixture returned an error\n");
			status = CM_FAILED;
		}
	} else {
		status = j;
	}
	cm_active = 0;
	return status;
}

static int
cm_call_test(CMUnitTestFunction fn, void **state)
{
	volatile int status = CM_OK;
	int j;

	cm_active = 1;
	j = setjmp(cm_jmp);
	if (j == 0)
		fn(state);
	else
		status = j;
	cm_active = 0;
	return status;
}

int
_cmocka_run_group_tests(const char *group, const struct CMUnitTest *tests,
			size_t n, CMFixtureFunction gsetup,
			CMFixtureFunction gteardown)
{
	void *gstate = NULL;
	size_t i, passed = 0, failed = 0, skipped = 0;
	const char **failed_names = calloc(n ? n : 1, sizeof(*failed_names));

	if (!failed_names)
		return (int)(n ? n : 1);
	printf("[==========] %s: Running %zu test(s).\n", group, n);
	if (gsetup && cm_call_fixture(gsetup, &gstate) != CM_OK) {
		printf("[  ERROR   ] %s: group setup failed\n", group);
		free(failed_names);
		return (int)(n ? n : 1);
	}
	for (i = 0; i < n; i++) {
		const struct CMUnitTest *t = &tests[i];
		void *state = t->initial_state ? t->initial_state : gstate;
		int st = CM_OK;

		printf("[ RUN      ] %s\n", t->name);
		fflush(stdout);
		if (t->setup_func)
			st = cm_call_fixture(t->setup_func, &state);
		if (st == CM_OK)
			st = cm_call_test(t->test_func, &state);
		if (t->teardown_func) {
			int td = cm_call_fixture(t->teardown_func, &state);
			if (st == CM_OK)
				st = td;
		}
		switch (st) {
		case CM_OK:
			printf("[       OK ] %s\n", t->name);
			passed++;
			break;
		case CM_SKIPPED:
			printf("[  SKIPPED ] %s\n", t->name);
			skipped++;
			break;
		default:
			printf("[  FAILED  ] %s\n", t->name);
			failed_names[failed++] = t->name;
			break;
		}
		fflush(stdout);
	}
	if (gteardown && cm_call_fixture(gteardown, &gstate) != CM_OK) {
		printf("[  ERROR   ] %s: group teardown failed\n", group);
		failed++;
	}
	printf("[==========] %s: %zu test(s) run.\n", group, n);
	printf("[  PASSED  ] %zu test(s).\n", passed);
	if (skipped)
		printf("[  SKIPPED ] %zu test(s).\n", skipped);
	if (failed) {
		printf("[  FAILED  ] %zu test(s), listed below:\n", failed);
		for (i = 0; i < failed && failed_names[i]; i++)
			printf("[  FAILED  ] %s\n", failed_names[i]);
	}
	fflush(stdout);
	free(failed_names);
	return (int)failed;
}
