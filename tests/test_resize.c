/* test_resize.c - vhd_resize: grow and shrink fixed, dynamic and
 * differencing disks; the BAT grown in place (blocks in its way moved) and
 * moved to the end (locators in its way); shrink refused over data unless
 * forced; and for each, a simulated crash after every single write: the
 * image must open with the old or the new size, check clean (leaked space
 * aside), and read the kept range as before (the new range as zeros). */
#include <errno.h>
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
#include "lib_testutil.h"

#define MiB (1u << 20)

static long crash_points;
static long footer_windows;

/* An image in memory: size, block size, data at a few places. */
static int empty_image;      /* make_image writes no data */

static uint8_t *
make_image(enum vhd_type type, uint64_t size, uint32_t bs, size_t *len,
	   uint8_t *model)
{
	struct vhd_io *io = tu_mem_image(type, size, bs);
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	uint32_t seed = 7;
	size_t n;

	assert_non_null(io);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	memset(model, 0, size);
	/* Data in the first block, the middle and the last sector. */
	uint64_t at[3] = { 0, size / 2 + 1000, size - 512 };
	uint32_t ln[3] = { 5000, 70000, 512 };
	for (int i = 0; i < 3 && !empty_image; i++) {
		tu_fill(model + at[i], ln[i], &seed);
		assert_int_equal(vhd_pwrite(v, model + at[i], ln[i], at[i]), 0);
	}
	assert_int_equal(vhd_flush(v), 0);
	/* vhd_close would close io: take the bytes first. */
	const uint8_t *d = vhd_io_mem_data(io, &n);
	uint8_t *copy = malloc(n);
	memcpy(copy, d, n);
	*len = n;
	vhd_close(v);
	return copy;
}

static int problems, windows;
static void
on_problem(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "warning: ", 9) == 0)
		return;
	/* Between the two footer writes of a resize the copy at offset 0
	 * still has the old size: counted apart (see the report). */
	if (strstr(msg, "footer copy at offset 0 differs")) {
		windows++;
		return;
	}
	problems++;
	print_error("check: %s\n", msg);
}

/* Opens the bytes, checks them and compares the disk with the model. */
static void
verify(const uint8_t *data, size_t n, uint64_t old, uint64_t ns,
       const uint8_t *model, int done, long point)
{
	struct vhd_io *io;
	struct vhd *v;
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDONLY, NULL };
	char path[] = "/tmp/test_resize.XXXXXX";
	int fd, r;

	assert_int_equal(vhd_io_mem_open(&io, data, n), 0);
	r = vhd_open_io(&v, io, &oo);
	if (r < 0)
		print_error("point %ld: open: %s\n", point, vhd_errmsg());
	assert_int_equal(r, 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	if (done)
		assert_true(in.virtual_size == ns);
	assert_true(in.virtual_size == old || in.virtual_size == ns);
	uint64_t sz = in.virtual_size;
	uint8_t *disk = malloc(sz);
	assert_int_equal(vhd_pread(v, disk, sz, 0), 0);
	uint64_t keep = old < sz ? old : sz;
	for (uint64_t i = 0; i < keep; i++) {
		/* A fixed disk shrunk: its new footer goes into the range
		 * being dropped before the truncate. */
		if (in.type == VHD_TYPE_FIXED && !done && ns < old &&
		    i >= ns && i < ns + 512)
			continue;
		/* An interrupted forced shrink may have dropped part of the
		 * range it cuts off already. */
		if (!done && ns < old && i >= ns)
			continue;
		if (disk[i] != model[i]) {
			print_error("point %ld: byte %llu: expected %u, found "
				    "%u\n", point, (unsigned long long)i,
				    model[i], disk[i]);
			fail();
		}
	}
	/* Grown space reads zeros (a fixed disk's first 512 bytes of it
	 * may hold the old footer if the crash came before they were
	 * zeroed). */
	for (uint64_t i = keep; i < sz; i++) {
		if (disk[i] && !(in.type == VHD_TYPE_FIXED && !done &&
				 i < old + 512)) {
			print_error("point %ld: grown byte %llu is %u\n", point,
				    (unsigned long long)i, disk[i]);
			fail();
		}
	}
	free(disk);
	vhd_close(v);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	problems = windows = 0;
	r = vhd_check(path, 0, on_problem, NULL);
	unlink(path);
	assert_int_equal(problems, 0);
	assert_int_equal(r, windows);
	if (windows) {
		footer_windows++;
		assert_false(done);
		/* Running the resize again completes it. */
		struct vhd_io *m;
		assert_int_equal(vhd_io_mem_open(&m, data, n), 0);
		assert_int_equal(vhd_resize_io(m, in.virtual_size, 0, NULL,
					       NULL), 0);
		size_t l;
		const uint8_t *d = vhd_io_mem_data(m, &l);
		char path2[] = "/tmp/test_resize.XXXXXX";
		int fd2 = mkstemp(path2);
		assert_true(fd2 >= 0);
		assert_int_equal(write(fd2, d, l), (ssize_t)l);
		close(fd2);
		problems = windows = 0;
		assert_int_equal(vhd_check(path2, 0, on_problem, NULL), 0);
		assert_int_equal(windows, 0);
		unlink(path2);
		m->ops->close(m);
	}
}

