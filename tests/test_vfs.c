/* test_vfs.c - the storage layer (struct vhd_vfs): a whole chain served
 * from the in-memory namespace (create, open with parents found by their
 * locators, locks, merge, set-parent after a rename, loops), the default
 * VFS routing the name-only calls, the checks on a caller's VFS, and
 * merge crashed at every write on the fault VFS over the memory one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_io_fault.h"
#include "lib_testutil.h"

#define DISK  (4u << 20)
#define BLOCK (64u << 10)

static uint8_t expect[DISK];

static int
open_flags(struct vhd **v, struct vhd_vfs *vfs, const char *name,
	   unsigned flags)
{
	struct vhd_open_opts oo = { sizeof oo, flags, NULL };

	return vhd_open_vfs(v, vfs, name, &oo);
}

/* base (dynamic, data) <- child (differencing, data over it), in vfs;
 * expect[] gets what the chain reads. */
static void
make_chain(struct vhd_vfs *vfs, const char *base, const char *child)
{
	struct vhd_create_opts po = { .struct_size = sizeof po,
				      .type = VHD_TYPE_DYNAMIC, .size = DISK,
				      .block_size = BLOCK };
	struct vhd_create_opts co = { .struct_size = sizeof co,
				      .type = VHD_TYPE_DIFF,
				      .block_size = BLOCK, .parent = base };
	static uint8_t buf[300000];
	uint32_t s = 7;
	struct vhd *v;

	assert_int_equal(vhd_create_vfs(vfs, base, &po), 0);
	assert_int_equal(open_flags(&v, vfs, base, VHD_OPEN_RDWR), 0);
	tu_fill(buf, sizeof(buf), &s);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 12345), 0);
	assert_int_equal(vhd_pwrite(v, buf, 100000, 3000000), 0);
	vhd_close(v);
	assert_int_equal(vhd_create_vfs(vfs, child, &co), 0);
	assert_int_equal(open_flags(&v, vfs, child, VHD_OPEN_RDWR), 0);
	tu_fill(buf, sizeof(buf), &s);
	assert_int_equal(vhd_pwrite(v, buf, 70001, 200003), 0);
	assert_int_equal(vhd_pwrite(v, buf, 5000, DISK - 5000), 0);
	assert_int_equal(vhd_pread(v, expect, DISK, 0), 0);
	vhd_close(v);
}

static void
expect_reads(struct vhd_vfs *vfs, const char *name)
{
	static uint8_t got[DISK];
	struct vhd *v;

	if (open_flags(&v, vfs, name, VHD_OPEN_RDONLY) < 0)
		fail_msg("open '%s': %s", name, vhd_errmsg());
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	if (memcmp(got, expect, DISK) != 0)
		fail_msg("'%s' does not read as expected", name);
	vhd_close(v);
}

/* The chain lives in memory only: the parent is found through the VFS by
 * the child's locators, and no such file exists on disk. */
static void
test_mem_chain(void **state)
{
	struct vhd_vfs *mem;
	struct vhd *v;

	(void)state;
	assert_int_equal(vhd_vfs_mem_new(&mem), 0);
	make_chain(mem, "imgs/base.vhd", "imgs/child.vhd");
	assert_int_equal(access("imgs/base.vhd", F_OK), -1);
	expect_reads(mem, "imgs/child.vhd");
	/* Other spellings of the same name. */
	expect_reads(mem, "/imgs/./x/../child.vhd");
	assert_int_equal(open_flags(&v, mem, "imgs/child.vhd", 0), 0);
	assert_int_equal(vhd_chain_depth(v), 2);
	assert_non_null(strstr(vhd_path(vhd_parent(v)), "base.vhd"));
	vhd_close(v);
	/* The platform's VFS knows nothing of it. */
	assert_int_equal(vhd_open(&v, "imgs/child.vhd", 0), -ENOENT);
	/* A parent that is gone is reported as missing. */
	assert_int_equal(mem->delete_name(mem, "imgs/base.vhd"), 0);
	assert_int_equal(open_flags(&v, mem, "imgs/child.vhd", 0), -ENOENT);
	assert_non_null(strstr(vhd_errmsg(), "parent not found"));
	vhd_vfs_mem_free(mem);
}

