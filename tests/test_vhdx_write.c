/* test_vhdx_write.c - writing VHDX: creation, writes, zeroing, discards,
 * the log, and crash safety, through the public calls.
 *
 * Round trips: fixed, dynamic (1 MiB and 8 MiB blocks, 512 and 4096-byte
 * logical sectors) and a differencing child over a VHDX parent file run a
 * random workload of unaligned writes, zeroing (with and without holes),
 * discards and flushes against a model; the disk reads as the model, after
 * a reopen too, and the clean close leaves a header naming no log with a
 * higher sequence number than the one it started from.
 *
 * The log: an image crashed right after a log entry became durable (before
 * its sectors reached their place) reads the entry's writes when opened
 * read-only (the file's bytes unchanged) and read-write (the log written
 * back and cleared from the header; both the same disk).
 *
 * Crash safety, as tests/test_crash.c does for VHD: for every write n of
 * the workload (pwrite, truncate, punch): a crash there (write n and every
 * later one lost), a power loss (everything to the last flush plus a
 * random subset since; two subsets), EIO at n, ENOSPC from n, a short
 * write at n.  Each time the call that issued a failing write returns its
 * error; the image opens (its log replayed in memory) and every byte
 * written before the last completed flush reads back; and a read-write
 * open (replay written back) reads the same disk again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "vhdx.h"
#include "vhd_test.h"
#include "lib_crash_sweep.h"
#include "lib_io_fault.h"
#include "lib_testutil.h"

#define MIB  (1u << 20)
#define DISK (8u * MIB)

static uint32_t seed;
static uint32_t
rnd(void)
{
	return tu_rand(&seed);
}

static char *tmpdir;
static char parent_path[4096];
static uint8_t parent_data[DISK];
static int diff;
static uint8_t *base;
static size_t base_len;

struct state {
	uint8_t model[DISK], flushed[DISK], dirty[DISK], unknown[DISK];
};
static struct state st;

static int
setup(void **state)
{
	(void)state;
	tmpdir = tu_tmpdir();
	return tmpdir ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmrf(tmpdir);
	free(tmpdir);
	free(base);
	return 0;
}

static void
keep_base(struct vhd_io *io)
{
	free(base);
	base = crash_sweep_copy(io, &base_len);
}

/* A VHDX parent file with data in some blocks (whole, partial, none). */
static void
make_parent(uint32_t lss)
{
	struct vhd_create_opts po = { .struct_size = sizeof po,
				      .type = VHD_TYPE_DYNAMIC, .size = DISK,
				      .block_size = MIB,
				      .flags = VHD_CREATE_VHDX |
				      (lss == 4096 ? VHD_CREATE_SECTOR_4K : 0) };
	struct vhd *p;
	uint32_t s = 99;

	snprintf(parent_path, sizeof(parent_path), "%s/parent.vhdx", tmpdir);
	unlink(parent_path);
	if (vhd_create(parent_path, &po) < 0)
		fail_msg("create parent: %s", vhd_errmsg());
	assert_int_equal(vhd_open(&p, parent_path, VHD_OPEN_RDWR), 0);
	tu_fill(parent_data, DISK, &s);
	assert_int_equal(vhd_pwrite(p, parent_data, MIB, 0), 0);
	assert_int_equal(vhd_pwrite(p, parent_data + 2200064, 1700000,
				    2200064), 0);
	assert_int_equal(vhd_pread(p, parent_data, DISK, 0), 0);
	vhd_close(p);
}

/* The image before the workload, in memory (base). */
static void
make_image(enum vhd_type type, uint32_t bs, uint32_t lss)
{
	struct vhd_create_opts o = { .struct_size = sizeof o, .type = type,
				     .size = DISK, .block_size = bs,
				     .flags = VHD_CREATE_VHDX |
				     (lss == 4096 ? VHD_CREATE_SECTOR_4K : 0) };
	struct vhd_io *io;

	diff = type == VHD_TYPE_DIFF;
	if (diff) {
		make_parent(lss);
		o.size = 0;
		o.parent = parent_path;
	} else {
		memset(parent_data, 0, DISK);
	}
	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	io->name = "child.avhdx";
	if (vhd_create_io(io, &o) < 0)
		fail_msg("create: %s", vhd_errmsg());
	keep_base(io);
	io->ops->close(io);
}

static int
open_mem(struct vhd **v, struct vhd_io *io, unsigned flags)
{
	struct vhd_open_opts oo = { sizeof oo, flags,
				    diff ? parent_path : NULL };

	return vhd_open_io(v, io, &oo);
}