/* Resizes a copy of base with the given fault; returns the writes seen. */
static long
run(const uint8_t *base, size_t len, uint64_t old, uint64_t ns,
    unsigned flags, const uint8_t *model, enum fault_mode mode, long n)
{
	struct vhd_io *mem, *fio;
	size_t l;

	assert_int_equal(vhd_io_mem_open(&mem, base, len), 0);
	fio = fault_io_wrap(mem, mode, n);
	int r = vhd_resize_io(fio, ns, flags, NULL, NULL);
	if (mode == FAULT_NONE && r < 0)
		print_error("resize: %s\n", vhd_errmsg());
	if (mode == FAULT_NONE)
		assert_int_equal(r, 0);
	long writes = fault_io_writes(fio);
	int done = r == 0 && !fault_io_triggered(fio);
	fio->ops->close(fio);
	const uint8_t *d = vhd_io_mem_data(mem, &l);
	verify(d, l, old, ns, model, done, n);
	mem->ops->close(mem);
	return writes;
}

/* Every crash point and every failed write of one resize. */
static void
all_points(enum vhd_type type, uint64_t size, uint32_t bs, uint64_t ns,
	   unsigned flags)
{
	uint8_t *model = malloc(size);
	size_t len;
	uint8_t *base = make_image(type, size, bs, &len, model);
	long total = run(base, len, size, ns, flags, model, FAULT_NONE, 0);

	assert_true(total > 0);
	for (long n = 1; n <= total; n++) {
		run(base, len, size, ns, flags, model, FAULT_CRASH, n);
		run(base, len, size, ns, flags, model, FAULT_FAIL, n);
		crash_points++;
	}
	free(base);
	free(model);
}

static void
test_grow_dynamic_bat_in_place(void **s)
{
	(void)s;
	/* 64 entries -> 1024: the BAT grows over the first blocks. */
	all_points(VHD_TYPE_DYNAMIC, 4 * MiB, 64 * 1024, 64 * MiB, 0);
}

static void
test_grow_dynamic_empty(void **s)
{
	(void)s;
	/* No blocks: the trailing footer sits where the BAT grows (a case
	 * the fuzzer found). */
	empty_image = 1;
	all_points(VHD_TYPE_DYNAMIC, 4 * MiB, 64 * 1024, 64 * MiB, 0);
	empty_image = 0;
}

static void
test_grow_dynamic_spare_entries(void **s)
{
	(void)s;
	/* 4 MiB - 512 needs all 64 entries of 64 KiB: growing to 4 MiB
	 * changes only the footers. */
	all_points(VHD_TYPE_DYNAMIC, 4 * MiB - 512, 64 * 1024, 4 * MiB, 0);
}

static void
test_grow_dynamic_same_sector(void **s)
{
	(void)s;
	/* 10 entries -> 20: the BAT's sector has room. */
	all_points(VHD_TYPE_DYNAMIC, 640 * 1024, 64 * 1024, 1280 * 1024, 0);
}

