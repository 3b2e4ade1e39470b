/* test_crash.c - crash safety and failure handling, exhaustively.
 *
 * Two workloads (a dynamic disk; a differencing child over a parent file)
 * of block allocations, unaligned and partial-sector writes, write_zeroes
 * (with and without holes), discards of whole blocks and flushes.  Each
 * workload runs once to count its writes N (pwrite, truncate and punch
 * calls reaching the backend); then, for every n in 1..N:
 *  - crash: write n and every later one is lost (a killed process, or a
 *    disk that writes in order);
 *  - power loss: everything up to the last flush is durable, plus a random
 *    subset of the writes since (two subsets per point: the disk may
 *    reorder writes between barriers);
 *  - EIO at write n (later writes work: the workload goes on using the
 *    handle), ENOSPC from write n on, a short write at n (its first half
 *    lands) followed by ENOSPC.
 * Demanded each time: the library call that issued a failing write
 * returns that error; the image opens; vhd_check finds nothing but leaked
 * space (warnings) -- or, where a torn or missing trailing footer is
 * possible (power loss, short writes), vhd_repair restores a clean image;
 * and every byte written before the last completed flush reads back
 * (bytes touched since, or by a failed call, may hold anything).
 * The number of points tried per mode is printed.
 *
 * vhd_merge and vhd_set_parent run on the fault-injecting VFS
 * (lib_io_fault.c: the platform's files, every write-like call of every
 * file counted: pwrite, truncate, punch, create, rename, unlink): a crash
 * at the nth one (it and every later one lost: what a killed process
 * leaves), ENOSPC from the nth on, EIO at the nth only, and for merge a
 * short nth write (half of it lands) then ENOSPC.  After each: the chain
 * reads as before, check passes (warnings allowed; after vhd_repair where
 * a failure may leave a torn footer), and running the operation again
 * completes it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_crash_sweep.h"
#include "lib_io_fault.h"
#include "lib_testutil.h"

#define DISK  (4u << 20)
#define BLOCK (64u << 10)

static uint32_t seed;
static uint32_t
rnd(void)
{
	return tu_rand(&seed);
}

/* The image before the workload (dynamic disk, or the child) and, for
 * the child, its parent file and contents. */
static uint8_t *base;
static size_t base_len;
static char *tmpdir;
static char parent_path[4096];
static uint8_t parent_data[DISK];
static int diff;

struct state {
	uint8_t model[DISK];     /* what the disk holds if nothing is lost */
	uint8_t flushed[DISK];   /* model at the last completed flush */
	uint8_t dirty[DISK];     /* touched since that flush */
	uint8_t unknown[DISK];   /* touched by a failed call since */
	uint8_t touches[DISK];   /* calls that touched it since (max 2) */
};
static struct state st;

static void
keep_base(struct vhd_io *io)
{
	free(base);
	base = crash_sweep_copy(io, &base_len);
}

static void
make_dynamic(void)
{
	struct vhd_io *io;
	struct vhd_create_opts o = { sizeof o,
				     VHD_TYPE_DYNAMIC, DISK, BLOCK, 0, NULL,
				     NULL };

	diff = 0;
	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	assert_int_equal(vhd_create_io(io, &o), 0);
	keep_base(io);
	io->ops->close(io);
	memset(parent_data, 0, DISK);
}

/* A parent file with data in some blocks (whole, partial, none) and a
 * child in memory over it. */
static void
make_diff(void)
{
	struct vhd_create_opts po = { sizeof po,
				      VHD_TYPE_DYNAMIC, DISK, 32u << 10, 0,
				      NULL, NULL };
	struct vhd_create_opts co = { sizeof co,
				      VHD_TYPE_DIFF, 0, BLOCK, 0, parent_path,
				      NULL };
	struct vhd_io *io;
	struct vhd *p;
	uint32_t s = 99;

	diff = 1;
	snprintf(parent_path, sizeof(parent_path), "%s/parent.vhd", tmpdir);
	unlink(parent_path);
	assert_int_equal(vhd_create(parent_path, &po), 0);
	assert_int_equal(vhd_open(&p, parent_path, VHD_OPEN_RDWR), 0);
	tu_fill(parent_data, DISK, &s);
	assert_int_equal(vhd_pwrite(p, parent_data, 1u << 20, 0), 0);
	assert_int_equal(vhd_pwrite(p, parent_data + 2200001, 700000,
				    2200001), 0);
	assert_int_equal(vhd_pread(p, parent_data, DISK, 0), 0);
	vhd_close(p);
	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	io->name = "child.vhd";
	if (vhd_create_io(io, &co) < 0)
		fail_msg("create child: %s", vhd_errmsg());
	keep_base(io);
	io->ops->close(io);
}

static int
open_mem(struct vhd **v, struct vhd_io *io, unsigned flags)
{
	struct vhd_open_opts oo = { sizeof oo,
				    flags, diff ? parent_path : NULL };

	return vhd_open_io(v, io, &oo);
}

/* Runs the workload on v.  n is the failing write (0: none) and want the
 * error it must surface as. */
