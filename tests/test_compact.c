/* test_compact.c - vhd_compact: blocks holding only zeros are dropped,
 * the rest packed into the gaps, the file truncated; the disk reads the
 * same.  A crash after every single write (and a failure of each) must
 * leave an image that opens, checks clean but for leaked space, and reads
 * the same.  Also: into another file, differencing disks, fixed refused. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "vhd.h"
#include "lib_io_fault.h"
#include "lib_testutil.h"

#define DISK  (4u << 20)
#define BLOCK (64u << 10)

static uint8_t model[DISK];
static uint8_t *base;
static size_t base_len;
static long crash_points;

/* Blocks with data, blocks written with zeros, discarded blocks (gaps). */
static void
make_base(void)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, DISK, BLOCK);
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	uint8_t *buf = malloc(BLOCK);
	uint32_t seed = 11;
	size_t n;

	assert_non_null(io);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	memset(model, 0, sizeof(model));
	for (uint32_t b = 0; b < DISK / BLOCK; b++) {
		uint64_t off = (uint64_t)b * BLOCK;
		switch (b % 5) {
		case 0:         /* data */
		case 3:
			tu_fill(model + off, BLOCK, &seed);
			assert_int_equal(vhd_pwrite(v, model + off, BLOCK,
						    off), 0);
			break;
		case 1:         /* allocated, zeros */
			memset(buf, 0, BLOCK);
			assert_int_equal(vhd_pwrite(v, buf, BLOCK, off), 0);
			break;
		case 2:         /* allocated, then discarded: a gap */
			tu_fill(buf, BLOCK, &seed);
			assert_int_equal(vhd_pwrite(v, buf, BLOCK, off), 0);
			assert_int_equal(vhd_discard(v, off, BLOCK), 0);
			break;
		default:        /* a few bytes */
			tu_fill(model + off + 700, 10, &seed);
			assert_int_equal(vhd_pwrite(v, model + off + 700, 10,
						    off + 700), 0);
		}
	}
	assert_int_equal(vhd_flush(v), 0);
	const uint8_t *d = vhd_io_mem_data(io, &n);
	base = malloc(n);
	memcpy(base, d, n);
	base_len = n;
	vhd_close(v);
	free(buf);
}

static int problems;

static void
verify(const uint8_t *data, size_t n, long point)
{
	struct vhd_io *io;
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY, NULL };
	static uint8_t disk[DISK];
	char path[] = "/tmp/test_compact.XXXXXX";
	int fd, r;

	assert_int_equal(vhd_io_mem_open(&io, data, n), 0);
	r = vhd_open_io(&v, io, &oo);
	if (r < 0)
		print_error("point %ld: open: %s\n", point, vhd_errmsg());
	assert_int_equal(r, 0);
	assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
	if (memcmp(disk, model, DISK) != 0) {
		print_error("point %ld: the disk reads differently\n", point);
		fail();
	}
	vhd_close(v);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	problems = 0;
	r = vhd_check(path, 0, tu_count_problem, &problems);
	unlink(path);
	assert_int_equal(problems, 0);
	assert_int_equal(r, 0);
}

static long
run(enum fault_mode mode, long n, size_t *out_len)
{
	struct vhd_io *mem, *fio;
	size_t l;

	assert_int_equal(vhd_io_mem_open(&mem, base, base_len), 0);
	fio = fault_io_wrap(mem, mode, n);
	int r = vhd_compact_io(fio, 0, NULL, NULL);
	if (mode == FAULT_NONE) {
		if (r < 0)
			print_error("compact: %s\n", vhd_errmsg());
		assert_int_equal(r, 0);
	}
	long writes = fault_io_writes(fio);
	fio->ops->close(fio);
	const uint8_t *d = vhd_io_mem_data(mem, &l);
	verify(d, l, n);
	if (out_len)
		*out_len = l;
	mem->ops->close(mem);
	return writes;
}

static void
test_compact_smaller_same(void **s)
{
	(void)s;
	size_t len;
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v;
	struct vhd_io *io;

	make_base();
	run(FAULT_NONE, 0, &len);
	/* 64 blocks: 38 hold data (b % 5 in 0, 3, 4), 26 were zeros or
	 * gaps.  The result holds the data blocks, packed 4 KiB aligned
	 * (17 pages each), and the metadata before them. */
	uint64_t blk = 17 * 4096;
	print_message("compacted %zu -> %zu bytes\n", base_len, len);
	assert_true(len < base_len);
	assert_true(len <= 4096 + 38 * blk + 512);
	/* Compacting again changes nothing. */
	assert_int_equal(vhd_io_mem_open(&io, base, base_len), 0);
	assert_int_equal(vhd_compact_io(io, 0, NULL, NULL), 0);
	size_t l1, l2;
	vhd_io_mem_data(io, &l1);
	assert_int_equal(vhd_compact_io(io, 0, NULL, NULL), 0);
	vhd_io_mem_data(io, &l2);
	assert_int_equal(l1, l2);
	assert_int_equal(tu_open_copy(&v, io, 0), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 38);
	vhd_close(v);
	io->ops->close(io);
	free(base);
}