/* The workload; n the failing write (0: none), want its error. */
static void
workload(struct vhd *v, struct vhd_io *fio, long n, int want, int ops)
{
	static uint8_t buf[3 * MIB];

	seed = 42;
	memcpy(st.model, parent_data, DISK);
	memcpy(st.flushed, parent_data, DISK);
	memset(st.dirty, 0, DISK);
	memset(st.unknown, 0, DISK);
	for (int i = 0; i < ops; i++) {
		uint32_t op = rnd() % 10;
		uint32_t off = rnd() % DISK, len = 1 + rnd() % (2 * MIB + 700);
		long w0 = fio ? fault_io_writes(fio) : 0;
		int r;

		if (op < 2)             /* sector and page sized ones too */
			len = 1 + rnd() % 9000;
		if (off + len > DISK)
			len = DISK - off;
		if (op < 6) {
			for (uint32_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rnd();
			r = vhd_pwrite(v, buf, len, off);
			if (r == 0)
				memcpy(st.model + off, buf, len);
		} else if (op < 9) {
			if (op == 8) {      /* whole blocks */
				off = off / MIB * MIB;
				len = MIB * (1 + rnd() % 2);
				if (off + len > DISK)
					len = DISK - off;
				r = vhd_discard(v, off, len);
			} else {
				r = vhd_write_zeroes(v, off, len, op == 7 ?
						     VHD_ZERO_NO_HOLE : 0);
			}
			if (r == 0)
				memset(st.model + off, 0, len);
		} else {
			r = vhd_flush(v);
			if (r == 0 && (!fio || !fault_io_triggered(fio))) {
				memcpy(st.flushed, st.model, DISK);
				memset(st.dirty, 0, DISK);
			}
			continue;
		}
		if (r < 0 && !fio)
			fail_msg("call %d: %s", i, vhd_errmsg());
		memset(st.dirty + off, 1, len);
		if (r < 0)
			memset(st.unknown + off, 1, len);
		else
			memset(st.unknown + off, 0, len);
		if (want && n > w0 && n <= fault_io_writes(fio) &&
		    fault_io_trigger_must_fail(fio) && r != -want)
			fail_msg("write %ld failed with %s, but call %d "
				 "returned %d (%s)", n, strerror(want), i, r,
				 r ? vhd_errmsg() : "success");
	}
}

/* The disk reads the model (exact: all flushed, nothing lost), or the
 * bytes flushed before a fault (dirty ones may hold anything). */
static void
compare(struct vhd *v, int exact, const char *what, long point)
{
	static uint8_t disk[DISK];

	if (vhd_pread(v, disk, DISK, 0) < 0)
		fail_msg("%s %ld: read: %s", what, point, vhd_errmsg());
	for (uint32_t i = 0; i < DISK; i++) {
		const uint8_t *want = exact ? st.model : st.flushed;
		if (i % 4096 == 0 && memcmp(disk + i, want + i, 4096) == 0) {
			i += 4095;
			continue;
		}
		if (disk[i] == want[i] ||
		    (!exact && (st.dirty[i] || st.unknown[i])))
			continue;
		fail_msg("%s %ld: byte %u: expected %u, found %u", what,
			 point, i, want[i], disk[i]);
	}
}

/* The current header of an image in memory: its sequence number; the
 * log GUID must be zero (a clean image). */
static uint64_t
clean_seq(const uint8_t *img)
{
	static const uint8_t zero16[16];
	uint64_t s1 = get_le64(img + VHDX_HEADER1_OFF + 8);
	uint64_t s2 = get_le64(img + VHDX_HEADER2_OFF + 8);
	const uint8_t *h = img + (s2 > s1 ? VHDX_HEADER2_OFF :
				  VHDX_HEADER1_OFF);

	assert_memory_equal(h + 48, zero16, 16);
	return s1 > s2 ? s1 : s2;
}

static void
roundtrip(enum vhd_type type, uint32_t bs, uint32_t lss)
{
	struct vhd_io *mem;
	struct vhd *v;
	size_t n;

	make_image(type, bs, lss);
	uint64_t seq0 = clean_seq(base);
	assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
	if (open_mem(&v, fault_io_wrap(mem, FAULT_NONE, 0), VHD_OPEN_RDWR) < 0)
		fail_msg("open: %s", vhd_errmsg());
	workload(v, NULL, 0, 0, 60);
	compare(v, 1, "live", 0);
	vhd_close(v);

	const uint8_t *d = vhd_io_mem_data(mem, &n);
	assert_true(clean_seq(d) > seq0);
	struct vhd_io *io2;
	assert_int_equal(vhd_io_mem_open(&io2, d, n), 0);
	if (open_mem(&v, io2, VHD_OPEN_RDONLY) < 0)
		fail_msg("reopen: %s", vhd_errmsg());
	compare(v, 1, "reopened", 0);
	assert_int_equal(v->warnings & VHD_WARN_LOG_REPLAYED, 0);
	vhd_close(v);
	mem->ops->close(mem);
}

static void
test_roundtrip_fixed(void **state)
{
	(void)state;
	roundtrip(VHD_TYPE_FIXED, MIB, 512);
}

static void
test_roundtrip_dynamic(void **state)
{
	(void)state;
	roundtrip(VHD_TYPE_DYNAMIC, MIB, 512);
	roundtrip(VHD_TYPE_DYNAMIC, MIB, 4096);
	roundtrip(VHD_TYPE_DYNAMIC, 8 * MIB, 512);
}

static void
test_roundtrip_diff(void **state)
{
	(void)state;
	roundtrip(VHD_TYPE_DIFF, MIB, 512);
	roundtrip(VHD_TYPE_DIFF, 2 * MIB, 4096);
}

/* Discarding a range of more blocks than one log entry or one batch of
 * punches holds (a file: its blocks stay sparse): every block unmapped,
 * the disk reads zeros, the image reopens clean. */
static void
test_large_discard(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC,
				     .size = UINT64_C(4) << 30,
				     .block_size = MIB,
				     .flags = VHD_CREATE_VHDX };
	struct vhd_info in = { .struct_size = sizeof in };
	char path[4200];
	uint8_t sec[512], back[512];
	struct vhd *v;
	uint64_t run;
	unsigned st;

	(void)state;
	snprintf(path, sizeof(path), "%s/big.vhdx", tmpdir);
	unlink(path);
	assert_int_equal(vhd_create(path, &o), 0);
	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDWR), 0);
	memset(sec, 0xa5, sizeof(sec));
	for (uint64_t b = 0; b < 3000; b++)
		assert_int_equal(vhd_pwrite(v, sec, sizeof(sec),
					    b * MIB + 4096), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 3000);
	assert_int_equal(vhd_discard(v, 0, o.size), 0);
	assert_int_equal(vhd_pread(v, back, sizeof(back), 2999 * MIB + 4096),
			 0);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
	vhd_close(v);
	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 0);
	assert_int_equal(v->warnings & VHD_WARN_LOG_REPLAYED, 0);
	assert_int_equal(vhd_map(v, 0, o.size, &run, &st, NULL), 0);
	assert_true(run == o.size && st == VHD_MAP_ZERO);
	vhd_close(v);
	unlink(path);
}