static void
workload(struct vhd *v, struct vhd_io *fio, long n, int want)
{
	static uint8_t buf[3 * BLOCK];

	seed = 42;
	memcpy(st.model, parent_data, DISK);
	memcpy(st.flushed, parent_data, DISK);
	memset(st.dirty, 0, DISK);
	memset(st.unknown, 0, DISK);
	memset(st.touches, 0, DISK);
	for (int i = 0; i < (diff ? 24 : 36); i++) {
		uint32_t op = rnd() % 10;
		uint32_t off = rnd() % DISK, len = 1 + rnd() % (2 * BLOCK + 700);
		long w0 = fault_io_writes(fio);
		int r;

		if (off + len > DISK)
			len = DISK - off;
		if (op < 6) {
			for (uint32_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rnd();
			r = vhd_pwrite(v, buf, len, off);
			if (r == 0) {
				memcpy(st.model + off, buf, len);
				memset(st.unknown + off, 0, len);
			}
		} else if (op < 9) {
			if (op == 8) {      /* whole blocks: deallocated */
				off = off / BLOCK * BLOCK;
				len = BLOCK * (1 + rnd() % 2);
				if (off + len > DISK)
					len = DISK - off;
				r = vhd_discard(v, off, len);
			} else {
				r = vhd_write_zeroes(v, off, len, op == 7 ?
						     VHD_ZERO_NO_HOLE : 0);
			}
			if (r == 0) {
				memset(st.model + off, 0, len);
				memset(st.unknown + off, 0, len);
			}
		} else {
			r = vhd_flush(v);
			if (r == 0 && !fault_io_triggered(fio)) {
				memcpy(st.flushed, st.model, DISK);
				memset(st.dirty, 0, DISK);
				memset(st.touches, 0, DISK);
			}
			continue;
		}
		memset(st.dirty + off, 1, len);
		for (uint32_t k = off; k < off + len; k++)
			if (st.touches[k] < 2)
				st.touches[k]++;
		if (r < 0)
			memset(st.unknown + off, 1, len);
		/* The call that issued the failing write reports it. */
		if (want && n > w0 && n <= fault_io_writes(fio) &&
		    fault_io_trigger_must_fail(fio) && r != -want)
			fail_msg("write %ld failed with %s, but call %d "
				 "returned %d (%s)", n, strerror(want), i, r,
				 r ? vhd_errmsg() : "success");
	}
}

static int problems;
static void
on_problem(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "warning: ", 9) != 0) {
		problems++;
		if (!arg)
			print_error("check: %s\n", msg);
	}
}

static void
compare(struct vhd *v, const char *what, long point)
{
	static uint8_t disk[DISK];

	assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
	for (uint32_t i = 0; i < DISK; i++) {
		if (i % 4096 == 0 && memcmp(disk + i, st.flushed + i, 4096) == 0) {
			i += 4095;      /* the common case, fast */
			continue;
		}
		if (st.unknown[i] || disk[i] == st.flushed[i])
			continue;
		/* Touched by one call since the flush: its old or its new
		 * content, nothing else (no bit or BAT entry on the disk
		 * before the data it covers). */
		if (st.dirty[i] && (st.touches[i] > 1 ||
				    disk[i] == st.model[i]))
			continue;
		fail_msg("%s %ld: byte %u: expected %u%s, found %u", what,
			 point, i, st.flushed[i], st.dirty[i] ?
			 " or its new value" : "", disk[i]);
	}
}

static long repairs;

/* Reopens the bytes the crash left and verifies them. */
static void
verify(const uint8_t *data, size_t n, const char *what, long point,
       int may_repair)
{
	struct vhd_io *io;
	struct vhd *v;
	char path[4200];
	unsigned cflags = diff ? VHD_CHECK_NO_PARENT : 0;
	FILE *f;
	int r;

	assert_int_equal(vhd_io_mem_open(&io, data, n), 0);
	r = open_mem(&v, io, VHD_OPEN_RDONLY);
	if (r < 0)
		fail_msg("%s %ld: open: %s", what, point, vhd_errmsg());
	compare(v, what, point);
	vhd_close(v);

	snprintf(path, sizeof(path), "%s/img.vhd", tmpdir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	problems = 0;
	r = vhd_check(path, cflags, on_problem, may_repair ? "quiet" : NULL);
	if (r != 0 && may_repair) {
		r = vhd_repair(path, NULL, NULL);
		if (r <= 0)
			fail_msg("%s %ld: check found problems and repair "
				 "made no fix (%d: %s)", what, point, r,
				 r ? vhd_errmsg() : "");
		repairs++;
		problems = 0;
		r = vhd_check(path, cflags, on_problem, NULL);
		struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY,
					    diff ? parent_path : NULL };
		assert_int_equal(vhd_open_opts(&v, path, &oo), 0);
		compare(v, "after repair: ", point);
		vhd_close(v);
	}
	unlink(path);
	if (r != 0)
		fail_msg("%s %ld: check found %d problems", what, point, r);
	assert_int_equal(problems, 0);
}

/* Every write point of the workload in every fault mode
 * (lib_crash_sweep.c). */
static void
every_point(const char *name)
{
	const struct crash_sweep s = {
		.name = name, .base = base, .base_len = base_len,
		.open_image = open_mem, .workload = workload, .verify = verify,
		.min_writes = 20, .repairs = &repairs,
		.close_writes = 1,
	};

	crash_sweep(&s);
}


/* ---- merge and set-parent, crashed and failed on the fault VFS ---- */
static char base_p[4200], child_p[4200], moved_p[4200];
static uint8_t *pristine[3];
static size_t pristine_len[3];
static uint8_t chain_data[DISK];

