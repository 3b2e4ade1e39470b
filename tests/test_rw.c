/* test_rw.c - reads and writes at random unaligned offsets and lengths
 * against a memory model, for fixed, dynamic and small-block dynamic
 * disks, plus zeroing, discard, read-only and range errors, and parallel
 * readers and writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

#define DISK (6u << 20)

static void
model_run(enum vhd_type type, uint32_t bs, uint32_t seed)
{
	struct vhd_io *io = tu_mem_image(type, DISK, bs);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint8_t *model = calloc(1, DISK), *buf = malloc(1 << 20),
		*got = malloc(DISK);

	assert_non_null(io);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	for (int i = 0; i < 400; i++) {
		uint32_t op = tu_rand(&seed) % 10;
		uint32_t off = tu_rand(&seed) % DISK;
		uint32_t len = 1 + tu_rand(&seed) % ((tu_rand(&seed) & 3) ?
						     9000 : (1u << 20));
		if (off + len > DISK)
			len = DISK - off;
		if (op < 6) {
			tu_fill(buf, len, &seed);
			assert_int_equal(vhd_pwrite(v, buf, len, off), 0);
			memcpy(model + off, buf, len);
		} else if (op < 8) {
			unsigned fl = op == 7 ? VHD_ZERO_NO_HOLE : 0;
			assert_int_equal(vhd_write_zeroes(v, off, len, fl), 0);
			memset(model + off, 0, len);
		} else if (op == 8) {
			assert_int_equal(vhd_discard(v, off, len), 0);
			memset(model + off, 0, len);
		}
		uint32_t ro = tu_rand(&seed) % DISK;
		uint32_t rl = 1 + tu_rand(&seed) % 70000;
		if (ro + rl > DISK)
			rl = DISK - ro;
		assert_int_equal(vhd_pread(v, got, rl, ro), 0);
		assert_memory_equal(got, model + ro, rl);
	}
	assert_int_equal(vhd_flush(v), 0);
	assert_int_equal(vhd_pread(v, got, DISK, 0), 0);
	assert_memory_equal(got, model, DISK);
	/* The same after reopening. */
	struct vhd *w;
	assert_int_equal(tu_open_copy(&w, io, 0), 0);
	assert_int_equal(vhd_pread(w, got, DISK, 0), 0);
	assert_memory_equal(got, model, DISK);
	vhd_close(w);
	vhd_close(v);
	free(model);
	free(buf);
	free(got);
}

static void test_fixed(void **s) { (void)s; model_run(VHD_TYPE_FIXED, 0, 1); }
static void test_dynamic(void **s) { (void)s; model_run(VHD_TYPE_DYNAMIC, 0, 2); }
static void test_dynamic_4k(void **s) { (void)s; model_run(VHD_TYPE_DYNAMIC, 4096, 3); }
static void test_dynamic_64k(void **s) { (void)s; model_run(VHD_TYPE_DYNAMIC, 65536, 4); }

static void
test_errors(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, DISK, 0);
	struct vhd_open_opts oo = { sizeof oo, 0, NULL };
	struct vhd *v;
	uint8_t b[1024] = { 1 };

	(void)state;
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, b, 1, 0), -EROFS);
	assert_int_equal(vhd_write_zeroes(v, 0, 512, 0), -EROFS);
	assert_int_equal(vhd_pread(v, b, 2, DISK - 1), -EINVAL);
	assert_int_equal(vhd_pread(v, b, 0, DISK), 0);
	assert_int_equal(vhd_pread(v, b, 1, DISK), -EINVAL);
	vhd_close(v);
	io = tu_mem_image(VHD_TYPE_DYNAMIC, DISK, 0);
	assert_int_equal(tu_open_copy(&v, io, VHD_OPEN_RDWR), 0);
	io->ops->close(io);
	assert_int_equal(vhd_pwrite(v, b, 2, DISK - 1), -ENOSPC);
	assert_int_equal(vhd_write_zeroes(v, DISK, 1, 0), -ENOSPC);
	assert_int_equal(vhd_discard(v, DISK - 512, 1024), -EINVAL);
	assert_int_equal(vhd_write_zeroes(v, 0, 1, 0x100), -EINVAL);
	vhd_close(v);
}

/* Discarding whole blocks deallocates them; FAST_ONLY refuses work that
 * needs data writes and changes nothing. */
