/* test_vhdx_setparent.c - set-parent and merge on VHDX chains, crashed
 * and failed at every write on the fault VFS (lib_io_fault.c: every
 * write-like call of every file counted).
 *
 * The chain: base.vhdx <- mid.avhdx <- top.avhdx, each level with data
 * over the one below (partial sectors, a zeroed range, whole blocks).
 *
 * set-parent: mid.avhdx is pointed at a copy of base.vhdx in another
 * directory.  At every write n, for a crash (write n and every later one
 * lost), ENOSPC from n on, a short write n then ENOSPC, and EIO at n:
 * the call returns the failing write's error; mid opens against the old
 * or the new parent (no third outcome) and top reads as the chain did;
 * check finds no problem in mid; set-parent again completes, after
 * which mid's parent is the copy; and top still opens on mid (set-parent
 * keeps mid's DataWriteGuid: only its locator changed).
 *
 * The same when mid's locator cannot grow in place (the other metadata
 * items packed right behind it, and a new parent deep in a directory
 * tree): the locator moves to the region's free space and the items keep
 * their values; with the region full, set-parent is refused (-ENOSPC,
 * naming the file and the room) and the file's bytes are unchanged.
 *
 * merge: top into mid (the default target) and top --into base (through
 * mid).  At every write n, the same four modes: the chain above the
 * target still opens and reads as before the merge (its image just above
 * the target accepts the target's new DataWriteGuid as parent_linkage2);
 * the target checks clean; the same merge run again completes, after
 * which the target reads as the chain's flattening taken before, and the
 * chain above it still reads the same. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
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

#define DISK (4u << 20)

static char *tmpdir;
static char base_p[4200], mid_p[4200], top_p[4200], moved_p[4200];
static uint8_t chain_data[DISK], mid_data[DISK];
static uint8_t *pristine[4];
static size_t pristine_len[4];
/* VHD_TEST_STRIDE=k: every kth write only (emulated cross builds). */
static long stride = 1;

static void
save(int k, const char *path)
{
	free(pristine[k]);
	pristine[k] = tu_slurp(path, &pristine_len[k]);
	assert_non_null(pristine[k]);
}

static void
restore(int k, const char *path)
{
	tu_spill(path, pristine[k], pristine_len[k]);
}

static void
write_level(const char *path, uint32_t seed, uint64_t shift)
{
	static uint8_t buf[300000];
	struct vhd *v;

	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDWR), 0);
	tu_fill(buf, sizeof(buf), &seed);
	assert_int_equal(vhd_pwrite(v, buf, 100001, 200003 + shift), 0);
	assert_int_equal(vhd_pwrite(v, buf + 7, 777, 1 + shift), 0);
	assert_int_equal(vhd_pwrite(v, buf, 150000, 2100000 - shift), 0);
	assert_int_equal(vhd_write_zeroes(v, 3050000 + shift, 5000, 0), 0);
	assert_int_equal(vhd_pwrite(v, buf, 3000, DISK - 3000 - shift), 0);
	vhd_close(v);
}

static void
read_all(const char *path, uint8_t *out)
{
	struct vhd *v;

	if (vhd_open(&v, path, VHD_OPEN_RDONLY) < 0)
		fail_msg("open '%s': %s", path, vhd_errmsg());
	assert_int_equal(vhd_pread(v, out, DISK, 0), 0);
	vhd_close(v);
}