static void
save(int k, const char *path)
{
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	free(pristine[k]);
	pristine[k] = malloc(64u << 20);
	assert_non_null(pristine[k]);
	pristine_len[k] = fread(pristine[k], 1, 64u << 20, f);
	fclose(f);
}

static void
restore(int k, const char *path)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(pristine[k], 1, pristine_len[k], f),
			 pristine_len[k]);
	assert_int_equal(fclose(f), 0);
}

/* base_p (some data) <- child_p (writes over it, partial sectors,
 * zeroes), of po's and co's format, the data from seed s; chain_data
 * gets the chain's disk and base_data (if set) the base's. */
static void
build_chain(const struct vhd_create_opts *po, const struct vhd_create_opts *co,
	    uint32_t s, uint8_t *base_data)
{
	struct vhd *v;
	static uint8_t buf[300000];

	unlink(base_p);
	unlink(child_p);
	if (vhd_create(base_p, po) < 0)
		fail_msg("create %s: %s", base_p, vhd_errmsg());
	assert_int_equal(vhd_open(&v, base_p, VHD_OPEN_RDWR), 0);
	tu_fill(buf, sizeof(buf), &s);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 10000), 0);
	assert_int_equal(vhd_pwrite(v, buf, 200000, 3000000), 0);
	if (base_data)
		assert_int_equal(vhd_pread(v, base_data, DISK, 0), 0);
	vhd_close(v);
	if (vhd_create(child_p, co) < 0)
		fail_msg("create %s: %s", child_p, vhd_errmsg());
	assert_int_equal(vhd_open(&v, child_p, VHD_OPEN_RDWR), 0);
	tu_fill(buf, sizeof(buf), &s);
	assert_int_equal(vhd_pwrite(v, buf, 100001, 200003), 0);
	assert_int_equal(vhd_pwrite(v, buf + 7, 777, 1), 0);
	assert_int_equal(vhd_pwrite(v, buf, 150000, 2100000), 0);
	assert_int_equal(vhd_write_zeroes(v, 3050000, 5000, 0), 0);
	assert_int_equal(vhd_pwrite(v, buf, 3000, DISK - 3000), 0);
	assert_int_equal(vhd_pread(v, chain_data, DISK, 0), 0);
	vhd_close(v);
	save(0, base_p);
	save(1, child_p);
}

/* base.vhd <- child.vhd */
static void
make_chain(void)
{
	struct vhd_create_opts po = { sizeof po,
				      VHD_TYPE_DYNAMIC, DISK, 32u << 10, 0,
				      NULL, NULL };
	struct vhd_create_opts co = { sizeof co,
				      VHD_TYPE_DIFF, 0, BLOCK, 0, base_p,
				      NULL };

	snprintf(base_p, sizeof(base_p), "%s/base.vhd", tmpdir);
	snprintf(child_p, sizeof(child_p), "%s/child.vhd", tmpdir);
	snprintf(moved_p, sizeof(moved_p), "%s/moved.vhd", tmpdir);
	build_chain(&po, &co, 5, NULL);
}

static void
expect_reads(const char *path, const char *what, long n)
{
	static uint8_t got[DISK];
	struct vhd *v;

	if (vhd_open(&v, path, VHD_OPEN_RDONLY) < 0)
		fail_msg("%s %ld: open '%s': %s", what, n, path, vhd_errmsg());
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	if (memcmp(got, chain_data, DISK) != 0)
		fail_msg("%s %ld: '%s' no longer reads as before", what, n,
			 path);
	vhd_close(v);
}

static void
expect_clean(const char *path, const char *what, long n, int may_repair)
{
	problems = 0;
	int r = vhd_check(path, 0, on_problem, may_repair ? "q" : NULL);
	if (r != 0 && may_repair) {
		if (vhd_repair(path, NULL, NULL) <= 0)
			fail_msg("%s %ld: check failed, repair fixed nothing",
				 what, n);
		repairs++;
		problems = 0;
		r = vhd_check(path, 0, on_problem, NULL);
	}
	if (r != 0 || problems)
		fail_msg("%s %ld: check '%s' found %d problems", what, n, path,
			 r);
}

static int
do_merge(struct vhd_vfs *vfs)
{
	return vhd_merge_vfs(vfs, child_p, NULL, NULL, NULL);
}

static int
do_setparent(struct vhd_vfs *vfs)
{
	return vhd_set_parent_vfs(vfs, child_p, moved_p, 0);
}

/* The failure modes tried at every write, and the error each must give. */
/* One merge crashed or failed at each of its writes in every mode of
 * crash_fmodes, the chain restored before each point; after(k, n, counts)
 * judges what point n of mode k left (counts: two tallies of its own).
 * Returns the merge's writes. */
static long
merge_every_write(const char *label,
		  void (*after)(int k, long n, long counts[2]),
		  long counts[2])
{
	long total;

	assert_int_equal(fault_vfs_run(do_merge, FAULT_NONE, 0, &total, NULL),
			 0);
	expect_reads(base_p, label, 0);
	assert_true(total > 3);
	for (long n = 1; n <= total; n++) {
		for (int k = 0; k < CRASH_NFMODES; k++) {
			int mf, r;

			restore(0, base_p);
			restore(1, child_p);
			r = fault_vfs_run(do_merge, crash_fmodes[k].mode, n,
					  NULL, &mf);
			crash_expect_error(label, k, n, r, mf);
			after(k, n, counts);
		}
	}
	return total;
}