static void
test_zero_modes(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, DISK, 0);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	struct vhd_info in = { .struct_size = sizeof in };
	uint8_t *b = malloc(4 << 20), *got = malloc(4 << 20);
	uint32_t seed = 9;

	(void)state;
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	tu_fill(b, 4 << 20, &seed);
	assert_int_equal(vhd_pwrite(v, b, 4 << 20, 0), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 2);
	assert_int_equal(vhd_write_zeroes(v, 100, 512, VHD_ZERO_FAST_ONLY),
			 -ENOTSUP);
	assert_int_equal(vhd_pread(v, got, 4 << 20, 0), 0);
	assert_memory_equal(got, b, 4 << 20);
	assert_int_equal(vhd_write_zeroes(v, 0, 2 << 20, VHD_ZERO_FAST_ONLY), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 1);
	assert_int_equal(vhd_discard(v, 2 << 20, 2 << 20), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 0);
	assert_int_equal(vhd_write_zeroes(v, 0, 2 << 20, VHD_ZERO_NO_HOLE), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.allocated_blocks, 1);
	memset(b, 0, 4 << 20);
	assert_int_equal(vhd_pread(v, got, 4 << 20, 0), 0);
	assert_memory_equal(got, b, 4 << 20);
	vhd_close(v);
	free(b);
	free(got);
}

/* Parallel writers to distinct regions and readers everywhere. */
struct th {
	struct vhd *v;
	int id;
	int fail;
};

static void *
worker(void *arg)
{
	struct th *t = arg;
	uint8_t buf[9000], got[9000];
	uint32_t seed = (uint32_t)t->id * 77u + 1;
	uint64_t region = (uint64_t)t->id * (DISK / 4);

	for (int i = 0; i < 200 && !t->fail; i++) {
		uint32_t off = tu_rand(&seed) % (DISK / 4 - sizeof(buf));
		uint32_t len = 1 + tu_rand(&seed) % sizeof(buf);
		tu_fill(buf, len, &seed);
		if (vhd_pwrite(t->v, buf, len, region + off) < 0 ||
		    vhd_pread(t->v, got, len, region + off) < 0 ||
		    memcmp(buf, got, len) != 0)
			t->fail = 1;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, DISK, 65536);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	pthread_t tid[4];
	struct th t[4];

	(void)state;
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct th){ v, i, 0 };
		assert_int_equal(pthread_create(&tid[i], NULL, worker, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(t[i].fail, 0);
	}
	vhd_close(v);
}

/* Parallel readers and writers on the same blocks of a differencing child:
 * writers fill whole 4 KiB pages with one byte value (page p belongs to
 * writer p % 4), discarders zero pages; every page a reader sees must be
 * whole: the parent's page, zeros, or one value of its owner.  Catches a
 * BAT entry or bitmap published before the data it describes. */
#define CH_DISK (1u << 20)
static uint8_t ch_parent[CH_DISK];
struct chth {
	struct vhd *v;
	int id;
	int fail;
};

static void *
ch_writer(void *arg)
{
	struct chth *t = arg;
	uint8_t page[4096];
	uint32_t seed = (uint32_t)t->id * 31u + 7;

	for (int i = 0; i < 300 && !t->fail; i++) {
		uint32_t pg = (tu_rand(&seed) % (CH_DISK / 4096 / 4)) * 4 +
			      (uint32_t)t->id;
		int r;
		if (i % 7 == 6) {
			r = vhd_discard(t->v, (uint64_t)pg * 4096, 4096);
		} else {
			memset(page, t->id * 60 + 1 + i % 50, sizeof(page));
			r = vhd_pwrite(t->v, page, sizeof(page),
				       (uint64_t)pg * 4096);
		}
		if (r < 0)
			t->fail = 1;
	}
	return NULL;
}

static void *
ch_reader(void *arg)
{
	struct chth *t = arg;
	static _Thread_local uint8_t got[65536];
	uint32_t seed = (uint32_t)t->id * 13u + 5;

	for (int i = 0; i < 300 && !t->fail; i++) {
		uint32_t off = tu_rand(&seed) % (CH_DISK / 4096 - 16) * 4096;
		if (vhd_pread(t->v, got, sizeof(got), off) < 0) {
			t->fail = 1;
			break;
		}
		for (uint32_t k = 0; k < sizeof(got); k += 4096) {
			uint32_t pg = (off + k) / 4096;
			const uint8_t *p = got + k;
			if (memcmp(p, ch_parent + off + k, 4096) == 0)
				continue;
			int uniform = 1;
			for (int j = 1; j < 4096; j++)
				if (p[j] != p[0])
					uniform = 0;
			int owner = p[0] == 0 ||
				    (p[0] - 1) / 60 == (int)(pg % 4);
			if (!uniform || !owner) {
				print_error("page %u: torn or foreign data\n",
					    pg);
				t->fail = 1;
				break;
			}
		}
	}
	return NULL;
}