/* A child of a VHD, a VHD child of a VHDX: refused, naming the format. */
static void
test_mixed_chain_refused(void **state)
{
	struct vhd_create_opts vo = { .struct_size = sizeof vo,
				      .type = VHD_TYPE_DYNAMIC, .size = DISK };
	struct vhd_create_opts co = { .struct_size = sizeof co,
				      .type = VHD_TYPE_DIFF,
				      .flags = VHD_CREATE_VHDX };
	char vhd[4200], child[4200];

	(void)state;
	make_parent(512);
	snprintf(vhd, sizeof(vhd), "%s/p.vhd", tmpdir);
	snprintf(child, sizeof(child), "%s/c.avhdx", tmpdir);
	assert_int_equal(vhd_create(vhd, &vo), 0);
	co.parent = vhd;
	assert_int_equal(vhd_create(child, &co), -ENOTSUP);
	assert_non_null(strstr(vhd_errmsg(), "a VHD image"));
	assert_int_equal(access(child, F_OK), -1);
	co.flags = 0;
	co.parent = parent_path;
	snprintf(child, sizeof(child), "%s/c.vhd", tmpdir);
	assert_int_equal(vhd_create(child, &co), -ENOTSUP);
	assert_non_null(strstr(vhd_errmsg(), "a VHDX image"));
	assert_int_equal(access(child, F_OK), -1);
}

/* The read-write open's write-back of a replay crashed at each of its
 * writes (and failing there with EIO): the image still reads the
 * replayed disk, read-only and read-write. */