/* counts: crash points, failure points */
static void
merge_after(int k, long n, long counts[2])
{
	const char *what = crash_fmodes[k].what;

	expect_reads(child_p, what, n);
	/* merge writes `into`: a torn footer there is
	 * repaired in `into` (repair fixes one image) */
	expect_clean(base_p, what, n, crash_fmodes[k].err != 0);
	expect_clean(child_p, what, n, crash_fmodes[k].err != 0);
	/* running it again completes it */
	if (vhd_merge(child_p, NULL, NULL, NULL) < 0)
		fail_msg("merge, %s %ld: merge again: %s", what,
			 n, vhd_errmsg());
	expect_reads(base_p, what, n);
	expect_clean(base_p, what, n, 0);
	counts[crash_fmodes[k].err ? 1 : 0]++;
}

static void
test_merge_crash(void **state)
{
	(void)state;
	long total, counts[2] = { 0, 0 };

	make_chain();
	repairs = 0;
	total = merge_every_write("merge", merge_after, counts);
	print_message("merge: %ld writes: %ld crash points, %ld failure points "
		      "(ENOSPC, short write, EIO; %ld needed repair)\n", total,
		      counts[0], counts[1], repairs);
}

/* The same on a VHDX chain (base.vhdx <- child.avhdx).  The target's
 * first header update gives it the DataWriteGuid the merge recorded
 * first as the child's parent_linkage, so after a crash or failure at
 * every write: the target opens (its log replays) and checks clean, every
 * byte of it reads as before the merge or as the chain did; the child is
 * never stale: it reads as the chain and a second merge completes
 * (tests/test_vhdx_setparent.c tries three-level chains). */
static uint8_t vhdx_base_data[DISK];

static void
make_chain_vhdx(void)
{
	struct vhd_create_opts po = { sizeof po, VHD_TYPE_DYNAMIC, DISK,
				      1u << 20, VHD_CREATE_VHDX, NULL, NULL };
	struct vhd_create_opts co = { sizeof co, VHD_TYPE_DIFF, 0, 1u << 20,
				      VHD_CREATE_VHDX, base_p, NULL };

	snprintf(base_p, sizeof(base_p), "%s/base.vhdx", tmpdir);
	snprintf(child_p, sizeof(child_p), "%s/child.avhdx", tmpdir);
	build_chain(&po, &co, 7, vhdx_base_data);
	assert_memory_not_equal(chain_data, vhdx_base_data, DISK);
}

/* path reads, byte by byte, as before the merge or as the chain. */
static void
expect_old_or_merged(const char *path, const char *what, long n)
{
	static uint8_t got[DISK];
	struct vhd *v;

	if (vhd_open(&v, path, VHD_OPEN_RDONLY) < 0)
		fail_msg("%s %ld: open '%s': %s", what, n, path, vhd_errmsg());
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	vhd_close(v);
	for (size_t i = 0; i < DISK; i++)
		if (got[i] != vhdx_base_data[i] && got[i] != chain_data[i])
			fail_msg("%s %ld: '%s' byte %zu is neither the old nor "
				 "the merged one", what, n, path, i);
}

/* counts: points that left the child stale, points resumed */
static void
merge_after_vhdx(int k, long n, long counts[2])
{
	const char *what = crash_fmodes[k].what;
	struct vhd *v;

	expect_old_or_merged(base_p, what, n);
	expect_clean(base_p, what, n, 0);
	if (vhd_open(&v, child_p, VHD_OPEN_RDONLY) < 0) {
		if (!strstr(vhd_errmsg(), "DataWriteGuid"))
			fail_msg("merge vhdx, %s %ld: child: %s",
				 what, n, vhd_errmsg());
		counts[0]++;
		return;
	}
	vhd_close(v);
	expect_reads(child_p, what, n);
	if (vhd_merge(child_p, NULL, NULL, NULL) < 0)
		fail_msg("merge vhdx, %s %ld: merge again: %s",
			 what, n, vhd_errmsg());
	expect_reads(base_p, what, n);
	counts[1]++;
}

static void
test_merge_crash_vhdx(void **state)
{
	(void)state;
	long total, counts[2] = { 0, 0 };

	make_chain_vhdx();
	total = merge_every_write("merge vhdx", merge_after_vhdx, counts);
	assert_int_equal(counts[0], 0);
	print_message("merge vhdx: %ld writes: %ld points left the child "
		      "stale, %ld resumable\n", total, counts[0], counts[1]);
}

/* Every write of one set-parent killed or failed in turn, to a copy of
 * the parent at DIR/moved.vhd; writes checks the path taken (2: locators
 * before the BAT, then the header; 3: footer, appended locators, header). */
