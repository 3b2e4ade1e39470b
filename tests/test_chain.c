/* test_chain.c - differencing disks on files: create, read and write
 * through a 3-level chain against a model, parent lookup failures, id
 * mismatch, locking, opening without the parent, map depths; whole-page
 * writes into a child from several threads at once (the shared-lock
 * path), also past the bound of changed bitmaps. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include "vhd.h"
#include "lib_testutil.h"

#define DISK (8u << 20)

static char *dir;
static char pa[4200], ch[4200], gc[4200];

static void
mk(const char *path, enum vhd_type t, const char *parent)
{
	struct vhd_create_opts o = { sizeof o,
				     t, parent ? 0 : DISK, 0, 0, parent, NULL };

	if (vhd_create(path, &o) < 0)
		fail_msg("create %s: %s", path, vhd_errmsg());
}

static void
wr(const char *path, uint8_t *model, uint32_t *seed, int n)
{
	struct vhd *v;
	uint8_t buf[20000];

	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDWR), 0);
	for (int i = 0; i < n; i++) {
		uint32_t off = tu_rand(seed) % (DISK - sizeof(buf));
		uint32_t len = 1 + tu_rand(seed) % sizeof(buf);
		if (tu_rand(seed) % 4 == 0) {
			assert_int_equal(vhd_write_zeroes(v, off, len, 0), 0);
			memset(model + off, 0, len);
		} else {
			tu_fill(buf, len, seed);
			assert_int_equal(vhd_pwrite(v, buf, len, off), 0);
			memcpy(model + off, buf, len);
		}
	}
	vhd_close(v);
}

static void
expect_content(const char *path, const uint8_t *model, int depth)
{
	struct vhd *v;
	uint8_t *got = malloc(DISK);

	if (vhd_open(&v, path, 0) < 0)
		fail_msg("open %s: %s", path, vhd_errmsg());
	assert_int_equal(vhd_chain_depth(v), depth);
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	assert_memory_equal(got, model, DISK);
	vhd_close(v);
	free(got);
}

static void
test_chain_rw(void **state)
{
	uint8_t *m1 = calloc(1, DISK), *m2, *m3;
	uint32_t seed = 5;

	(void)state;
	mk(pa, VHD_TYPE_DYNAMIC, NULL);
	wr(pa, m1, &seed, 50);
	mk(ch, VHD_TYPE_NONE, pa);
	m2 = malloc(DISK);
	memcpy(m2, m1, DISK);
	expect_content(ch, m2, 2);
	wr(ch, m2, &seed, 80);
	mk(gc, VHD_TYPE_DIFF, ch);
	m3 = malloc(DISK);
	memcpy(m3, m2, DISK);
	wr(gc, m3, &seed, 80);
	expect_content(pa, m1, 1);
	expect_content(ch, m2, 2);
	expect_content(gc, m3, 3);
	assert_int_equal(vhd_check(gc, 0, NULL, NULL), 0);

	/* Map: each run reports the level holding it. */
	struct vhd *v;
	uint64_t off = 0, run;
	unsigned st;
	int d, seen[4] = { 0 };
	assert_int_equal(vhd_open(&v, gc, 0), 0);
	while (off < DISK) {
		assert_int_equal(vhd_map(v, off, DISK - off, &run, &st, &d), 0);
		assert_true(run > 0 && off + run <= DISK);
		assert_true(d >= -1 && d <= 2);
		assert_int_equal(!!(st & VHD_MAP_DATA), d >= 0);
		seen[d + 1] = 1;
		off += run;
	}
	assert_true(seen[1] && seen[2] && seen[3]);
	/* Locks: the chain's parents are shared-locked, so no writer. */
	struct vhd *w;
	assert_int_equal(vhd_open(&w, pa, VHD_OPEN_RDWR), -EBUSY);
	assert_non_null(strstr(vhd_errmsg(), pa));
	vhd_close(v);
	assert_int_equal(vhd_open(&w, gc, VHD_OPEN_RDWR), 0);
	assert_int_equal(vhd_open(&v, gc, VHD_OPEN_RDWR), -EBUSY);
	assert_int_equal(vhd_open(&v, gc, VHD_OPEN_RDWR | VHD_OPEN_NOLOCK), 0);
	vhd_close(v);
	vhd_close(w);
	free(m1);
	free(m2);
	free(m3);
}