static void
test_threads_child(void **state)
{
	char *dir = tu_tmpdir(), pp[4200];
	struct vhd_create_opts po = { sizeof po,
				      VHD_TYPE_DYNAMIC, CH_DISK, 32u << 10, 0,
				      NULL, NULL };
	struct vhd_create_opts co = { sizeof co,
				      VHD_TYPE_DIFF, 0, 64u << 10, 0, pp,
				      NULL };
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, pp };
	struct vhd_io *io;
	struct vhd *v;
	uint32_t seed = 3;
	pthread_t tid[8];
	struct chth t[8];

	(void)state;
	snprintf(pp, sizeof(pp), "%s/parent.vhd", dir);
	assert_int_equal(vhd_create(pp, &po), 0);
	assert_int_equal(vhd_open(&v, pp, VHD_OPEN_RDWR), 0);
	tu_fill(ch_parent, CH_DISK, &seed);
	memset(ch_parent + 300000, 0, 200000);   /* some of it unallocated */
	assert_int_equal(vhd_pwrite(v, ch_parent, 300000, 0), 0);
	assert_int_equal(vhd_pwrite(v, ch_parent + 500000, CH_DISK - 500000,
				    500000), 0);
	vhd_close(v);
	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	io->name = "child.vhd";
	assert_int_equal(vhd_create_io(io, &co), 0);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	for (int i = 0; i < 8; i++) {
		t[i] = (struct chth){ v, i % 4, 0 };
		assert_int_equal(pthread_create(&tid[i], NULL, i < 4 ?
						ch_writer : ch_reader, &t[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(tid[i], NULL);
	for (int i = 0; i < 8; i++)
		assert_int_equal(t[i].fail, 0);
	vhd_close(v);
	tu_rmrf(dir);
	free(dir);
}

/* The memory backend refuses a write whose end wraps around 64 bits
 * (it used to reserve the wrapped size and copy far outside its buffer). */
static void
test_mem_wrap(void **state)
{
	struct vhd_io *io;
	uint8_t b[16] = { 1 };

	(void)state;
	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	assert_true(io->ops->pwrite(io, b, sizeof(b), UINT64_MAX - 8) < 0);
	assert_true(io->ops->pread(io, b, sizeof(b), UINT64_MAX - 8) < 0);
	io->ops->close(io);
}

/* Leaked space before a trailing footer at an odd offset (file size not a
 * multiple of 512), and no usable copy at 0: a new block placed in the
 * gap used to get "its" footer right behind it, 512 bytes that overwrote
 * the start of the old trailing footer, and the image no longer opened
 * (found by fuzz_open). */
static void
test_gap_before_unaligned_footer(void **state)
{
	const uint32_t bs = 4096;
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 17 * bs, bs);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint8_t b[512], got[512];
	size_t n;

	(void)state;
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, b, 512, 0), 0);
	assert_int_equal(vhd_flush(v), 0);     /* commits the BAT entry */
	const uint8_t *d = vhd_io_mem_data(io, &n);
	/* The next block: bitmap so that its data is 4 KiB aligned. */
	uint64_t ft = n - 512;
	uint64_t bend = (ft + 512 + 4095) / 4096 * 4096 + bs;
	uint64_t nft = bend + 200;              /* overlapped by bend..+512 */
	uint8_t *img = calloc(1, nft + 512);
	memcpy(img, d, ft);
	memcpy(img + nft, d + ft, 512);
	memset(img, 'X', 8);                    /* copy at 0 unusable */
	vhd_close(v);
	assert_int_equal(vhd_io_mem_open(&io, img, nft + 512), 0);
	free(img);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, b, 512, 5 * bs), 0);
	assert_int_equal(vhd_flush(v), 0);
	struct vhd *w;
	assert_int_equal(tu_open_copy(&w, v->io, 0), 0);
	assert_int_equal(vhd_pread(w, got, 512, 5 * bs), 0);
	assert_memory_equal(got, b, 512);
	assert_int_equal(vhd_pread(w, got, 512, 0), 0);
	assert_memory_equal(got, b, 512);
	vhd_close(w);
	vhd_close(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_dynamic),
		cmocka_unit_test(test_dynamic_4k),
		cmocka_unit_test(test_dynamic_64k),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_zero_modes),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_mem_wrap),
		cmocka_unit_test(test_threads_child),
		cmocka_unit_test(test_gap_before_unaligned_footer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