/* Locks between opens of the memory VFS follow the disk's rules. */
static void
test_mem_locks(void **state)
{
	struct vhd_vfs *mem;
	struct vhd *w, *r, *x;

	(void)state;
	assert_int_equal(vhd_vfs_mem_new(&mem), 0);
	make_chain(mem, "base.vhd", "child.vhd");
	assert_int_equal(open_flags(&w, mem, "child.vhd", VHD_OPEN_RDWR), 0);
	/* a second writer, a consistent reader: refused */
	assert_int_equal(open_flags(&x, mem, "child.vhd", VHD_OPEN_RDWR),
			 -EBUSY);
	assert_int_equal(open_flags(&x, mem, "child.vhd", 0), -EBUSY);
	/* force-share reads anyway */
	assert_int_equal(open_flags(&r, mem, "child.vhd",
				    VHD_OPEN_FORCE_SHARE), 0);
	vhd_close(r);
	/* the parent is held by a reader's lock: no writer */
	assert_int_equal(open_flags(&x, mem, "base.vhd", VHD_OPEN_RDWR),
			 -EBUSY);
	assert_int_equal(open_flags(&r, mem, "base.vhd", 0), 0);
	vhd_close(r);
	/* merge needs the child exclusively */
	assert_int_equal(vhd_merge_vfs(mem, "child.vhd", NULL, NULL, NULL),
			 -EBUSY);
	vhd_close(w);
	assert_int_equal(open_flags(&x, mem, "base.vhd", VHD_OPEN_RDWR), 0);
	vhd_close(x);
	vhd_vfs_mem_free(mem);
}

/* merge and set-parent on the memory VFS; a renamed parent is found
 * again by set-parent; a loop is refused by identity. */
static void
test_mem_merge_setparent(void **state)
{
	struct vhd_vfs *mem;
	struct vhd *v;
	struct vhd_create_opts co = { .struct_size = sizeof co,
				      .type = VHD_TYPE_DIFF,
				      .block_size = BLOCK,
				      .parent = "a/child.vhd" };

	(void)state;
	assert_int_equal(vhd_vfs_mem_new(&mem), 0);
	make_chain(mem, "a/base.vhd", "a/child.vhd");
	assert_int_equal(mem->rename_name(mem, "a/base.vhd", "b/moved.vhd"), 0);
	assert_int_equal(open_flags(&v, mem, "a/child.vhd", 0), -ENOENT);
	assert_int_equal(vhd_set_parent_vfs(mem, "a/child.vhd", "b/moved.vhd",
					    0), 0);
	expect_reads(mem, "a/child.vhd");
	assert_int_equal(open_flags(&v, mem, "a/child.vhd", 0), 0);
	assert_non_null(strstr(vhd_path(vhd_parent(v)), "b/moved.vhd"));
	vhd_close(v);
	/* a grandchild; making it the child's parent would loop */
	assert_int_equal(vhd_create_vfs(mem, "c/grand.vhd", &co), 0);
	assert_int_equal(vhd_set_parent_vfs(mem, "a/child.vhd", "c/grand.vhd",
					    VHD_SET_PARENT_FORCE), -EINVAL);
	assert_non_null(strstr(vhd_errmsg(), "loop"));
	assert_int_equal(vhd_set_parent_vfs(mem, "a/child.vhd", "a/child.vhd",
					    VHD_SET_PARENT_FORCE), -EINVAL);
	/* merge: the parent then reads as the chain did */
	assert_int_equal(vhd_merge_vfs(mem, "a/child.vhd", NULL, NULL, NULL), 0);
	expect_reads(mem, "b/moved.vhd");
	expect_reads(mem, "c/grand.vhd");
	vhd_vfs_mem_free(mem);
}

/* The calls that take only a name use the default VFS. */
static void
test_default_vfs(void **state)
{
	struct vhd_vfs *mem;
	struct vhd *v;

	(void)state;
	assert_ptr_equal(vhd_vfs_default(), vhd_vfs_platform());
	assert_int_equal(vhd_vfs_mem_new(&mem), 0);
	assert_int_equal(vhd_vfs_set_default(mem), 0);
	assert_ptr_equal(vhd_vfs_default(), mem);
	make_chain(NULL, "base.vhd", "child.vhd");      /* NULL: the default */
	assert_int_equal(vhd_open(&v, "child.vhd", 0), 0);
	vhd_close(v);
	assert_int_equal(vhd_probe("child.vhd"), 1);
	assert_int_equal(vhd_check("child.vhd", 0, NULL, NULL), 0);
	assert_int_equal(vhd_repair("child.vhd", NULL, NULL), 0);
	if (vhd_resize("base.vhd", 2 * DISK, 0, NULL, NULL) != 0)
		fail_msg("resize: %s", vhd_errmsg());
	if (vhd_compact("base.vhd", NULL, 0, NULL, NULL) != 0)
		fail_msg("compact: %s", vhd_errmsg());
	assert_int_equal(vhd_merge("child.vhd", NULL, NULL, NULL), 0);
	expect_reads(NULL, "base.vhd");
	assert_int_equal(access("child.vhd", F_OK), -1);       /* not on disk */
	assert_int_equal(vhd_vfs_set_default(NULL), 0);
	assert_ptr_equal(vhd_vfs_default(), vhd_vfs_platform());
	assert_int_equal(vhd_open(&v, "child.vhd", 0), -ENOENT);
	vhd_vfs_mem_free(mem);
}