static void
setparent_crash(const char *label, const char *dir, long writes)
{
	long total, kills = 0, fails = 0;
	struct vhd *v;

	make_chain();
	snprintf(moved_p, sizeof(moved_p), "%s/moved.vhd", dir);
	restore(0, moved_p);            /* the parent, copied elsewhere */
	assert_int_equal(fault_vfs_run(do_setparent, FAULT_NONE, 0, &total,
				       NULL), 0);
	assert_int_equal(total, writes);
	save(2, child_p);               /* the result, for comparison */
	repairs = 0;
	for (long n = 1; n <= total; n++) {
		for (int k = 0; k < CRASH_NFMODES; k++) {
			const char *what = crash_fmodes[k].what;
			int mf, r;

			/* Not torn writes: set-parent's header write must
			 * land whole (a torn header fails its checksum and
			 * the child no longer opens; SPEC.md §11). */
			if (crash_fmodes[k].torn)
				continue;
			restore(1, child_p);
			r = fault_vfs_run(do_setparent, crash_fmodes[k].mode, n,
					  NULL, &mf);
			crash_expect_error("set-parent", k, n, r, mf);
			expect_reads(child_p, what, n);
			expect_clean(child_p, what, n,
				     crash_fmodes[k].err != 0);
			if (vhd_set_parent(child_p, moved_p, 0) < 0)
				fail_msg("%s %ld: set-parent again: %s", what,
					 n, vhd_errmsg());
			expect_reads(child_p, what, n);
			assert_int_equal(vhd_open(&v, child_p, VHD_OPEN_RDONLY),
					 0);
			const char *pp = vhd_path(vhd_parent(v));
			if (!strstr(pp, "moved.vhd"))
				fail_msg("%s %ld: parent is '%s' after a rerun",
					 what, n, pp);
			vhd_close(v);
			expect_clean(child_p, what, n, 0);
			if (crash_fmodes[k].err)
				fails++;
			else
				kills++;
		}
	}
	print_message("set-parent, %s: %ld writes: %ld crash points, %ld "
		      "failure points (ENOSPC, EIO; %ld needed repair)\n",
		      label, total, kills, fails, repairs);
}

static void
test_setparent_crash(void **state)
{
	(void)state;
	static char deep[4096];
	size_t k;

	setparent_crash("locators before the BAT", tmpdir, 2);
#ifdef _WIN32
	/* Windows (wine) refuses paths past MAX_PATH (260) here, and the
	 * case below needs one of about 3850 characters: said, not passed. */
	(void)deep;
	(void)k;
	print_message("set-parent, appended locators: NOT RUN on Windows "
		      "(needs a path longer than MAX_PATH)\n");
	return;
#endif
	/* A parent path too long for the room before the BAT: appended.
	 * Made one directory at a time (no shell: this runs on every
	 * platform now). */
	k = (size_t)snprintf(deep, sizeof(deep), "%s", tmpdir);
	while (k < 3850) {      /* about 16 KiB of UTF-16 in all */
		k += (size_t)snprintf(deep + k, sizeof(deep) - k, "/%0100d", 0);
		if (mkdir(deep, 0755) != 0 && errno != EEXIST)
			fail_msg("mkdir '%s': %s", deep, strerror(errno));
	}
	setparent_crash("appended locators", deep, 3);
}

/* ---- resize and compact (on a backend) under power loss and ENOSPC ----
 * test_resize.c and test_compact.c crash them in order and fail single
 * writes; here the disk reorders between barriers, fills up, or tears a
 * write.  Demanded: the image opens, its first min(old, new) bytes read as
 * before, its size is the old or the new one, and check passes (after
 * vhd_repair where a torn footer is possible). */
enum { OP_GROW, OP_SHRINK, OP_COMPACT };

static uint8_t lc_model[DISK];

/* The data: 20 blocks, blocks 3, 4 and 9 zero (but allocated, below:
 * compaction reclaims them and moves the later blocks down). */
static void
make_lifecycle_model(void)
{
	uint32_t s = 3;

	diff = 0;
	memset(lc_model, 0, DISK);
	tu_fill(lc_model, 20 * BLOCK, &s);
	memset(lc_model + 3 * BLOCK, 0, 2 * BLOCK);
	memset(lc_model + 9 * BLOCK, 0, BLOCK);
}

static uint8_t *lc_base;
static size_t lc_len;

