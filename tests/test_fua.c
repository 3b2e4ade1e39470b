/* test_fua.c - vhd_pwrite_flags(VHD_WRITE_FUA): when it returns, the
 * write and the metadata it changed are on the "disk" (the durable copy
 * of the fault-injecting backend, which only a flush or a durable write
 * reaches), for writes into an allocated block, writes that allocate, and
 * fixed disks; unknown flags are refused without writing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"
#include "lib_io_fault.h"

#define DISK (8u << 20)
#define BS   (2u << 20)

struct rig {
	struct vhd_io *mem, *dur, *fio;
	struct vhd *v;
};

static void
rig_open(struct rig *g, enum vhd_type type)
{
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	const uint8_t *d;
	size_t n;

	g->mem = tu_mem_image(type, DISK, BS);
	assert_non_null(g->mem);
	d = vhd_io_mem_data(g->mem, &n);
	assert_int_equal(vhd_io_mem_open(&g->dur, d, n), 0);
	/* Never "loses power": only what is flushed or written durably
	 * reaches dur. */
	g->fio = fault_io_wrap_reorder(g->mem, g->dur, LONG_MAX, 1);
	assert_non_null(g->fio);
	assert_int_equal(vhd_open_io(&g->v, g->fio, &oo), 0);
}

static void
rig_close(struct rig *g)
{
	vhd_close(g->v);        /* closes fio */
	g->mem->ops->close(g->mem);
	g->dur->ops->close(g->dur);
}

/* What the durable copy holds at off: the image as a crash now leaves it. */
static void
durable_read(struct rig *g, void *buf, size_t n, uint64_t off)
{
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY, NULL };
	const uint8_t *d;
	struct vhd_io *cp;
	struct vhd *v;
	size_t len;

	d = vhd_io_mem_data(g->dur, &len);
	assert_int_equal(vhd_io_mem_open(&cp, d, len), 0);
	if (vhd_open_io(&v, cp, &oo) < 0)
		fail_msg("durable copy does not open: %s", vhd_errmsg());
	assert_int_equal(vhd_pread(v, buf, n, off), 0);
	vhd_close(v);
}

static void
check_durable(struct rig *g, const uint8_t *want, size_t n, uint64_t off)
{
	uint8_t *got = malloc(n);

	assert_non_null(got);
	durable_read(g, got, n, off);
	assert_memory_equal(got, want, n);
	free(got);
}

static void
test_dynamic(void **state)
{
	(void)state;
	struct rig g;
	uint8_t a[8192], b[4096], c[5000];
	uint32_t seed = 5;

	rig_open(&g, VHD_TYPE_DYNAMIC);
	/* Block 0 allocated and flushed. */
	tu_fill(a, sizeof a, &seed);
	assert_int_equal(vhd_pwrite(g.v, a, sizeof a, 0), 0);
	assert_int_equal(vhd_flush(g.v), 0);
	/* A plain write is not on the disk yet: the rig can tell. */
	tu_fill(a, sizeof a, &seed);
	assert_int_equal(vhd_pwrite(g.v, a, 4096, 65536), 0);
	{
		uint8_t got[4096];
		durable_read(&g, got, sizeof got, 65536);
		assert_memory_not_equal(got, a, sizeof got);
	}
	/* FUA into the allocated block. */
	tu_fill(b, sizeof b, &seed);
	assert_int_equal(vhd_pwrite_flags(g.v, b, sizeof b, 8192, VHD_WRITE_FUA), 0);
	check_durable(&g, b, sizeof b, 8192);
	/* FUA that allocates block 2 (unaligned, across sectors): data, BAT
	 * entry and footer all durable. */
	tu_fill(c, sizeof c, &seed);
	assert_int_equal(vhd_pwrite_flags(g.v, c, sizeof c, 2 * BS + 1000,
					  VHD_WRITE_FUA), 0);
	check_durable(&g, c, sizeof c, 2 * BS + 1000);
	/* Across two blocks, one allocated and one not. */
	uint8_t d[8192];
	tu_fill(d, sizeof d, &seed);
	assert_int_equal(vhd_pwrite_flags(g.v, d, sizeof d, BS - 4096,
					  VHD_WRITE_FUA), 0);
	check_durable(&g, d, sizeof d, BS - 4096);
	rig_close(&g);
}