static void
make_chain(void)
{
	struct vhd_create_opts po = { sizeof po, VHD_TYPE_DYNAMIC, DISK,
				      1u << 20, VHD_CREATE_VHDX, NULL, NULL };
	struct vhd_create_opts co = { sizeof co, VHD_TYPE_DIFF, 0, 1u << 20,
				      VHD_CREATE_VHDX, base_p, NULL };
	static uint8_t base_data[DISK];
	char dir[4200];

	snprintf(base_p, sizeof(base_p), "%s/base.vhdx", tmpdir);
	snprintf(mid_p, sizeof(mid_p), "%s/mid.avhdx", tmpdir);
	snprintf(top_p, sizeof(top_p), "%s/top.avhdx", tmpdir);
	snprintf(dir, sizeof(dir), "%s/moved", tmpdir);
	mkdir(dir, 0700);
	snprintf(moved_p, sizeof(moved_p), "%s/moved/base.vhdx", tmpdir);
	unlink(base_p);
	unlink(mid_p);
	unlink(top_p);
	assert_int_equal(vhd_create(base_p, &po), 0);
	write_level(base_p, 3, 0);
	read_all(base_p, base_data);
	assert_int_equal(vhd_create(mid_p, &co), 0);
	write_level(mid_p, 5, 4096 * 3 + 17);
	read_all(mid_p, mid_data);
	co.parent = mid_p;
	assert_int_equal(vhd_create(top_p, &co), 0);
	write_level(top_p, 9, 70000);
	read_all(top_p, chain_data);
	assert_memory_not_equal(mid_data, base_data, DISK);
	assert_memory_not_equal(chain_data, mid_data, DISK);
	save(0, base_p);
	save(1, mid_p);
	save(2, top_p);
}

static void
expect_reads(const char *path, const uint8_t *want, const char *what,
	     long n)
{
	static uint8_t got[DISK];
	struct vhd *v;

	if (vhd_open(&v, path, VHD_OPEN_RDONLY) < 0)
		fail_msg("%s %ld: open '%s': %s", what, n, path, vhd_errmsg());
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	vhd_close(v);
	if (memcmp(got, want, DISK) != 0)
		fail_msg("%s %ld: '%s' no longer reads as before", what, n,
			 path);
}

static void
expect_clean(const char *path, const char *what, long n)
{
	int problems = 0;
	int r = vhd_check(path, 0, tu_count_problem, &problems);
	if (r != 0 || problems)
		fail_msg("%s %ld: check '%s' found problems (%d: %s)", what, n,
			 path, r, r < 0 ? vhd_errmsg() : "");
}

/* ---- set-parent ---- */

static int
do_setparent(struct vhd_vfs *vfs)
{
	return vhd_set_parent_vfs(vfs, mid_p, moved_p, 0);
}

/* mid's parent's path: 1 the copy, 0 the original. */
static int
mid_parent_is_moved(const char *what, long n)
{
	struct vhd *v;
	int moved;

	if (vhd_open(&v, mid_p, VHD_OPEN_RDONLY) < 0)
		fail_msg("%s %ld: open '%s': %s", what, n, mid_p, vhd_errmsg());
	const char *pp = vhd_path(vhd_parent(v));
	moved = strstr(pp, "/moved/") != NULL;
	if (!moved && strcmp(pp, base_p) != 0 &&
	    !strstr(pp, "base.vhdx"))
		fail_msg("%s %ld: mid's parent is '%s'", what, n, pp);
	vhd_close(v);
	return moved;
}