static long
lc_run(int op, enum fault_mode mode, long n, uint32_t rseed)
{
	struct vhd_io *mem, *dur = NULL, *fio, *io;
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY, NULL };
	uint64_t ns = op == OP_GROW ? 64u << 20 : op == OP_SHRINK ? DISK / 2 :
		      DISK;
	static uint8_t got[DISK];
	size_t len;
	int r;

	assert_int_equal(vhd_io_mem_open(&mem, lc_base, lc_len), 0);
	if (mode == FAULT_REORDER) {
		assert_int_equal(vhd_io_mem_open(&dur, lc_base, lc_len), 0);
		fio = fault_io_wrap_reorder(mem, dur, n, rseed);
	} else {
		fio = fault_io_wrap(mem, mode, n);
	}
	assert_non_null(fio);
	if (op == OP_COMPACT)
		r = vhd_compact_io(fio, 0, NULL, NULL);
	else
		r = vhd_resize_io(fio, ns, op == OP_SHRINK ? VHD_RESIZE_FORCE :
				  0, NULL, NULL);
	if (mode == FAULT_NONE && r < 0)
		fail_msg("op %d: %s", op, vhd_errmsg());
	if ((mode == FAULT_ENOSPC || mode == FAULT_SHORT) &&
	    fault_io_triggered(fio) && fault_io_trigger_must_fail(fio) &&
	    r != -ENOSPC)
		fail_msg("op %d: write %ld failed with ENOSPC but the call "
			 "returned %d", op, n, r);
	long writes = fault_io_writes(fio);
	fio->ops->close(fio);
	const uint8_t *d = vhd_io_mem_data(dur ? dur : mem, &len);

	/* the bytes, via a file: repair where allowed, then read */
	char path[4200];
	snprintf(path, sizeof(path), "%s/lc.vhd", tmpdir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	mem->ops->close(mem);
	if (dur)
		dur->ops->close(dur);
	problems = 0;
	r = vhd_check(path, 0, on_problem, "q");
	if (r != 0 && mode != FAULT_NONE) {
		if (vhd_repair(path, NULL, NULL) <= 0)
			fail_msg("op %d, fault %d at %ld: check failed and "
				 "repair fixed nothing", op, mode, n);
		repairs++;
		problems = 0;
		r = vhd_check(path, 0, on_problem, NULL);
	}
	if (r != 0 || problems)
		fail_msg("op %d, fault %d at %ld: check found %d problems", op,
			 mode, n, r);
	assert_int_equal(vhd_io_file_open(&io, path, 0), 0);
	if (vhd_open_io(&v, io, &oo) < 0)
		fail_msg("op %d, fault %d at %ld: open: %s", op, mode, n,
			 vhd_errmsg());
	struct vhd_info inf = { .struct_size = sizeof inf };
	assert_int_equal(vhd_get_info(v, &inf), 0);
	if (inf.virtual_size != DISK && inf.virtual_size != ns)
		fail_msg("op %d, fault %d at %ld: size %llu", op, mode, n,
			 (unsigned long long)inf.virtual_size);
	uint64_t keep = ns < DISK ? ns : DISK;
	assert_int_equal(vhd_pread(v, got, keep, 0), 0);
	if (memcmp(got, lc_model, keep) != 0)
		fail_msg("op %d, fault %d at %ld: data changed", op, mode, n);
	vhd_close(v);
	unlink(path);
	return writes;
}

static void
test_lifecycle_powerloss(void **state)
{
	static const char *opname[] = { "resize grow (BAT moves)",
					 "resize shrink", "compact" };
	struct vhd_io *io;
	(void)state;

	make_lifecycle_model();
	{
		struct vhd *v;
		struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
		struct vhd_create_opts o = { sizeof o,
					     VHD_TYPE_DYNAMIC, DISK, BLOCK, 0,
					     NULL, NULL };
		assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
		assert_int_equal(vhd_create_io(io, &o), 0);
		struct vhd_io *wrap = fault_io_wrap(io, FAULT_NONE, 0);
		assert_int_equal(vhd_open_io(&v, wrap, &oo), 0);
		assert_int_equal(vhd_pwrite(v, lc_model, 20 * BLOCK, 0), 0);
		assert_int_equal(vhd_write_zeroes(v, 3 * BLOCK, 2 * BLOCK,
						  VHD_ZERO_NO_HOLE), 0);
		assert_int_equal(vhd_write_zeroes(v, 9 * BLOCK, BLOCK,
						  VHD_ZERO_NO_HOLE), 0);
		vhd_close(v);   /* closes wrap, not io */
		const uint8_t *d = vhd_io_mem_data(io, &lc_len);
		lc_base = malloc(lc_len);
		assert_non_null(lc_base);
		memcpy(lc_base, d, lc_len);
		io->ops->close(io);
	}
	for (int op = 0; op < 3; op++) {
		long total = lc_run(op, FAULT_NONE, 0, 0), points = 0;
		assert_true(total > 0);
		repairs = 0;
		for (long n = 1; n <= total; n++) {
			lc_run(op, FAULT_REORDER, n, (uint32_t)n);
			lc_run(op, FAULT_REORDER, n, (uint32_t)(n * 7919 + 1));
			lc_run(op, FAULT_ENOSPC, n, 0);
			lc_run(op, FAULT_SHORT, n, 0);
			points += 4;
		}
		print_message("%s: %ld writes: %ld points (power loss x2, "
			      "ENOSPC, short write; %ld needed repair)\n",
			      opname[op], total, points, repairs);
	}
	free(lc_base);
}

/* ---- group commit: what an unflushed allocation leaves ---- */
/* Blocks 3, 20 and 40 are fresh in both workloads' images (the parent has
 * data under 3 and 40 only partly, none under 20 beyond its first MiB). */
#define GC_A (3 * BLOCK + 1000)
#define GC_B (20 * BLOCK)
#define GC_C (40 * BLOCK + 4096)
#define GC_LEN 6000u

static void
gc_expect(const uint8_t *model, int dirty_a, int dirty_b)
{
	memcpy(st.model, model, DISK);
	memcpy(st.flushed, parent_data, DISK);
	memset(st.dirty, 0, DISK);
	memset(st.unknown, 0, DISK);
	memset(st.touches, 0, DISK);
	if (dirty_a) {
		memset(st.dirty + GC_A, 1, GC_LEN);
		memset(st.touches + GC_A, 1, GC_LEN);
	}
	if (dirty_b) {
		memset(st.dirty + GC_B, 1, GC_LEN);
		memset(st.touches + GC_B, 1, GC_LEN);
	}
}

/* Allocating writes with no flush, then the process dies (every write it
 * issued is in the file): the blocks read as before (their BAT entries
 * were never written), check finds nothing but leaked space; after a
 * flush the same bytes read back new.  A child's bits set in an allocated
 * block are pending the same way. */