static void
test_fixed(void **state)
{
	(void)state;
	struct rig g;
	uint8_t b[4096];
	uint32_t seed = 9;

	rig_open(&g, VHD_TYPE_FIXED);
	tu_fill(b, sizeof b, &seed);
	assert_int_equal(vhd_pwrite_flags(g.v, b, sizeof b, DISK - 4096,
					  VHD_WRITE_FUA), 0);
	check_durable(&g, b, sizeof b, DISK - 4096);
	rig_close(&g);
}

static void
test_errors(void **state)
{
	(void)state;
	struct rig g;
	uint8_t b[4096], got[4096];
	long w;

	memset(b, 0xab, sizeof b);
	rig_open(&g, VHD_TYPE_DYNAMIC);
	w = fault_io_writes(g.fio);
	assert_int_equal(vhd_pwrite_flags(g.v, b, sizeof b, 0, 0x80), -EINVAL);
	assert_int_equal(vhd_pwrite_flags(g.v, b, sizeof b, DISK,
					  VHD_WRITE_FUA), -ENOSPC);
	assert_int_equal(fault_io_writes(g.fio), w);
	/* Zero length: nothing to do. */
	assert_int_equal(vhd_pwrite_flags(g.v, b, 0, 0, VHD_WRITE_FUA), 0);
	/* Without FUA it is vhd_pwrite(). */
	assert_int_equal(vhd_pwrite_flags(g.v, b, sizeof b, 0, 0), 0);
	assert_int_equal(vhd_pread(g.v, got, sizeof got, 0), 0);
	assert_memory_equal(got, b, sizeof b);
	rig_close(&g);
}

/* The file backend writes durably with one call (pwritev2 RWF_DSYNC
 * where there is one); what the file holds afterwards is the write. */
static void
test_file(void **state)
{
	(void)state;
	char *dir = tu_tmpdir(), path[4096];
	struct vhd_create_opts co = { sizeof co, VHD_TYPE_DYNAMIC, DISK, 0, 0,
				      NULL, NULL };
	uint8_t b[4096], got[4096];
	uint32_t seed = 3;
	struct vhd *v;

	snprintf(path, sizeof path, "%s/f.vhd", dir);
	assert_int_equal(vhd_create(path, &co), 0);
	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDWR), 0);
	tu_fill(b, sizeof b, &seed);
	assert_int_equal(vhd_pwrite_flags(v, b, sizeof b, 12288, VHD_WRITE_FUA), 0);
	tu_fill(b, sizeof b, &seed);
	assert_int_equal(vhd_pwrite_flags(v, b, sizeof b, 12288, VHD_WRITE_FUA), 0);
	vhd_close(v);
	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(v, got, sizeof got, 12288), 0);
	assert_memory_equal(got, b, sizeof b);
	vhd_close(v);

	/* A block allocated by a plain write has its BAT entry pending (group
	 * commit: another opener does not see it yet); a FUA write into it
	 * must commit that entry, not only write its own data durably. */
	struct vhd *w;
	uint8_t a[4096];
	tu_fill(a, sizeof a, &seed);
	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDWR), 0);
	assert_int_equal(vhd_pwrite(v, a, sizeof a, 3u << 20), 0);
	assert_int_equal(vhd_open(&w, path, VHD_OPEN_RDONLY |
				  VHD_OPEN_FORCE_SHARE), 0);
	assert_int_equal(vhd_pread(w, got, sizeof got, 3u << 20), 0);
	vhd_close(w);
	memset(b, 0, sizeof b);
	assert_memory_equal(got, b, sizeof b);  /* the last committed state */
	tu_fill(b, sizeof b, &seed);
	assert_int_equal(vhd_pwrite_flags(v, b, sizeof b, (3u << 20) + 8192,
					  VHD_WRITE_FUA), 0);
	assert_int_equal(vhd_open(&w, path, VHD_OPEN_RDONLY |
				  VHD_OPEN_FORCE_SHARE), 0);
	assert_int_equal(vhd_pread(w, got, sizeof got, (3u << 20) + 8192), 0);
	assert_memory_equal(got, b, sizeof b);
	assert_int_equal(vhd_pread(w, got, sizeof got, 3u << 20), 0);
	assert_memory_equal(got, a, sizeof a);
	vhd_close(w);
	vhd_close(v);
	tu_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