/* A VFS of an unknown version or with a member missing is refused. */
static void
test_vfs_refused(void **state)
{
	struct vhd_vfs *mem, bad;
	struct vhd *v;
	struct vhd_create_opts po = { .struct_size = sizeof po,
				      .type = VHD_TYPE_DYNAMIC, .size = DISK };

	(void)state;
	assert_int_equal(vhd_vfs_mem_new(&mem), 0);
	bad = *mem;
	bad.version = 99;
	assert_int_equal(vhd_open_vfs(&v, &bad, "x.vhd", NULL), -EINVAL);
	assert_non_null(strstr(vhd_errmsg(), "version 99"));
	assert_int_equal(vhd_create_vfs(&bad, "x.vhd", &po), -EINVAL);
	assert_int_equal(vhd_vfs_set_default(&bad), -EINVAL);
	bad = *mem;
	bad.identity = NULL;
	assert_int_equal(vhd_merge_vfs(&bad, "x.vhd", NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(vhd_set_parent_vfs(&bad, "x.vhd", "y.vhd", 0),
			 -EINVAL);
	assert_ptr_equal(vhd_vfs_default(), vhd_vfs_platform());
	/* nothing was created */
	assert_int_equal(vhd_open_vfs(&v, mem, "x.vhd", NULL), -ENOENT);
	vhd_vfs_mem_free(mem);
}

/* Files of the memory VFS: a snapshot and its restoration. */
static uint8_t *snap[2];
static size_t snap_len[2];

static void
save(struct vhd_vfs *mem, int k, const char *name)
{
	struct vhd_io *io;
	const uint8_t *d;

	assert_int_equal(mem->open_name(mem, name, 0, VHD_LOCK_NONE, &io), 0);
	d = vhd_io_mem_data(io, &snap_len[k]);
	free(snap[k]);
	snap[k] = malloc(snap_len[k]);
	assert_non_null(snap[k]);
	memcpy(snap[k], d, snap_len[k]);
	io->ops->close(io);
}

static void
restore(struct vhd_vfs *mem, int k, const char *name)
{
	struct vhd_io *io;

	assert_int_equal(mem->delete_name(mem, name), 0);
	assert_int_equal(mem->open_name(mem, name, VHD_IO_CREATE, VHD_LOCK_NONE,
				   &io), 0);
	assert_int_equal(io->ops->pwrite(io, snap[k], snap_len[k], 0), 0);
	io->ops->close(io);
}

/* merge crashed and failed at every write, on the fault VFS over the
 * memory VFS: the chain always reads the same and a rerun completes. */
static void
test_mem_merge_faults(void **state)
{
	static const enum fault_mode modes[] = { FAULT_CRASH, FAULT_ENOSPC,
						 FAULT_FAIL };
	struct vhd_vfs *mem, *fv;
	long total, points = 0;

	(void)state;
	assert_int_equal(vhd_vfs_mem_new(&mem), 0);
	make_chain(mem, "base.vhd", "child.vhd");
	save(mem, 0, "base.vhd");
	save(mem, 1, "child.vhd");
	fv = fault_vfs_new(mem, FAULT_NONE, 0);
	assert_int_equal(vhd_merge_vfs(fv, "child.vhd", NULL, NULL, NULL), 0);
	total = fault_vfs_writes(fv);
	fault_vfs_free(fv);
	assert_true(total > 3);
	expect_reads(mem, "base.vhd");
	for (long n = 1; n <= total; n++) {
		for (size_t k = 0; k < 3; k++) {
			int r;

			restore(mem, 0, "base.vhd");
			restore(mem, 1, "child.vhd");
			fv = fault_vfs_new(mem, modes[k], n);
			r = vhd_merge_vfs(fv, "child.vhd", NULL, NULL, NULL);
			if (modes[k] != FAULT_CRASH &&
			    fault_vfs_trigger_must_fail(fv) &&
			    r != (modes[k] == FAULT_FAIL ? -EIO : -ENOSPC))
				fail_msg("merge, mode %zu, write %ld: %d", k, n,
					 r);
			fault_vfs_free(fv);
			expect_reads(mem, "child.vhd");
			assert_int_equal(vhd_merge_vfs(mem, "child.vhd", NULL,
						       NULL, NULL), 0);
			expect_reads(mem, "base.vhd");
			points++;
		}
	}
	print_message("merge on the memory VFS: %ld writes, %ld points\n",
		      total, points);
	free(snap[0]);
	free(snap[1]);
	vhd_vfs_mem_free(mem);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_chain),
		cmocka_unit_test(test_mem_locks),
		cmocka_unit_test(test_mem_merge_setparent),
		cmocka_unit_test(test_default_vfs),
		cmocka_unit_test(test_vfs_refused),
		cmocka_unit_test(test_mem_merge_faults),
	};
	char *dir = tu_tmpdir();
	int r;

	/* Relative names that must not exist on disk are looked for here. */
	if (chdir(dir) != 0)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	if (chdir("/") == 0)
		tu_rmrf(dir);
	free(dir);
	return r;
}