static void
test_shrink_dynamic(void **s)
{
	(void)s;
	/* Data at the end would be cut: refused, then forced. */
	uint8_t *model = malloc(4 * MiB);
	size_t len;
	uint8_t *base = make_image(VHD_TYPE_DYNAMIC, 4 * MiB, 64 * 1024, &len,
				   model);
	struct vhd_io *mem;
	assert_int_equal(vhd_io_mem_open(&mem, base, len), 0);
	assert_int_equal(vhd_resize_io(mem, 3 * MiB, 0, NULL, NULL), -ENOTEMPTY);
	assert_int_equal(vhd_resize_io(mem, 3 * MiB + 512, VHD_RESIZE_FORCE,
				       NULL, NULL), 0);
	assert_int_equal(vhd_resize_io(mem, 4 * MiB, 0, NULL, NULL), 0);
	struct vhd *v;
	assert_int_equal(tu_open_copy(&v, mem, 0), 0);
	uint8_t *disk = malloc(4 * MiB);
	assert_int_equal(vhd_pread(v, disk, 4 * MiB, 0), 0);
	/* Kept range intact, the cut range came back as zeros. */
	assert_memory_equal(disk, model, 3 * MiB + 512);
	for (uint64_t i = 3 * MiB + 512; i < 4 * MiB; i++)
		assert_int_equal(disk[i], 0);
	vhd_close(v);
	mem->ops->close(mem);
	free(disk);
	free(base);
	free(model);
	/* Crash points of a forced shrink dropping blocks. */
	all_points(VHD_TYPE_DYNAMIC, 4 * MiB, 64 * 1024, 1 * MiB,
		   VHD_RESIZE_FORCE);
}

static void
test_shrink_dynamic_empty_tail(void **s)
{
	(void)s;
	/* Data in the last sector: cutting it is refused; once it is
	 * zeroed, the cut range (with its allocated block) goes. */
	uint8_t *model = malloc(8 * MiB);
	size_t len;
	uint8_t *base = make_image(VHD_TYPE_DYNAMIC, 8 * MiB, 64 * 1024, &len,
				   model);
	struct vhd_io *mem;
	assert_int_equal(vhd_io_mem_open(&mem, base, len), 0);
	assert_int_equal(vhd_resize_io(mem, 8 * MiB - 512, 0, NULL, NULL),
			 -ENOTEMPTY);
	/* Zero the last sector: now the cut range reads zeros. */
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd_io *b;
	size_t n;
	const uint8_t *d = vhd_io_mem_data(mem, &n);
	assert_int_equal(vhd_io_mem_open(&b, d, n), 0);
	assert_int_equal(vhd_open_io(&v, b, &oo), 0);
	uint8_t z[512] = { 0 };
	assert_int_equal(vhd_pwrite(v, z, 512, 8 * MiB - 512), 0);
	d = vhd_io_mem_data(b, &n);
	struct vhd_io *c;
	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	vhd_close(v);
	assert_int_equal(vhd_resize_io(c, 5 * MiB, 0, NULL, NULL), 0);
	c->ops->close(c);
	mem->ops->close(mem);
	free(base);
	free(model);
}

static void
test_fixed(void **s)
{
	(void)s;
	all_points(VHD_TYPE_FIXED, 1 * MiB, 0, 3 * MiB, 0);
	all_points(VHD_TYPE_FIXED, 3 * MiB, 0, 2 * MiB, VHD_RESIZE_FORCE);
}

static void
test_bad_sizes(void **s)
{
	(void)s;
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, MiB, 0);
	assert_int_equal(vhd_resize_io(io, 1000, 0, NULL, NULL), -EINVAL);
	assert_int_equal(vhd_resize_io(io, 0, 0, NULL, NULL), -EINVAL);
	assert_int_equal(vhd_resize_io(io, VHD_MAX_DISK_SIZE + 512, 0, NULL,
				       NULL), -EINVAL);
	assert_int_equal(vhd_resize_io(io, MiB, 0, NULL, NULL), 0);
	io->ops->close(io);
}