static void
test_parent_problems(void **state)
{
	char moved[4300], other[4300];
	struct vhd *v;
	uint8_t b[512];

	(void)state;
	/* Without the parent: metadata only; reads from it fail. */
	snprintf(moved, sizeof(moved), "%s.away", pa);
	assert_int_equal(rename(pa, moved), 0);
	assert_int_equal(vhd_open(&v, ch, 0), -ENOENT);
	assert_non_null(strstr(vhd_errmsg(), "parent"));
	assert_int_equal(vhd_open(&v, ch, VHD_OPEN_NO_PARENT), 0);
	assert_null(vhd_parent(v));
	int r = vhd_pread(v, b, 512, 0);
	assert_true(r == 0 || r == -ENOTSUP);
	vhd_close(v);
	assert_true(vhd_check(ch, 0, NULL, NULL) > 0);
	/* An explicit parent path overrides the locators. */
	struct vhd_open_opts oo = { sizeof oo, 0, moved };
	assert_int_equal(vhd_open_opts(&v, ch, &oo), 0);
	vhd_close(v);
	assert_int_equal(rename(moved, pa), 0);
	/* A different image under the parent's name: id mismatch. */
	snprintf(other, sizeof(other), "%s/other.vhd", dir);
	mk(other, VHD_TYPE_DYNAMIC, NULL);
	oo.parent_path = other;
	assert_int_equal(vhd_open_opts(&v, ch, &oo), -EBADMSG);
	assert_non_null(strstr(vhd_errmsg(), "unique id"));
	/* Creating over an existing file fails and leaves it alone. */
	struct vhd_create_opts co = { sizeof co,
				      VHD_TYPE_DYNAMIC, DISK, 0, 0, NULL,
				      NULL };
	assert_int_equal(vhd_create(other, &co), -EEXIST);
	assert_int_equal(vhd_open(&v, other, 0), 0);
	vhd_close(v);
}

/* Threads writing whole 4 KiB pages into one child handle: thread t owns
 * the pages p with p % NTHREADS == t, so the result is known whatever the
 * interleaving; some pages are written twice, some not at all (the
 * parent shows there). */
#define NTHREADS 4
#define PAGE 4096u

struct pages {
	struct vhd *v;
	uint8_t *model;         /* page k: what the k-th page stepped on holds */
	uint64_t disk;          /* bytes */
	uint32_t stride;        /* pages a thread steps over (1: every page) */
	uint32_t first;         /* page the steps start from */
	int t, bad;
};

static void *
page_writer(void *arg)
{
	struct pages *w = arg;
	uint32_t seed = 1000 + (uint32_t)w->t, npages = (uint32_t)(w->disk / PAGE);
	uint8_t buf[PAGE];

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t p = w->first + (uint32_t)w->t * w->stride;
		     p < npages; p += NTHREADS * w->stride) {
			if (tu_rand(&seed) % 3 == 0)
				continue;
			tu_fill(buf, sizeof buf, &seed);
			if (vhd_pwrite(w->v, buf, PAGE, (uint64_t)p * PAGE) < 0)
				w->bad++;
			memcpy(w->model + (uint64_t)(p - w->first) / w->stride * PAGE,
			       buf, PAGE);
		}
	}
	return NULL;
}

static void
write_pages(struct vhd *v, uint8_t *model, uint64_t disk, uint32_t stride,
	    uint32_t first)
{
	pthread_t th[NTHREADS];
	struct pages w[NTHREADS];

	for (int t = 0; t < NTHREADS; t++) {
		w[t] = (struct pages){ v, model, disk, stride, first, t, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, page_writer, &w[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].bad, 0);
	}
}

