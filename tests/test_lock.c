/* test_lock.c - image locks (SPEC.md 8.4): which opens exclude which,
 * the exact lock bytes QEMU's protocol asks for (Linux: read back from
 * /proc/self/fdinfo), the holder named in the message, the bounded wait
 * and its one "waiting" call, and a holder letting go during the wait.
 * QEMU's own tools as the other party: tests/reliability/lock_qemu.sh. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_testutil.h"
#ifdef __linux__
#include <dirent.h>
#include <sys/stat.h>
#endif

static char *dir;
static char img[4200];

static const unsigned modes[3] = {
	VHD_OPEN_RDWR, VHD_OPEN_RDONLY, VHD_OPEN_RDONLY | VHD_OPEN_FORCE_SHARE,
};

/* second open while the first is held: 0 allowed, 1 refused.  A writer
 * keeps writers and consistent readers out; a consistent reader keeps
 * writers out; force-share keeps nobody out and is kept out by nobody. */
static const int refused[3][3] = {
	/* second:  rdwr rdonly force */
	/* rdwr  */ { 1, 1, 0 },
	/* rdonly*/ { 1, 0, 0 },
	/* force */ { 0, 0, 0 },
};

static void
test_matrix(void **state)
{
	(void)state;
	vhd_set_lock_wait(0, NULL, NULL);
	for (int a = 0; a < 3; a++) {
		for (int b = 0; b < 3; b++) {
			struct vhd *v1 = NULL, *v2 = NULL;
			int r;
			assert_int_equal(vhd_open(&v1, img, modes[a]), 0);
			r = vhd_open(&v2, img, modes[b]);
			if (refused[a][b]) {
				if (r != -EBUSY)
					fail_msg("%d then %d: %d, want EBUSY", a, b, r);
				assert_non_null(strstr(vhd_errmsg(), "in use by"));
			} else if (r != 0) {
				fail_msg("%d then %d: %s", a, b, vhd_errmsg());
			}
			vhd_close(v2);
			vhd_close(v1);
		}
	}
	/* force-share is for readers only */
	struct vhd *v = NULL;
	assert_int_equal(vhd_open(&v, img, VHD_OPEN_RDWR |
				  VHD_OPEN_FORCE_SHARE), -EINVAL);
	/* no lock at all: nothing excluded */
	struct vhd *w = NULL;
	assert_int_equal(vhd_open(&w, img, VHD_OPEN_RDWR), 0);
	assert_int_equal(vhd_open(&v, img, VHD_OPEN_RDONLY | VHD_OPEN_NOLOCK), 0);
	vhd_close(v);
	vhd_close(w);
}

#ifdef __linux__
/* The bytes our OFD locks on img cover, as a bit set (100..103: bits
 * 0..3, 200..203: bits 32..35), and the flock kind ('R', 'W' or 0),
 * read from /proc/self/fdinfo. */
static void
locks_held(unsigned long long *bytes, char *flk)
{
	struct stat want, st;
	struct dirent *e;
	DIR *d;
	char path[600], line[256];

	*bytes = 0;
	*flk = 0;
	assert_int_equal(stat(img, &want), 0);
	assert_non_null(d = opendir("/proc/self/fd"));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if (stat(path, &st) < 0 || st.st_ino != want.st_ino ||
		    st.st_dev != want.st_dev)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", e->d_name);
		FILE *fp = fopen(path, "r");
		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp)) {
			char kind[16], type[16];
			long lo = 0, hi = 0;
			int n = sscanf(line, "lock: %*s %15s %*s %15s %*s %*s "
				       "%ld %ld", kind, type, &lo, &hi);
			if (n >= 2 && strcmp(kind, "FLOCK") == 0) {
				*flk = type[0];     /* READ or WRITE */
				continue;
			}
			if (n != 4)
				continue;
			assert_string_equal(kind, "OFDLCK");
			assert_string_equal(type, "READ");   /* only ever shared */
			for (long b = lo; b <= hi; b++) {
				if (b >= 100 && b <= 103)
					*bytes |= 1ull << (b - 100);
				else if (b >= 200 && b <= 203)
					*bytes |= 1ull << (b - 200 + 32);
				else
					fail_msg("lock on byte %ld", b);
			}
		}
		fclose(fp);
	}
	closedir(d);
}

#define B1(b) (1ull << ((b) - 100))
#define B2(b) (1ull << ((b) - 200 + 32))