/* A differencing disk: its locators follow the BAT, so a BAT that must
 * grow is written anew at the end. */
static void
test_diff_bat_to_end(void **s)
{
	(void)s;
	char *dir = tu_tmpdir();
	char parent[4200], child[4200];
	struct vhd_create_opts o;
	struct vhd *v;
	uint64_t size = 2 * MiB;
	uint8_t *model = calloc(1, 32 * MiB);
	uint32_t seed = 3;

	snprintf(parent, sizeof(parent), "%s/p.vhd", dir);
	snprintf(child, sizeof(child), "%s/c.vhd", dir);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.size = size;
	o.block_size = 64 * 1024;
	assert_int_equal(vhd_create(parent, &o), 0);
	assert_int_equal(vhd_open(&v, parent, VHD_OPEN_RDWR), 0);
	tu_fill(model, 100000, &seed);
	assert_int_equal(vhd_pwrite(v, model, 100000, 0), 0);
	vhd_close(v);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.parent = parent;
	o.block_size = 64 * 1024;
	assert_int_equal(vhd_create(child, &o), 0);
	assert_int_equal(vhd_open(&v, child, VHD_OPEN_RDWR), 0);
	tu_fill(model + 50000, 300000, &seed);
	assert_int_equal(vhd_pwrite(v, model + 50000, 300000, 50000), 0);
	vhd_close(v);

	/* Keep the child's bytes to restore before each run. */
	FILE *f = fopen(child, "rb");
	uint8_t *orig = malloc(4 * MiB);
	size_t olen = fread(orig, 1, 4 * MiB, f);
	fclose(f);
	long total = -1;
	for (long n = 0; total < 0 || n <= total; n++) {
		f = fopen(child, "wb");
		assert_int_equal(fwrite(orig, 1, olen, f), olen);
		fclose(f);
		struct vhd_io *io, *fio;
		assert_int_equal(vhd_io_file_open(&io, child, VHD_IO_RDWR), 0);
		fio = fault_io_wrap(io, n ? FAULT_CRASH : FAULT_NONE, n);
		int r = vhd_resize_io(fio, 32 * MiB, 0, NULL, NULL);
		if (n == 0) {
			if (r < 0)
				print_error("%s\n", vhd_errmsg());
			assert_int_equal(r, 0);
			total = fault_io_writes(fio);
		}
		int done = r == 0 && !fault_io_triggered(fio);
		fio->ops->close(fio);
		io->ops->close(io);
		/* Through the chain: the data, and zeros past the parent. */
		struct vhd_info in = { .struct_size = sizeof in };
		assert_int_equal(vhd_open(&v, child, VHD_OPEN_RDONLY), 0);
		assert_int_equal(vhd_get_info(v, &in), 0);
		assert_true(in.virtual_size == size ||
			    in.virtual_size == 32 * MiB);
		if (done)
			assert_true(in.virtual_size == 32 * MiB);
		uint8_t *disk = malloc(in.virtual_size);
		assert_int_equal(vhd_pread(v, disk, in.virtual_size, 0), 0);
		assert_memory_equal(disk, model, in.virtual_size);
		free(disk);
		vhd_close(v);
		problems = windows = 0;
		int k = vhd_check(child, 0, on_problem, NULL);
		assert_int_equal(problems, 0);
		assert_int_equal(k, windows);
		if (windows)
			footer_windows++;
		if (n)
			crash_points++;
	}
	free(orig);
	free(model);
	tu_rmrf(dir);
	free(dir);
}

/* Points the child's locators whose bit is in which at data past the end
 * of its file, at +at, +at+1024, ... (the header checksum redone). */