static void
test_child_parallel_pages(void **state)
{
	char pp[4300], pc[4300];
	uint8_t *model = malloc(DISK), *got = malloc(DISK);
	uint32_t seed = 9;
	struct vhd *v;

	(void)state;
	assert_non_null(model);
	assert_non_null(got);
	snprintf(pp, sizeof pp, "%s/pp.vhd", dir);
	snprintf(pc, sizeof pc, "%s/pc.vhd", dir);
	mk(pp, VHD_TYPE_DYNAMIC, NULL);
	assert_int_equal(vhd_open(&v, pp, VHD_OPEN_RDWR), 0);
	tu_fill(model, DISK, &seed);
	assert_int_equal(vhd_pwrite(v, model, DISK, 0), 0);
	vhd_close(v);
	mk(pc, VHD_TYPE_DIFF, pp);
	assert_int_equal(vhd_open(&v, pc, VHD_OPEN_RDWR), 0);
	/* The first pass allocates; the second writes into allocated
	 * blocks with partial bitmaps, several threads at a time. */
	write_pages(v, model, DISK, 1, 0);
	write_pages(v, model, DISK, 1, 0);
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	assert_memory_equal(got, model, DISK);
	vhd_close(v);
	expect_content(pc, model, 2);
	assert_int_equal(vhd_check(pc, 0, NULL, NULL), 0);
	free(model);
	free(got);
}

/* More partially written blocks than the changed-bitmap bound holds
 * (8 MiB: 128 bitmaps of 256 MiB blocks): writers on the shared path
 * find no room and fall back to the exclusive one, which commits first.
 * The files are sparse (a page per block). */
static void
test_child_parallel_bound(void **state)
{
	const uint64_t bs = 256u << 20, disk = 160 * bs;
	char pp[4300], pc[4300];
	struct vhd_create_opts o = { sizeof o, VHD_TYPE_DYNAMIC, disk, (uint32_t)bs,
				     0, NULL, NULL };
	struct vhd *v;
	uint8_t buf[PAGE], want[PAGE], *model;

	(void)state;
	snprintf(pp, sizeof pp, "%s/bp.vhd", dir);
	snprintf(pc, sizeof pc, "%s/bc.vhd", dir);
	assert_int_equal(vhd_create(pp, &o), 0);
	o = (struct vhd_create_opts){ sizeof o, VHD_TYPE_DIFF, 0, (uint32_t)bs,
				      0, pp, NULL };
	assert_int_equal(vhd_create(pc, &o), 0);
	assert_int_equal(vhd_open(&v, pc, VHD_OPEN_RDWR), 0);
	/* One page at the start of every block (allocates), committed. */
	memset(buf, 0xa5, sizeof buf);
	for (uint64_t b = 0; b < disk / bs; b++)
		assert_int_equal(vhd_pwrite(v, buf, PAGE, b * bs), 0);
	assert_int_equal(vhd_flush(v), 0);
	/* Then the page after it in every block, from several threads
	 * (a stride of a block's pages gives each thread whole blocks): new
	 * bits in 160 blocks.  model[b]: page 1 of block b, zeros (the empty
	 * parent) where no thread wrote it. */
	model = calloc(disk / bs, PAGE);
	assert_non_null(model);
	write_pages(v, model, disk, (uint32_t)(bs / PAGE), 1);
	vhd_close(v);
	assert_int_equal(vhd_open(&v, pc, 0), 0);
	assert_int_equal(vhd_check(pc, 0, NULL, NULL), 0);
	memset(want, 0xa5, PAGE);
	for (uint64_t b = 0; b < disk / bs; b++) {
		assert_int_equal(vhd_pread(v, buf, PAGE, b * bs), 0);
		assert_memory_equal(buf, want, PAGE);
		assert_int_equal(vhd_pread(v, buf, PAGE, b * bs + PAGE), 0);
		assert_memory_equal(buf, model + b * PAGE, PAGE);
	}
	free(model);
	vhd_close(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_rw),
		cmocka_unit_test(test_parent_problems),
		cmocka_unit_test(test_child_parallel_pages),
		cmocka_unit_test(test_child_parallel_bound),
	};
	int r;

	dir = tu_tmpdir();
	if (!dir)
		return 1;
	snprintf(pa, sizeof(pa), "%s/parent.vhd", dir);
	snprintf(ch, sizeof(ch), "%s/child.vhd", dir);
	snprintf(gc, sizeof(gc), "%s/grandchild.vhd", dir);
	/* Lock conflicts are asserted: fail them at once, not after 5 s. */
	vhd_set_lock_wait(0, NULL, NULL);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_rmrf(dir);
	free(dir);
	return r;
}