static void
replay_crashes(const uint8_t *img, size_t n, const uint8_t *want)
{
	static uint8_t got[DISK];
	struct vhd_io *mem, *fio;
	struct vhd *v;
	long total;

	assert_int_equal(vhd_io_mem_open(&mem, img, n), 0);
	fio = fault_io_wrap(mem, FAULT_NONE, 0);
	assert_int_equal(open_mem(&v, fio, VHD_OPEN_RDWR), 0);
	total = fault_io_writes(fio);
	vhd_close(v);
	mem->ops->close(mem);
	assert_true(total >= 2);        /* a sector, the header */
	for (long k = 1; k <= total; k++) {
		for (int mode = 0; mode < 2; mode++) {
			size_t len;
			assert_int_equal(vhd_io_mem_open(&mem, img, n), 0);
			fio = fault_io_wrap(mem, mode ? FAULT_FAIL : FAULT_CRASH,
					    k);
			if (open_mem(&v, fio, VHD_OPEN_RDWR) == 0)
				vhd_close(v);
			else
				fio->ops->close(fio);
			const uint8_t *d = vhd_io_mem_data(mem, &len);
			for (int rw = 0; rw < 2; rw++) {
				struct vhd_io *io2;
				assert_int_equal(vhd_io_mem_open(&io2, d, len),
						 0);
				if (open_mem(&v, io2, rw ? VHD_OPEN_RDWR :
					     VHD_OPEN_RDONLY) < 0)
					fail_msg("replay crashed at write %ld: "
						 "%s", k, vhd_errmsg());
				assert_int_equal(vhd_pread(v, got, DISK, 0),
						 0);
				if (memcmp(got, want, DISK) != 0)
					fail_msg("replay crashed at write %ld "
						 "(mode %d, rw %d): another disk",
						 k, mode, rw);
				vhd_close(v);
			}
			mem->ops->close(mem);
		}
	}
}

/* With VHDX_DIRTY_OUT set (tests/cli/vhdx_log.sh), the crashed image and
 * the disk our read-only replay reads are left there for QEMU to judge. */
static void
save_dirty(const uint8_t *img, size_t n, const uint8_t *disk)
{
	const char *dir = getenv("VHDX_DIRTY_OUT");
	char path[4200];

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/dirty.vhdx", dir);
	tu_spill(path, img, n);
	snprintf(path, sizeof(path), "%s/dirty.raw", dir);
	tu_spill(path, disk, DISK);
}

/* The last log entry durable, its sectors not yet in place. */
static void
test_log_replay_rdwr(void **state)
{
	struct vhd_io *mem, *fio, *ro;
	struct vhd *v;
	static uint8_t buf[2 * MIB], disk[DISK], disk2[DISK];
	size_t n;
	long total, point = 0;

	(void)state;
	make_image(VHD_TYPE_DYNAMIC, MIB, 512);
	/* Count the writes of one allocating write: the last three are
	 * the log entry, then the two BAT... find the entry: the write
	 * after which the file differs only in its log. */
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
	fio = fault_io_wrap(mem, FAULT_NONE, 0);
	assert_int_equal(open_mem(&v, fio, VHD_OPEN_RDWR), 0);
	long w0 = fault_io_writes(fio);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 3 * MIB + 100), 0);
	total = fault_io_writes(fio);
	vhd_close(v);
	mem->ops->close(mem);
	/* Crash at each write after the header update: the first point
	 * whose image needs a replay is the one right after the entry. */
	for (long k = w0 + 2; k <= total && !point; k++) {
		assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
		fio = fault_io_wrap(mem, FAULT_CRASH, k);
		assert_int_equal(open_mem(&v, fio, VHD_OPEN_RDWR), 0);
		assert_int_equal(vhd_pwrite(v, buf, sizeof(buf),
					    3 * MIB + 100), 0);
		vhd_close(v);
		const uint8_t *d = vhd_io_mem_data(mem, &n);
		uint8_t *copy = malloc(n);
		assert_non_null(copy);
		memcpy(copy, d, n);
		mem->ops->close(mem);
		assert_int_equal(vhd_io_mem_open(&ro, copy, n), 0);
		assert_int_equal(open_mem(&v, fault_io_wrap(ro, FAULT_NONE, 0),
					  VHD_OPEN_RDONLY), 0);
		int replayed = !!(v->warnings & VHD_WARN_LOG_REPLAYED);
		assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
		vhd_close(v);
		const uint8_t *after = vhd_io_mem_data(ro, &n);
		assert_memory_equal(after, copy, n);   /* untouched */
		ro->ops->close(ro);
		if (replayed) {
			point = k;
			save_dirty(copy, n, disk);
			assert_memory_equal(disk + 3 * MIB + 100, buf,
					    sizeof(buf));
			/* read-write: written back, the log cleared */
			assert_int_equal(vhd_io_mem_open(&ro, copy, n), 0);
			assert_int_equal(open_mem(&v, fault_io_wrap(ro,
					 FAULT_NONE, 0), VHD_OPEN_RDWR), 0);
			vhd_close(v);
			d = vhd_io_mem_data(ro, &n);
			(void)clean_seq(d);
			assert_true(memcmp(d, copy, n < base_len ? n :
					   base_len) != 0);
			struct vhd_io *io3;
			assert_int_equal(vhd_io_mem_open(&io3, d, n), 0);
			assert_int_equal(open_mem(&v, io3, VHD_OPEN_RDONLY), 0);
			assert_int_equal(v->warnings & VHD_WARN_LOG_REPLAYED,
					 0);
			assert_int_equal(vhd_pread(v, disk2, DISK, 0), 0);
			assert_memory_equal(disk, disk2, DISK);
			vhd_close(v);
			replay_crashes(copy, n, disk);
			ro->ops->close(ro);
		}
		free(copy);
	}
	assert_true(point > 0);
}