static void
locators_past_eof(const char *path, unsigned which, uint64_t at)
{
	size_t len;
	uint8_t *d = tu_slurp(path, &len), *h = d + 512;
	uint32_t sum = 0;

	for (int i = 0; i < 8; i++) {
		uint8_t *e = h + 576 + 24 * i;
		if (!tu_be32(e) || !(which & (1u << i)))
			continue;
		uint64_t o = len + at + 1024u * (unsigned)i;
		tu_put_be32(e + 16, (uint32_t)(o >> 32));
		tu_put_be32(e + 20, (uint32_t)o);
	}
	tu_put_be32(h + 36, 0);
	for (int i = 0; i < 1024; i++)
		sum += h[i];
	tu_put_be32(h + 36, ~sum);
	tu_spill(path, d, len);
	free(d);
}

/* No locator's data overlaps the BAT, a block or the trailing footer. */
static void
assert_locators_clear(const char *path)
{
	size_t len;
	uint8_t *d = tu_slurp(path, &len), *h = d + 512;
	uint64_t bat = tu_be64(h + 16);
	uint32_t n = tu_be32(h + 28), bs = tu_be32(h + 32);
	uint64_t blen = bs + ((bs / 512 / 8 + 511) / 512 * 512);

	for (int i = 0; i < 8; i++) {
		const uint8_t *e = h + 576 + 24 * i;
		uint32_t sp = tu_be32(e + 4), ln = tu_be32(e + 8);
		uint64_t lo = tu_be64(e + 16);
		uint64_t x = sp >= ln ? sp : (uint64_t)sp * 512;
		if (!tu_be32(e))
			continue;
		if (x < ln)
			x = ln;
		if (lo < bat + ((uint64_t)n * 4 + 511) / 512 * 512 &&
		    bat < lo + x)
			fail_msg("locator %d at %llu overlaps the BAT at %llu", i,
				 (unsigned long long)lo, (unsigned long long)bat);
		if (lo < len && len - 512 < lo + x)
			fail_msg("locator %d at %llu overlaps the footer", i,
				 (unsigned long long)lo);
		for (uint32_t k = 0; k < n; k++) {
			uint32_t s = tu_be32(d + bat + 4 * (uint64_t)k);
			uint64_t b = (uint64_t)s * 512;
			if (s != 0xffffffffu && lo < b + blen && b < lo + x)
				fail_msg("locator %d at %llu overlaps block %u "
					 "at %llu", i, (unsigned long long)lo, k,
					 (unsigned long long)b);
		}
	}
	free(d);
}

/* A differencing child whose locator data lies past the end of its file
 * (a truncated file; the parent is still found by its name): what the
 * resize writes past the old end (moved blocks, the BAT, footers) must
 * not land on that data, or the image no longer opens. */
static void
diff_locators_past_eof(unsigned which, uint64_t at, uint64_t ns)
{
	char *dir = tu_tmpdir();
	char parent[4200], child[4200];
	struct vhd_create_opts o;
	struct vhd *v;
	uint64_t size = 8 * MiB;
	uint8_t *model = calloc(1, ns), *disk = malloc(ns);
	uint32_t seed = 5;

	snprintf(parent, sizeof(parent), "%s/p.vhd", dir);
	snprintf(child, sizeof(child), "%s/c.vhd", dir);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.size = size;
	o.block_size = 64 * 1024;
	assert_int_equal(vhd_create(parent, &o), 0);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.parent = parent;
	o.block_size = 64 * 1024;
	assert_int_equal(vhd_create(child, &o), 0);
	assert_int_equal(vhd_open(&v, child, VHD_OPEN_RDWR), 0);
	tu_fill(model, 200000, &seed);
	assert_int_equal(vhd_pwrite(v, model, 200000, 0), 0);
	vhd_close(v);
	locators_past_eof(child, which, at);

	if (vhd_resize(child, ns, 0, NULL, NULL) < 0)
		fail_msg("resize: %s", vhd_errmsg());
	if (vhd_open(&v, child, VHD_OPEN_RDONLY) < 0)
		fail_msg("reopen: %s", vhd_errmsg());
	struct vhd_info in = { .struct_size = sizeof in };
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_true(in.virtual_size == ns);
	assert_int_equal(vhd_pread(v, disk, ns, 0), 0);
	assert_memory_equal(disk, model, ns);
	vhd_close(v);
	assert_locators_clear(child);
	free(model);
	free(disk);
	tu_rmrf(dir);
	free(dir);
}