/* The shapes QEMU 7.2's vpc opens take (read-write, read-only, -U). */
static void
test_qemu_bytes(void **state)
{
	static const unsigned long long want[3] = {
		B1(100) | B1(101) | B1(103) | B2(201) | B2(203),
		B1(100) | B2(201) | B2(203),
		B1(100),
	};
	static const char want_flock[3] = { 'W', 'R', 0 };

	(void)state;
	for (int m = 0; m < 3; m++) {
		struct vhd *v = NULL;
		unsigned long long got;
		char flk;
		assert_int_equal(vhd_open(&v, img, modes[m]), 0);
		locks_held(&got, &flk);
		if (got != want[m])
			fail_msg("mode %d: lock bytes %#llx, want %#llx", m,
				 got, want[m]);
		assert_int_equal(flk, want_flock[m]);
		vhd_close(v);
		locks_held(&got, &flk);
		assert_true(got == 0 && flk == 0);  /* all gone with the handle */
	}
}

/* The message names this program and its pid, and what it does. */
static void
test_holder_named(void **state)
{
	struct vhd *w = NULL, *v = NULL;
	char want[128];

	(void)state;
	vhd_set_lock_wait(0, NULL, NULL);
	assert_int_equal(vhd_open(&w, img, VHD_OPEN_RDWR), 0);
	assert_int_equal(vhd_open(&v, img, VHD_OPEN_RDONLY), -EBUSY);
	snprintf(want, sizeof(want), "in use by test_lock (pid %ld), which "
		 "is writing it", (long)getpid());
	if (!strstr(vhd_errmsg(), want))
		fail_msg("message '%s' lacks '%s'", vhd_errmsg(), want);
	vhd_close(w);
	assert_int_equal(vhd_open(&w, img, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_open(&v, img, VHD_OPEN_RDWR), -EBUSY);
	snprintf(want, sizeof(want), "in use by test_lock (pid %ld), which "
		 "is reading it and keeps writers out", (long)getpid());
	if (!strstr(vhd_errmsg(), want))
		fail_msg("message '%s' lacks '%s'", vhd_errmsg(), want);
	vhd_close(w);
}
#endif

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int waits;
static char wait_msg[512];

static void
on_wait(void *arg, const char *msg, unsigned ms)
{
	(void)arg;
	assert_int_equal(ms, 600);
	waits++;
	snprintf(wait_msg, sizeof(wait_msg), "%s", msg);
}

/* A lock that stays held: wait the whole time, say so once, fail. */
static void
test_wait_bounded(void **state)
{
	struct vhd *w = NULL, *v = NULL;
	double t;

	(void)state;
	assert_int_equal(vhd_open(&w, img, VHD_OPEN_RDWR), 0);
	vhd_set_lock_wait(600, on_wait, NULL);
	waits = 0;
	t = now();
	assert_int_equal(vhd_open(&v, img, VHD_OPEN_RDWR), -EBUSY);
	t = now() - t;
	if (t < 0.55 || t > 3)
		fail_msg("waited %.3f s, want about 0.6", t);
	assert_int_equal(waits, 1);
	assert_non_null(strstr(wait_msg, "in use by"));
	/* 0: no wait, no call */
	vhd_set_lock_wait(0, on_wait, NULL);
	waits = 0;
	t = now();
	assert_int_equal(vhd_open(&v, img, VHD_OPEN_RDONLY), -EBUSY);
	assert_true(now() - t < 0.5);
	assert_int_equal(waits, 0);
	vhd_close(w);
}

static void *
close_later(void *arg)
{
	struct timespec ts = { 0, 30 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	vhd_close(arg);
	return NULL;
}

/* The holder lets go during the wait (a daemon closing the image after
 * fusermount3 -u): the open succeeds, and quietly (under 0.2 s). */
static void
test_wait_released(void **state)
{
	struct vhd *w = NULL, *v = NULL;
	pthread_t th;
	double t;

	(void)state;
	assert_int_equal(vhd_open(&w, img, VHD_OPEN_RDWR), 0);
	vhd_set_lock_wait(600, on_wait, NULL);
	waits = 0;
	assert_int_equal(pthread_create(&th, NULL, close_later, w), 0);
	t = now();
	if (vhd_open(&v, img, VHD_OPEN_RDWR) != 0)
		fail_msg("open after release: %s", vhd_errmsg());
	t = now() - t;
	pthread_join(th, NULL);
	assert_true(t >= 0.02 && t < 0.5);
	assert_int_equal(waits, 0);
	vhd_close(v);
	vhd_set_lock_wait(0, NULL, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix),
#ifdef __linux__
		cmocka_unit_test(test_qemu_bytes),
		cmocka_unit_test(test_holder_named),
#endif
		cmocka_unit_test(test_wait_bounded),
		cmocka_unit_test(test_wait_released),
	};
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC, .size = 8u << 20 };
	int r;

	dir = tu_tmpdir();
	if (!dir)
		return 1;
	snprintf(img, sizeof(img), "%s/img.vhd", dir);
	if (vhd_create(img, &o) < 0) {
		fprintf(stderr, "create: %s\n", vhd_errmsg());
		return 1;
	}
	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_rmrf(dir);
	free(dir);
	return r;
}