static void
test_setparent_crash(void **state)
{
	long total, olds = 0, news = 0;
	struct vhd_info in = { .struct_size = sizeof in };
	uint8_t guid0[16];
	struct vhd *v;

	(void)state;
	make_chain();
	restore(0, moved_p);
	assert_int_equal(vhd_open(&v, mid_p, VHD_OPEN_RDONLY |
				  VHD_OPEN_NO_PARENT), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	memcpy(guid0, in.unique_id, 16);
	vhd_close(v);
	assert_int_equal(fault_vfs_run(do_setparent, FAULT_NONE, 0, &total,
				       NULL), 0);
	assert_true(mid_parent_is_moved("set-parent", 0));
	expect_reads(top_p, chain_data, "set-parent", 0);
	/* mid's DataWriteGuid is the one top links to, still. */
	assert_int_equal(vhd_open(&v, mid_p, VHD_OPEN_RDONLY |
				  VHD_OPEN_NO_PARENT), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_memory_equal(in.unique_id, guid0, 16);
	vhd_close(v);
	/* header, log entry, metadata sectors, header: at least 4 */
	assert_true(total >= 4);
	/* Every write, even under VHD_TEST_STRIDE: there are only a few,
	 * and both outcomes must be seen. */
	for (long n = 1; n <= total; n++) {
		for (int k = 0; k < CRASH_NFMODES; k++) {
			const char *what = crash_fmodes[k].what;
			int mf, r;

			restore(1, mid_p);
			r = fault_vfs_run(do_setparent, crash_fmodes[k].mode, n,
					  NULL, &mf);
			crash_expect_error("set-parent", k, n, r, mf);
			if (mid_parent_is_moved(what, n))
				news++;
			else
				olds++;
			expect_reads(top_p, chain_data, what, n);
			expect_reads(mid_p, mid_data, what, n);
			expect_clean(mid_p, what, n);
			if (vhd_set_parent(mid_p, moved_p, 0) < 0)
				fail_msg("%s %ld: set-parent again: %s", what,
					 n, vhd_errmsg());
			if (!mid_parent_is_moved(what, n))
				fail_msg("%s %ld: set-parent again left the "
					 "old parent", what, n);
			expect_reads(top_p, chain_data, what, n);
			expect_clean(mid_p, what, n);
		}
	}
	/* Both outcomes were seen: the switch is the log entry landing. */
	assert_true(olds > 0);
	assert_true(news > 0);
	print_message("set-parent vhdx: %ld writes: %ld points left the old "
		      "parent, %ld the new one\n", total, olds, news);
}

/* ---- a locator that outgrows its place ---- */

#define META (2u << 20)         /* vhdx_create's metadata region */

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* Rewrites mid's metadata items (bytes on disk, no library) so that the
 * parent locator comes first at 64 KiB and the other items right behind
 * it: a longer locator then cannot grow in place.  With fill, an unknown
 * optional item takes the rest of the region: there is no room at all. */
static const uint8_t loc_guid[16] = {
	0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45,
	0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C };

/* The locator item's offset in mid's metadata region (as written: mid
 * has no log to replay after a clean set-parent). */
static uint32_t
locator_offset(void)
{
	size_t n;
	uint8_t *f = tu_slurp(mid_p, &n), *m = f + META;
	uint32_t cnt = m[10] | m[11] << 8, off = 0;

	for (uint32_t i = 0; i < cnt; i++)
		if (memcmp(m + 32 + 32 * i, loc_guid, 16) == 0)
			off = le32(m + 32 + 32 * i + 16);
	free(f);
	return off;
}

static void
locator_first(int fill)
{
	size_t n;
	uint8_t *f = tu_slurp(mid_p, &n), *m = f + META;
	static uint8_t items[65536];
	uint32_t cnt = m[10] | m[11] << 8, at = 65536, li = 99;

	assert_true(n > META + (1u << 20));
	for (uint32_t i = 0; i < cnt; i++)
		if (memcmp(m + 32 + 32 * i, loc_guid, 16) == 0)
			li = i;
	assert_true(li < cnt);
	/* every item's bytes, the locator first, packed from 64 KiB */
	uint32_t order[8], k = 0, pos = 0;
	order[k++] = li;
	for (uint32_t i = 0; i < cnt; i++)
		if (i != li)
			order[k++] = i;
	for (uint32_t j = 0; j < k; j++) {
		uint8_t *e = m + 32 + 32 * order[j];
		uint32_t io = le32(e + 16), il = le32(e + 20);
		memcpy(items + pos, m + io, il);
		put32(e + 16, at + pos);
		pos += il;
	}
	memset(m + 65536, 0, (1u << 20) - 65536);
	memcpy(m + 65536, items, pos);
	if (fill) {
		uint8_t *e = m + 32 + 32 * cnt;
		memset(e, 0x77, 16);            /* an unknown GUID, optional */
		put32(e + 16, at + pos);
		put32(e + 20, (1u << 20) - (at + pos));
		put32(e + 24, 0);
		m[10] = (uint8_t)(cnt + 1);
	}
	tu_spill(mid_p, f, n);
	free(f);
}

/* Directory levels under the new parent: a path of about 420 characters,
 * or 5 levels (about 200) on Windows, where wine refuses paths past
 * MAX_PATH (260); either makes the locator outgrow its place. */
#ifndef DEEP_LEVELS
#ifdef _WIN32
#define DEEP_LEVELS 5
#else
#define DEEP_LEVELS 12
#endif
#endif

/* A new parent deep in a directory tree: a locator longer than mid's. */
static void
deep_parent(char *out, size_t size)
{
	char d[4200];
	int k = snprintf(d, sizeof(d), "%s/moved", tmpdir);

	for (int i = 0; i < DEEP_LEVELS; i++) {
		k += snprintf(d + k, sizeof(d) - (size_t)k,
			      "/a-rather-long-directory-name-%02d", i);
		mkdir(d, 0700);
	}
	assert_true(strlen(d) + 12 < size);
	memcpy(out, d, strlen(d));
	memcpy(out + strlen(d), "/base.vhdx", 11);
	restore(0, out);
}

static int
do_setparent_deep(struct vhd_vfs *vfs)
{
	return vhd_set_parent_vfs(vfs, mid_p, moved_p, 0);
}

static void
test_setparent_relocate(void **state)
{
	struct vhd_info a = { .struct_size = sizeof a };
	struct vhd_info b = { .struct_size = sizeof b };
	struct vhd *v;
	long total;

	(void)state;
	make_chain();
	locator_first(0);
	save(1, mid_p);
	assert_int_equal(locator_offset(), 65536);
	expect_reads(top_p, chain_data, "relocate", 0);
	assert_int_equal(vhd_open(&v, mid_p, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_get_info(v, &a), 0);
	vhd_close(v);
	deep_parent(moved_p, sizeof(moved_p));
	assert_int_equal(fault_vfs_run(do_setparent_deep, FAULT_NONE, 0,
				       &total, NULL), 0);
	assert_true(mid_parent_is_moved("relocate", 0));
	assert_true(locator_offset() > 65536);    /* it moved */
	expect_reads(top_p, chain_data, "relocate", 0);
	expect_clean(mid_p, "relocate", 0);
	/* the items behind the old locator are intact */
	assert_int_equal(vhd_open(&v, mid_p, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_get_info(v, &b), 0);
	vhd_close(v);
	assert_int_equal(a.virtual_size, b.virtual_size);
	assert_int_equal(a.logical_sector_size, b.logical_sector_size);
	assert_int_equal(a.physical_sector_size, b.physical_sector_size);
	assert_int_equal(a.block_size, b.block_size);
	assert_memory_equal(a.disk_id, b.disk_id, 16);
	assert_memory_equal(a.unique_id, b.unique_id, 16);
	char last[40];
	snprintf(last, sizeof(last), "a-rather-long-directory-name-%02d",
		 DEEP_LEVELS - 1);
	assert_non_null(strstr(b.parent_name, last));
	/* every write crashed or failed: old parent or new, never neither */
	for (long n = 1; n <= total; n += stride) {
		for (int k = 0; k < CRASH_NFMODES; k++) {
			int mf, r;
			restore(1, mid_p);
			r = fault_vfs_run(do_setparent_deep,
					  crash_fmodes[k].mode, n, NULL, &mf);
			crash_expect_error("relocate", k, n, r, mf);
			(void)mid_parent_is_moved(crash_fmodes[k].what, n);
			expect_reads(top_p, chain_data, crash_fmodes[k].what,
				     n);
			expect_clean(mid_p, crash_fmodes[k].what, n);
		}
	}

	/* No room left in the metadata region: refused, file unchanged. */
	make_chain();
	locator_first(1);
	save(1, mid_p);
	expect_reads(top_p, chain_data, "full region", 0);
	deep_parent(moved_p, sizeof(moved_p));
	assert_int_equal(vhd_set_parent(mid_p, moved_p, 0), -ENOSPC);
	assert_non_null(strstr(vhd_errmsg(), "mid.avhdx"));
	assert_non_null(strstr(vhd_errmsg(), "no room for a parent locator"));
	{
		size_t n;
		uint8_t *now = tu_slurp(mid_p, &n);
		assert_int_equal(n, pristine_len[1]);
		assert_memory_equal(now, pristine[1], n);
		free(now);
	}
}

/* ---- merge ---- */

static const char *merge_into;

static int
do_merge(struct vhd_vfs *vfs)
{
	return vhd_merge_vfs(vfs, top_p, merge_into, NULL, NULL);
}

static void
merge_crash(const char *into, const char *target)
{
	long total, points = 0;
	const char *label = into ? "merge --into base" : "merge";

	make_chain();
	merge_into = into;
	assert_int_equal(fault_vfs_run(do_merge, FAULT_NONE, 0, &total, NULL),
			 0);
	expect_reads(target, chain_data, label, 0);
	expect_reads(top_p, chain_data, label, 0);
	expect_clean(target, label, 0);
	assert_true(total > 4);
	for (long n = 1; n <= total; n += stride) {
		for (int k = 0; k < CRASH_NFMODES; k++) {
			const char *what = crash_fmodes[k].what;
			int mf, r;

			restore(0, base_p);
			restore(1, mid_p);
			restore(2, top_p);
			r = fault_vfs_run(do_merge, crash_fmodes[k].mode, n,
					  NULL, &mf);
			crash_expect_error(label, k, n, r, mf);
			/* The chain still opens and reads the same. */
			expect_reads(top_p, chain_data, what, n);
			expect_clean(target, what, n);
			/* The same merge again completes it. */
			if (vhd_merge(top_p, into, NULL, NULL) < 0)
				fail_msg("%s, %s %ld: merge again: %s", label,
					 what, n, vhd_errmsg());
			expect_reads(target, chain_data, what, n);
			expect_reads(top_p, chain_data, what, n);
			expect_clean(target, what, n);
			points++;
		}
	}
	print_message("%s vhdx: %ld writes: %ld points, each resumed\n",
		      label, total, points);
}

static void
test_merge_crash_parent(void **state)
{
	(void)state;
	merge_crash(NULL, mid_p);
}

static void
test_merge_crash_into_base(void **state)
{
	(void)state;
	snprintf(base_p, sizeof(base_p), "%s/base.vhdx", tmpdir);
	merge_crash(base_p, base_p);
}

/* The target written after the merge gets a DataWriteGuid nobody links
 * to: the chain above it is refused then, naming the linkage. */
static void
test_merge_then_write(void **state)
{
	struct vhd *v;
	uint8_t b[512];

	(void)state;
	make_chain();
	assert_int_equal(vhd_merge(top_p, NULL, NULL, NULL), 0);
	expect_reads(top_p, chain_data, "merged", 0);
	assert_int_equal(vhd_open(&v, mid_p, VHD_OPEN_RDWR), 0);
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(vhd_pwrite(v, b, sizeof(b), 0), 0);
	vhd_close(v);
	assert_true(vhd_open(&v, top_p, VHD_OPEN_RDONLY) < 0);
	assert_non_null(strstr(vhd_errmsg(), "DataWriteGuid"));
}

static int
setup(void **state)
{
	(void)state;
	stride = crash_sweep_stride();
	tmpdir = tu_tmpdir();
	return tmpdir ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmrf(tmpdir);
	free(tmpdir);
	for (int k = 0; k < 4; k++)
		free(pristine[k]);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setparent_crash),
		cmocka_unit_test(test_setparent_relocate),
		cmocka_unit_test(test_merge_crash_parent),
		cmocka_unit_test(test_merge_crash_into_base),
		cmocka_unit_test(test_merge_then_write),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
