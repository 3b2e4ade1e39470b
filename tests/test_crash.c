/* test_crash.c - crash safety: for a workload of block allocations,
 * partial writes, zeroing and flushes on a dynamic disk, simulate a crash
 * after every single write (that write and all later ones are lost) and
 * demand that the image opens, that check finds nothing but leaked space,
 * and that everything written before the last completed flush reads back.
 * Also fails single writes (EIO) and demands the same of what remains. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_io_fault.h"

#define DISK  (4u << 20)
#define BLOCK (64u << 10)

static uint32_t seed;
static uint32_t
rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* The base image: an empty dynamic disk in memory. */
static uint8_t *base;
static size_t base_len;

static void
make_base(void)
{
	struct vhd_io *io;
	struct vhd_create_opts o = { VHD_TYPE_DYNAMIC, DISK, BLOCK, 0, NULL,
				     NULL };
	size_t n;

	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	assert_int_equal(vhd_create_io(io, &o), 0);
	const uint8_t *d = vhd_io_mem_data(io, &n);
	base = malloc(n);
	memcpy(base, d, n);
	base_len = n;
	io->ops->close(io);
}

struct state {
	uint8_t model[DISK];     /* what the disk holds if nothing is lost */
	uint8_t flushed[DISK];   /* model at the last completed flush */
	uint8_t dirty[DISK];     /* touched since that flush */
};
static struct state st;

/* Runs the workload on v, stopping at the first failing call. */
static void
workload(struct vhd *v, struct vhd_io *fio)
{
	uint8_t buf[3 * BLOCK];

	seed = 42;
	memset(st.model, 0, DISK);
	memset(st.flushed, 0, DISK);
	memset(st.dirty, 0, DISK);
	for (int i = 0; i < 40; i++) {
		uint32_t op = rnd() % 10;
		uint32_t off = rnd() % DISK, len = 1 + rnd() % (2 * BLOCK + 700);
		if (off + len > DISK)
			len = DISK - off;
		int r;
		if (op < 7) {
			for (uint32_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rnd();
			r = vhd_pwrite(v, buf, len, off);
			if (r == 0)
				memcpy(st.model + off, buf, len);
		} else if (op < 9) {
			/* whole aligned blocks get deallocated */
			if (op == 8) {
				off = off / BLOCK * BLOCK;
				len = BLOCK * (1 + rnd() % 2);
				if (off + len > DISK)
					len = DISK - off;
			}
			r = vhd_write_zeroes(v, off, len, 0);
			if (r == 0)
				memset(st.model + off, 0, len);
		} else {
			r = vhd_flush(v);
			if (r == 0 && !fault_io_triggered(fio)) {
				memcpy(st.flushed, st.model, DISK);
				memset(st.dirty, 0, DISK);
			}
			continue;
		}
		/* A failed call may have changed part of the range; the
		 * run stops there (the model no longer knows the disk). */
		memset(st.dirty + off, 1, len);
		if (r < 0)
			return;
	}
}

static int problems;
static void
on_problem(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "warning: ", 9) != 0) {
		problems++;
		print_error("check: %s\n", msg);
	}
}

/* Reopens the bytes the "crash" left and verifies them. */
static void
verify(const uint8_t *data, size_t n, long point)
{
	struct vhd_io *io;
	struct vhd *v;
	struct vhd_open_opts oo = { VHD_OPEN_RDONLY, NULL };
	static uint8_t disk[DISK];
	char path[] = "/tmp/test_crash.XXXXXX";
	int fd, r;

	assert_int_equal(vhd_io_mem_open(&io, data, n), 0);
	r = vhd_open_io(&v, io, &oo);
	if (r < 0)
		print_error("crash point %ld: open: %s\n", point, vhd_errmsg());
	assert_int_equal(r, 0);
	assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
	for (uint32_t i = 0; i < DISK; i++) {
		if (!st.dirty[i] && disk[i] != st.flushed[i]) {
			print_error("crash point %ld: byte %u: expected %u, "
				    "found %u\n", point, i, st.flushed[i],
				    disk[i]);
			fail();
		}
	}
	vhd_close(v);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	problems = 0;
	r = vhd_check(path, 0, on_problem, NULL);
	unlink(path);
	if (r != 0)
		print_error("crash point %ld: check found %d problems\n", point,
			    r);
	assert_int_equal(r, 0);
	assert_int_equal(problems, 0);
}

/* One run with the given fault; returns the number of writes seen. */
static long
run(enum fault_mode mode, long n)
{
	struct vhd_io *mem, *fio;
	struct vhd *v;
	struct vhd_open_opts oo = { VHD_OPEN_RDWR, NULL };
	size_t len;

	assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
	fio = fault_io_wrap(mem, mode, n);
	assert_non_null(fio);
	assert_int_equal(vhd_open_io(&v, fio, &oo), 0);
	workload(v, fio);
	long writes = fault_io_writes(fio);
	vhd_close(v);           /* closes fio, not mem */
	const uint8_t *d = vhd_io_mem_data(mem, &len);
	verify(d, len, n);
	mem->ops->close(mem);
	return writes;
}

static void
test_crash_every_write(void **state)
{
	(void)state;
	make_base();
	long total = run(FAULT_NONE, 0);
	assert_true(total > 20);
	for (long n = 1; n <= total; n++)
		run(FAULT_CRASH, n);
	print_message("crash points tried: %ld\n", total);
	free(base);
}

static void
test_fail_every_write(void **state)
{
	(void)state;
	make_base();
	long total = run(FAULT_NONE, 0);
	for (long n = 1; n <= total; n++)
		run(FAULT_FAIL, n);
	print_message("failed-write points tried: %ld\n", total);
	free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_every_write),
		cmocka_unit_test(test_fail_every_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