static void
gc_unflushed(const char *name)
{
	static uint8_t model[DISK], buf[GC_LEN], got[GC_LEN];
	struct vhd_io *mem, *fio;
	struct vhd *v;
	uint32_t s = 7;
	size_t n;
	uint8_t *d;

	assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
	fio = fault_io_wrap(mem, FAULT_NONE, 0);
	assert_int_equal(open_mem(&v, fio, VHD_OPEN_RDWR), 0);
	memcpy(model, parent_data, DISK);
	tu_fill(buf, GC_LEN, &s);
	assert_int_equal(vhd_pwrite(v, buf, GC_LEN, GC_A), 0);
	memcpy(model + GC_A, buf, GC_LEN);
	assert_int_equal(vhd_pwrite(v, buf, GC_LEN, GC_B), 0);
	memcpy(model + GC_B, buf, GC_LEN);
	/* The handle reads its own writes at once. */
	assert_int_equal(vhd_pread(v, got, GC_LEN, GC_B), 0);
	assert_memory_equal(got, buf, GC_LEN);

	d = crash_sweep_copy(mem, &n);
	gc_expect(parent_data, 0, 0);           /* exactly the old content */
	verify(d, n, name, 1, 0);
	free(d);

	/* A FUA write into a block still pending (a dynamic one takes no
	 * new bits: only its commit can make it readable) commits it. */
	assert_int_equal(vhd_pwrite_flags(v, buf, 512, GC_A + GC_LEN,
					  VHD_WRITE_FUA), 0);
	memcpy(model + GC_A + GC_LEN, buf, 512);
	d = crash_sweep_copy(mem, &n);
	gc_expect(model, 0, 0);
	memcpy(st.flushed, model, DISK);
	verify(d, n, name, 2, 0);
	free(d);

	assert_int_equal(vhd_flush(v), 0);
	d = crash_sweep_copy(mem, &n);
	gc_expect(model, 0, 0);
	memcpy(st.flushed, model, DISK);        /* exactly the new content */
	verify(d, n, name, 2, 0);
	free(d);

	/* Into the allocated block again, past the first write (its pages'
	 * bits are clear): a child sets bits (pending until the next
	 * commit), a dynamic disk only writes data. */
	uint64_t at = GC_A / BLOCK * BLOCK + 32768;
	assert_int_equal(vhd_pwrite(v, buf, 700, at), 0);
	d = crash_sweep_copy(mem, &n);
	gc_expect(model, 0, 0);
	memcpy(st.flushed, model, DISK);
	if (!diff) {    /* in place: the new bytes are in the file */
		memcpy(st.flushed + at, buf, 700);
	}
	verify(d, n, name, 3, 0);
	free(d);
	memcpy(model + at, buf, 700);
	vhd_close(v);           /* commits */
	d = crash_sweep_copy(mem, &n);
	gc_expect(model, 0, 0);
	memcpy(st.flushed, model, DISK);
	verify(d, n, name, 4, 0);
	free(d);
	mem->ops->close(mem);
	print_message("%s: unflushed allocations read old after a kill, new "
		      "after flush and close\n", name);
}

/* One FUA run: A allocated (no flush), B allocated with FUA, C allocated
 * (no flush).  Returns the writes before and after the FUA call. */
static void
gc_fua_run(enum fault_mode mode, long n, uint32_t rseed, long *w0, long *w1,
	   uint8_t *model)
{
	static uint8_t buf[GC_LEN];
	struct vhd_io *mem, *dur = NULL, *fio;
	struct vhd *v;
	uint32_t s = 11;
	size_t len;

	assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
	if (mode == FAULT_REORDER) {
		assert_int_equal(vhd_io_mem_open(&dur, base, base_len), 0);
		fio = fault_io_wrap_reorder(mem, dur, n, rseed);
	} else {
		fio = fault_io_wrap(mem, mode, n);
	}
	assert_int_equal(open_mem(&v, fio, VHD_OPEN_RDWR), 0);
	memcpy(model, parent_data, DISK);
	tu_fill(buf, GC_LEN, &s);
	assert_int_equal(vhd_pwrite(v, buf, GC_LEN, GC_A), 0);
	memcpy(model + GC_A, buf, GC_LEN);
	*w0 = fault_io_writes(fio);
	tu_fill(buf, GC_LEN, &s);
	assert_int_equal(vhd_pwrite_flags(v, buf, GC_LEN, GC_B,
					  VHD_WRITE_FUA), 0);
	memcpy(model + GC_B, buf, GC_LEN);
	*w1 = fault_io_writes(fio);
	tu_fill(buf, GC_LEN, &s);
	assert_int_equal(vhd_pwrite(v, buf, GC_LEN, GC_C), 0);
	/* The power fails here (mode NONE: reorder past every write). */
	uint8_t *d = crash_sweep_copy(dur ? dur : mem, &len);
	if (mode == FAULT_REORDER && n == LONG_MAX) {
		/* Right after the FUA write: A and B (committed by it) are
		 * new, C is old. */
		gc_expect(model, 0, 0);
		memcpy(st.flushed, model, DISK);
		verify(d, len, "power loss right after a FUA write", 0, 0);
	} else {
		/* Inside the FUA call: each byte of A and B old or new. */
		gc_expect(model, 1, 1);
		verify(d, len, mode == FAULT_CRASH ? "crash in a FUA write" :
		       "power loss in a FUA write", n, 1);
	}
	free(d);
	vhd_close(v);
	mem->ops->close(mem);
	if (dur)
		dur->ops->close(dur);
}