static void
test_crash_every_write(void **s)
{
	(void)s;
	make_base();
	long total = run(FAULT_NONE, 0, NULL);
	assert_true(total > 20);
	for (long n = 1; n <= total; n++) {
		run(FAULT_CRASH, n, NULL);
		run(FAULT_FAIL, n, NULL);
		crash_points++;
	}
	print_message("compact crash points tried: %ld (each also as a "
		      "failed write)\n", crash_points);
	free(base);
}

static void
test_fixed_refused(void **s)
{
	(void)s;
	struct vhd_io *io = tu_mem_image(VHD_TYPE_FIXED, DISK, 0);
	assert_int_equal(vhd_compact_io(io, 0, NULL, NULL), -ENOTSUP);
	io->ops->close(io);
}

static void
test_into_file(void **s)
{
	(void)s;
	char *dir = tu_tmpdir();
	char src[4200], dst[4200];
	struct stat a, b;
	struct vhd *v;
	static uint8_t disk[DISK];

	make_base();
	snprintf(src, sizeof(src), "%s/a.vhd", dir);
	snprintf(dst, sizeof(dst), "%s/b.vhd", dir);
	FILE *f = fopen(src, "wb");
	assert_int_equal(fwrite(base, 1, base_len, f), base_len);
	fclose(f);
	assert_int_equal(vhd_compact(src, dst, 0, NULL, NULL), 0);
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(dst, &b), 0);
	assert_int_equal((size_t)a.st_size, base_len);     /* untouched */
	assert_true(b.st_size < a.st_size);
	assert_int_equal(vhd_open(&v, dst, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
	assert_memory_equal(disk, model, DISK);
	vhd_close(v);
	problems = 0;
	assert_int_equal(vhd_check(dst, 0, tu_count_problem, &problems), 0);
	/* out must not exist */
	assert_int_not_equal(vhd_compact(src, dst, 0, NULL, NULL), 0);
	/* in place on the file */
	assert_int_equal(vhd_compact(src, NULL, 0, NULL, NULL), 0);
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(a.st_size, b.st_size);
	tu_rmrf(dir);
	free(dir);
	free(base);
}

static void
test_differencing(void **s)
{
	(void)s;
	char *dir = tu_tmpdir();
	char parent[4200], child[4200];
	struct vhd_create_opts o;
	struct vhd *v;
	static uint8_t disk[DISK], want[DISK];
	uint32_t seed = 5;
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/p.vhd", dir);
	snprintf(child, sizeof(child), "%s/c.vhd", dir);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.size = DISK;
	o.block_size = BLOCK;
	assert_int_equal(vhd_create(parent, &o), 0);
	assert_int_equal(vhd_open(&v, parent, VHD_OPEN_RDWR), 0);
	tu_fill(want, DISK, &seed);
	assert_int_equal(vhd_pwrite(v, want, DISK, 0), 0);
	vhd_close(v);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.parent = parent;
	o.block_size = BLOCK;
	assert_int_equal(vhd_create(child, &o), 0);
	assert_int_equal(vhd_open(&v, child, VHD_OPEN_RDWR), 0);
	/* Zeros over the parent's data must stay (they hide it). */
	memset(want + BLOCK, 0, BLOCK);
	assert_int_equal(vhd_pwrite(v, want + BLOCK, BLOCK, BLOCK), 0);
	tu_fill(want + 5 * BLOCK, BLOCK, &seed);
	assert_int_equal(vhd_pwrite(v, want + 5 * BLOCK, BLOCK, 5 * BLOCK), 0);
	tu_fill(want + 9 * BLOCK, 3 * BLOCK, &seed);
	assert_int_equal(vhd_pwrite(v, want + 9 * BLOCK, 3 * BLOCK,
				    9 * BLOCK), 0);
	vhd_close(v);
	assert_int_equal(stat(child, &a), 0);
	assert_int_equal(vhd_compact(child, NULL, 0, NULL, NULL), 0);
	assert_int_equal(stat(child, &b), 0);
	assert_true(b.st_size <= a.st_size);
	assert_int_equal(vhd_open(&v, child, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
	assert_memory_equal(disk, want, DISK);
	vhd_close(v);
	problems = 0;
	assert_int_equal(vhd_check(child, 0, tu_count_problem, &problems), 0);
	tu_rmrf(dir);
	free(dir);
}

/* A packed image with 200 bytes leaked before its trailing footer (an odd
 * file size) and an unusable copy at 0: trimming must not write a footer
 * over the start of the old one (a crash before the truncate then left
 * no footer). */
static void
test_trim_unaligned_footer(void **s)
{
	(void)s;
	struct vhd_io *io, *fio;
	struct vhd *v;
	static uint8_t disk[DISK];
	size_t len, n;

	make_base();
	assert_int_equal(vhd_io_mem_open(&io, base, base_len), 0);
	assert_int_equal(vhd_compact_io(io, 0, NULL, NULL), 0);
	const uint8_t *d = vhd_io_mem_data(io, &len);
	n = len + 200;
	uint8_t *img = calloc(1, n);
	memcpy(img, d, len - 512);
	memcpy(img + n - 512, d + len - 512, 512);
	memset(img, 'X', 8);
	io->ops->close(io);
	long total = -1;
	for (long k = 0; total < 0 || k <= total; k++) {
		assert_int_equal(vhd_io_mem_open(&io, img, n), 0);
		fio = fault_io_wrap(io, k ? FAULT_CRASH : FAULT_NONE, k);
		int r = vhd_compact_io(fio, 0, NULL, NULL);
		if (!k) {
			assert_int_equal(r, 0);
			total = fault_io_writes(fio);
		}
		fio->ops->close(fio);
		if (tu_open_copy(&v, io, 0) < 0)
			fail_msg("crash at write %ld: %s", k, vhd_errmsg());
		assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
		assert_memory_equal(disk, model, DISK);
		vhd_close(v);
		io->ops->close(io);
	}
	free(img);
	free(base);
}

/* Points the child's locator 1 at data 4 KiB past the end of its file
 * (a truncated file), the header checksum redone. */
static void
locator_past_eof(const char *path)
{
	static uint8_t d[DISK];
	FILE *f = fopen(path, "r+b");
	size_t len;
	uint32_t sum = 0;

	assert_non_null(f);
	len = fread(d, 1, sizeof(d), f);
	uint8_t *h = d + 512, *e = h + 576 + 24;
	uint64_t o = len + 4096;
	assert_true(e[0] != 0);
	for (int i = 0; i < 8; i++)
		e[16 + i] = (uint8_t)(o >> (56 - 8 * i));
	memset(h + 36, 0, 4);
	for (int i = 0; i < 1024; i++)
		sum += h[i];
	sum = ~sum;
	for (int i = 0; i < 4; i++)
		h[36 + i] = (uint8_t)(sum >> (24 - 8 * i));
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	assert_int_equal(fwrite(d, 1, len, f), len);
	fclose(f);
}

static void
test_locator_past_eof(void **s)
{
	(void)s;
	char *dir = tu_tmpdir();
	char parent[4200], child[4200], out[4200];
	struct vhd_create_opts o;
	struct vhd *v;
	static uint8_t disk[DISK], want[DISK];
	uint32_t seed = 9;

	snprintf(parent, sizeof(parent), "%s/p.vhd", dir);
	snprintf(child, sizeof(child), "%s/c.vhd", dir);
	snprintf(out, sizeof(out), "%s/o.vhd", dir);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.size = DISK;
	o.block_size = BLOCK;
	assert_int_equal(vhd_create(parent, &o), 0);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.parent = parent;
	o.block_size = BLOCK;
	assert_int_equal(vhd_create(child, &o), 0);
	assert_int_equal(vhd_open(&v, child, VHD_OPEN_RDWR), 0);
	tu_fill(want + 3 * BLOCK, 2 * BLOCK, &seed);
	assert_int_equal(vhd_pwrite(v, want + 3 * BLOCK, 2 * BLOCK,
				    3 * BLOCK), 0);
	vhd_close(v);
	locator_past_eof(child);
	/* The open tolerates the locator (the other one finds the
	 * parent): so must compacting into another file and in place. */
	if (vhd_compact(child, out, 0, NULL, NULL) < 0)
		fail_msg("compact -o: %s", vhd_errmsg());
	assert_int_equal(vhd_compact(child, NULL, 0, NULL, NULL), 0);
	const char *img[2] = { out, child };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vhd_open(&v, img[i], VHD_OPEN_RDONLY), 0);
		assert_int_equal(vhd_pread(v, disk, DISK, 0), 0);
		assert_memory_equal(disk, want, DISK);
		vhd_close(v);
	}
	tu_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_smaller_same),
		cmocka_unit_test(test_crash_every_write),
		cmocka_unit_test(test_fixed_refused),
		cmocka_unit_test(test_into_file),
		cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_locator_past_eof),
		cmocka_unit_test(test_trim_unaligned_footer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