static void
test_diff_locator_past_eof(void **s)
{
	(void)s;
	/* Every locator past the end: the BAT grows in place and the
	 * blocks in its way move to where the locator data is. */
	diff_locators_past_eof(0xff, 8192, 64 * MiB);
	/* Locator 0 after the BAT (so the BAT goes to the end of the file),
	 * locator 1 just past the end, where the new BAT goes. */
	diff_locators_past_eof(0x2, 0, 64 * MiB);
}

/* base with the trailing footer moved gap bytes further (leaked space
 * before it) and the copy at 0 made unusable. */
static uint8_t *
with_gap(const uint8_t *base, size_t len, uint64_t gap, size_t *n)
{
	uint64_t ft = len - 512;
	uint8_t *img = calloc(1, ft + gap + 512);

	memcpy(img, base, ft);
	memcpy(img + ft + gap, base + ft, 512);
	memset(img, 'X', 8);
	*n = ft + gap + 512;
	return img;
}

/* Leaked space before a trailing footer at an odd offset (file size not a
 * multiple of 512; the copy at 0 unusable): the footer the resize writes
 * behind a block it moves must not overlap that footer, or a crash before
 * the final footers leaves an image that does not open. */
static void
test_gap_before_unaligned_footer(void **s)
{
	(void)s;
	uint64_t size = 4 * MiB, ns = 64 * MiB;
	uint8_t *model = malloc(size);
	size_t len, n;
	uint8_t *base = make_image(VHD_TYPE_DYNAMIC, size, 64 * 1024, &len,
				   model);
	uint8_t *img = with_gap(base, len, 0, &n);
	struct vhd_io *m;

	/* Where block 0 moves to (leaked space does not change it). */
	assert_int_equal(vhd_io_mem_open(&m, img, n), 0);
	free(img);
	assert_int_equal(vhd_resize_io(m, ns, 0, NULL, NULL), 0);
	const uint8_t *d = vhd_io_mem_data(m, &n);
	uint64_t bend = (uint64_t)tu_be32(d + tu_be64(d + 512 + 16)) * 512 +
			512 + 64 * 1024;
	m->ops->close(m);
	/* Its footer would cover the start of the old one. */
	img = with_gap(base, len, bend + 200 - (len - 512), &n);
	uint8_t *disk = malloc(size);
	long total = -1;
	for (long k = 0; total < 0 || k <= total; k++) {
		struct vhd_io *fio;
		struct vhd *v;
		assert_int_equal(vhd_io_mem_open(&m, img, n), 0);
		fio = fault_io_wrap(m, k ? FAULT_CRASH : FAULT_NONE, k);
		int r = vhd_resize_io(fio, ns, 0, NULL, NULL);
		if (!k) {
			assert_int_equal(r, 0);
			total = fault_io_writes(fio);
		}
		fio->ops->close(fio);
		if (tu_open_copy(&v, m, 0) < 0)
			fail_msg("crash at write %ld: %s", k, vhd_errmsg());
		assert_int_equal(vhd_pread(v, disk, size, 0), 0);
		assert_memory_equal(disk, model, size);
		vhd_close(v);
		m->ops->close(m);
		if (k)
			crash_points++;
	}
	free(disk);
	free(img);
	free(base);
	free(model);
}

static void
test_report(void **s)
{
	(void)s;
	print_message("resize crash points tried: %ld (each also as a failed "
		      "write); footer-copy windows: %ld\n", crash_points,
		      footer_windows);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_grow_dynamic_bat_in_place),
		cmocka_unit_test(test_grow_dynamic_empty),
		cmocka_unit_test(test_grow_dynamic_spare_entries),
		cmocka_unit_test(test_grow_dynamic_same_sector),
		cmocka_unit_test(test_shrink_dynamic),
		cmocka_unit_test(test_shrink_dynamic_empty_tail),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_diff_bat_to_end),
		cmocka_unit_test(test_diff_locator_past_eof),
		cmocka_unit_test(test_gap_before_unaligned_footer),
		cmocka_unit_test(test_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