static void
gc_fua(const char *name)
{
	static uint8_t model[DISK];
	long w0, w1, x0, x1, points = 0;

	repairs = 0;
	gc_fua_run(FAULT_REORDER, LONG_MAX, 1, &w0, &w1, model);
	assert_true(w1 > w0);
	for (long n = w0 + 1; n <= w1; n++) {
		gc_fua_run(FAULT_REORDER, n, (uint32_t)n, &x0, &x1, model);
		gc_fua_run(FAULT_REORDER, n, (uint32_t)(n * 7919 + 1), &x0,
			   &x1, model);
		gc_fua_run(FAULT_CRASH, n, 0, &x0, &x1, model);
		points += 3;
	}
	print_message("%s: FUA write of a fresh block: durable right after "
		      "it; %ld writes in it, %ld points (power loss x2, crash; "
		      "%ld needed repair)\n", name, w1 - w0, points, repairs);
}

/* The bound: the 4097th allocation since the last commit commits the 4096
 * before it (SPEC.md 8.1), so a kill then loses at most the rest. */
static void
test_pending_bound(void **state)
{
	const uint32_t bs = 4096, nb = 4096 + 44;
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 4200 * bs, bs), *c;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v, *w;
	uint8_t b[512], got[512], zero[512] = { 0 };
	size_t n;

	(void)state;
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	for (uint32_t i = 0; i < nb; i++) {
		memset(b, (int)(i % 251) + 1, sizeof b);
		assert_int_equal(vhd_pwrite(v, b, sizeof b, (uint64_t)i * bs), 0);
	}
	const uint8_t *d = vhd_io_mem_data(io, &n);
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	oo.flags = VHD_OPEN_RDONLY;
	assert_int_equal(vhd_open_io(&w, c, &oo), 0);
	for (uint32_t i = 0; i < nb; i++) {
		memset(b, (int)(i % 251) + 1, sizeof b);
		assert_int_equal(vhd_pread(w, got, sizeof got, (uint64_t)i * bs), 0);
		if (i < 4096)
			assert_memory_equal(got, b, sizeof b);
		else
			assert_memory_equal(got, zero, sizeof b);
	}
	vhd_close(w);
	vhd_close(v);
}

/* A BAT sector written outside a commit (a discard) shows the entries
 * still pending in it as unused: their data is not behind a barrier. */
static void
test_pending_masked(void **state)
{
	const uint32_t bs = 4096;
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 64 * bs, bs), *c;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v, *w;
	uint8_t b[512], got[512], zero[512] = { 0 };
	size_t n;

	(void)state;
	memset(b, 0x77, sizeof b);
	/* Through a wrapper: closing v leaves io open to look at. */
	assert_int_equal(vhd_open_io(&v, fault_io_wrap(io, FAULT_NONE, 0), &oo),
			 0);
	assert_int_equal(vhd_pwrite(v, b, sizeof b, 2 * bs), 0);
	assert_int_equal(vhd_flush(v), 0);      /* block 2 committed */
	assert_int_equal(vhd_pwrite(v, b, sizeof b, 0), 0);
	assert_int_equal(vhd_pwrite(v, b, sizeof b, bs), 0);
	/* Block 0 pending, dropped: its sector (with 1, pending) written. */
	assert_int_equal(vhd_discard(v, 0, bs), 0);
	/* Block 2 committed, dropped: the same sector again. */
	assert_int_equal(vhd_discard(v, 2 * bs, bs), 0);
	assert_int_equal(vhd_pread(v, got, sizeof got, bs), 0);
	assert_memory_equal(got, b, sizeof b);  /* the handle sees block 1 */
	const uint8_t *d = vhd_io_mem_data(io, &n);
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	oo.flags = VHD_OPEN_RDONLY;
	assert_int_equal(vhd_open_io(&w, c, &oo), 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(vhd_pread(w, got, sizeof got, i * bs), 0);
		assert_memory_equal(got, zero, sizeof got);
	}
	vhd_close(w);
	vhd_close(v);           /* commits block 1 */
	d = vhd_io_mem_data(io, &n);
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	assert_int_equal(vhd_open_io(&w, c, &oo), 0);
	assert_int_equal(vhd_pread(w, got, sizeof got, bs), 0);
	assert_memory_equal(got, b, sizeof got);
	assert_int_equal(vhd_pread(w, got, sizeof got, 0), 0);
	assert_memory_equal(got, zero, sizeof got);
	vhd_close(w);
	io->ops->close(io);
}

static void
test_dynamic(void **state)
{
	(void)state;
	make_dynamic();
	every_point("dynamic");
	gc_unflushed("dynamic");
	gc_fua("dynamic");
}

static void
test_differencing(void **state)
{
	(void)state;
	make_diff();
	every_point("differencing");
	gc_unflushed("differencing");
	gc_fua("differencing");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_bound),
		cmocka_unit_test(test_pending_masked),
		cmocka_unit_test(test_dynamic),
		cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_merge_crash),
		cmocka_unit_test(test_merge_crash_vhdx),
		cmocka_unit_test(test_setparent_crash),
		cmocka_unit_test(test_lifecycle_powerloss),
	};
	tmpdir = tu_tmpdir();
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	tu_rmrf(tmpdir);
	free(tmpdir);
	free(base);
	for (int k = 0; k < 3; k++)
		free(pristine[k]);
	return r;
}