/* ---- every write point ---- */

/* The log makes every point recoverable without repair: may_repair is
 * not used. */
static void
verify(const uint8_t *data, size_t n, const char *what, long point,
       int may_repair)
{
	struct vhd_io *io;
	struct vhd *v;
	uint8_t *copy = malloc(n);

	(void)may_repair;
	assert_non_null(copy);
	memcpy(copy, data, n);
	assert_int_equal(vhd_io_mem_open(&io, copy, n), 0);
	if (open_mem(&v, fault_io_wrap(io, FAULT_NONE, 0), VHD_OPEN_RDONLY) < 0)
		fail_msg("%s %ld: open: %s", what, point, vhd_errmsg());
	compare(v, 0, what, point);
	vhd_close(v);
	size_t n2;
	const uint8_t *d = vhd_io_mem_data(io, &n2);
	if (n2 != n || memcmp(d, copy, n) != 0)
		fail_msg("%s %ld: a read-only open changed the file", what,
			 point);
	/* read-write: the replay written back, the same disk */
	if (open_mem(&v, fault_io_wrap(io, FAULT_NONE, 0), VHD_OPEN_RDWR) < 0)
		fail_msg("%s %ld: read-write open: %s", what, point,
			 vhd_errmsg());
	compare(v, 0, what, point);
	vhd_close(v);
	io->ops->close(io);
	free(copy);
}

static void
sweep_workload(struct vhd *v, struct vhd_io *fio, long n, int want)
{
	workload(v, fio, n, want, diff ? 12 : 18);
}

/* Every write point of the workload in every fault mode
 * (lib_crash_sweep.c). */
static void
every_point(const char *name)
{
	const struct crash_sweep s = {
		.name = name, .base = base, .base_len = base_len,
		.open_image = open_mem, .workload = sweep_workload, .verify = verify,
		.min_writes = 40, .stride = 1,
	};

	crash_sweep(&s);
}

static void
test_crash_dynamic(void **state)
{
	(void)state;
	make_image(VHD_TYPE_DYNAMIC, MIB, 512);
	every_point("dynamic VHDX");
}

static void
test_crash_diff(void **state)
{
	(void)state;
	make_image(VHD_TYPE_DIFF, MIB, 512);
	every_point("differencing VHDX");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_fixed),
		cmocka_unit_test(test_roundtrip_dynamic),
		cmocka_unit_test(test_roundtrip_diff),
		cmocka_unit_test(test_large_discard),
		cmocka_unit_test(test_mixed_chain_refused),
		cmocka_unit_test(test_log_replay_rdwr),
		cmocka_unit_test(test_crash_dynamic),
		cmocka_unit_test(test_crash_diff),
	};
	/* VHDX_DIRTY_OUT: only the test that leaves a dirty image behind
	 * (the cross builds' cmocka has no test filter). */
	const struct CMUnitTest dirty[] = {
		cmocka_unit_test(test_log_replay_rdwr),
	};
	if (getenv("VHDX_DIRTY_OUT"))
		return cmocka_run_group_tests(dirty, setup, teardown);
	return cmocka_run_group_tests(tests, setup, teardown);
}
