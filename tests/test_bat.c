/* test_bat.c - BAT validation on open and in check: entries outside the
 * file, overlapping each other or the metadata, beyond the disk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

#define BS (64u << 10)

/* A dynamic image with blocks 0 and 1 allocated; returns its bytes. */
static uint8_t *
image(size_t *n)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 1u << 20, BS);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint8_t buf[4096];

	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 0), 0);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), BS), 0);
	assert_int_equal(vhd_flush(v), 0);     /* commits the BAT entries */
	const uint8_t *d = vhd_io_mem_data(io, n);
	uint8_t *copy = malloc(*n);
	memcpy(copy, d, *n);
	vhd_close(v);
	return copy;
}

static int
try_open(uint8_t *d, size_t n)
{
	struct vhd_io *c;
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, 0, NULL };
	int r;

	assert_int_equal(vhd_io_mem_open(&c, d, n), 0);
	r = vhd_open_io(&v, c, &oo);
	if (r == 0)
		vhd_close(v);
	else
		c->ops->close(c);
	return r;
}

static uint32_t
entry(const uint8_t *d, int i)
{
	return get_be32(d + 1536 + 4 * i);
}

static void
set_entry(uint8_t *d, int i, uint32_t v)
{
	put_be32(d + 1536 + 4 * i, v);
}

static void
test_layout(void **state)
{
	size_t n;
	uint8_t *d = image(&n);

	(void)state;
	assert_int_equal(try_open(d, n), 0);
	/* Data 4 KiB aligned; blocks in order; footer after the last. */
	uint64_t b0 = (uint64_t)entry(d, 0) * 512, b1 = (uint64_t)entry(d, 1) * 512;
	assert_int_equal((b0 + 512) % 4096, 0);
	assert_int_equal((b1 + 512) % 4096, 0);
	assert_true(b1 >= b0 + 512 + BS);
	assert_true(n == b1 + 512 + BS + 512);
	assert_int_equal(entry(d, 2), VHD_BAT_UNUSED);
	/* Bitmaps of new dynamic blocks are all ones. */
	for (int i = 0; i < 16; i++)
		assert_int_equal(d[b0 + i], 0xff);
	free(d);
}

static void
expect_bad(uint8_t *d, size_t n, const char *what)
{
	assert_int_equal(try_open(d, n), -EBADMSG);
	if (!strstr(vhd_errmsg(), what))
		fail_msg("expected '%s' in: %s", what, vhd_errmsg());
}

static void
test_rules(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	uint32_t e0 = entry(d, 0), e1 = entry(d, 1);

	(void)state;
	set_entry(d, 1, e0);                        /* same block twice */
	expect_bad(d, n, "overlapping");
	set_entry(d, 1, e0 + 8);                    /* partial overlap */
	expect_bad(d, n, "overlapping");
	set_entry(d, 1, 3);                         /* over the BAT */
	expect_bad(d, n, "overlapping");
	set_entry(d, 1, (uint32_t)(n / 512));       /* past the file */
	expect_bad(d, n, "footer");
	set_entry(d, 1, (uint32_t)(n / 512) - 10);  /* over the footer */
	expect_bad(d, n, "footer");
	set_entry(d, 1, e1);
	/* A BAT with room for more entries than the disk needs (blktap
	 * preallocates); a used one beyond the disk is refused. */
	put_be32(d + 512 + 28, 32);
	put_be32(d + 512 + 36, vhd_checksum(d + 512, 1024, 36));
	set_entry(d, 20, e1 + 200);
	expect_bad(d, n, "beyond");
	set_entry(d, 20, VHD_BAT_UNUSED);
	assert_int_equal(try_open(d, n), 0);
	free(d);
}

static int reported;
static void
count(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "warning: ", 9) != 0)
		reported++;
}

/* check reports every bad entry, not just the first. */
static void
test_check_reports_all(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	char path[] = "/tmp/test_bat.XXXXXX";
	int fd;

	(void)state;
	set_entry(d, 1, entry(d, 0));
	set_entry(d, 2, (uint32_t)(n / 512) + 100);
	set_entry(d, 3, 2);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, n), (ssize_t)n);
	close(fd);
	reported = 0;
	int r = vhd_check(path, 0, count, NULL);
	unlink(path);
	assert_int_equal(r, 3);
	assert_int_equal(reported, 3);
	free(d);
}

/* A blktap batmap whose map lies over other metadata (here the dynamic
 * header) must not be used: writing its bits would destroy the header and
 * the image would no longer open. */
static void
test_batmap_over_header(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	struct vhd_io *io;
	struct vhd *v;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	uint8_t buf[512];

	(void)state;
	/* The batmap header goes in the sector after the BAT (free space
	 * before the first block); its map claims the header's sector. */
	assert_true(entry(d, 0) * 512ull >= 2560);
	memset(d + 2048, 0, 512);
	memcpy(d + 2048, "tdbatmap", 8);
	put_be64(d + 2048 + 8, 512);
	put_be32(d + 2048 + 16, 1);
	put_be32(d + 2048 + 20, 0x00010002);
	assert_int_equal(vhd_io_mem_open(&io, d, n), 0);
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	memset(buf, 0x33, sizeof(buf));
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 5 * BS), 0);
	size_t n2;
	const uint8_t *d2 = vhd_io_mem_data(io, &n2);
	uint8_t *copy = malloc(n2);
	memcpy(copy, d2, n2);
	vhd_close(v);
	assert_memory_equal(copy + 512, "cxsparse", 8);
	if (try_open(copy, n2) != 0)
		fail_msg("reopen: %s", vhd_errmsg());
	free(copy);
	free(d);
}

/* A backend that logs writes and flushes of the memory file it wraps. */
struct rec {
	struct vhd_io io;
	struct vhd_io *in;
	char log[256][32];
	int n;
};
static void
rec_add(struct rec *r, const char *what, uint64_t off)
{
	if (r->n < 256)
		snprintf(r->log[r->n++], 32, "%s%llu", what,
			 (unsigned long long)off);
}
static int
rec_pread(struct vhd_io *io, void *b, size_t n, uint64_t off)
{
	struct rec *r = (struct rec *)io;
	return r->in->ops->pread(r->in, b, n, off);
}
static int
rec_pwrite(struct vhd_io *io, const void *b, size_t n, uint64_t off)
{
	struct rec *r = (struct rec *)io;
	rec_add(r, "W", off);
	return r->in->ops->pwrite(r->in, b, n, off);
}
static int
rec_flush(struct vhd_io *io)
{
	struct rec *r = (struct rec *)io;
	rec_add(r, "F", 0);
	return 0;
}
static int
rec_size(struct vhd_io *io, uint64_t *sz)
{
	struct rec *r = (struct rec *)io;
	return r->in->ops->get_size(r->in, sz);
}
static int
rec_trunc(struct vhd_io *io, uint64_t sz)
{
	struct rec *r = (struct rec *)io;
	rec_add(r, "T", sz);
	return r->in->ops->truncate(r->in, sz);
}
static int
rec_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct rec *r = (struct rec *)io;
	rec_add(r, "P", off);
	return r->in->ops->punch(r->in, off, n);
}
static void
rec_close(struct vhd_io *io)
{
	(void)io;
}
static const struct vhd_io_ops rec_ops = {
	1, rec_pread, rec_pwrite, rec_flush, rec_size, rec_trunc, rec_punch,
	rec_close,
};

static int
log_find(const struct rec *r, const char *what, int from)
{
	for (int i = from; i < r->n; i++)
		if (strcmp(r->log[i], what) == 0)
			return i;
	return -1;
}

/* Deallocating a block of an image with a blktap batmap: the batmap's
 * "full" bit is cleared and made durable before the BAT entry, so no crash
 * leaves a block marked full that the BAT does not hold. */
static void
test_batmap_dealloc_order(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	static struct rec r;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;

	(void)state;
	memset(d + 2048, 0, 1024);
	memcpy(d + 2048, "tdbatmap", 8);
	put_be64(d + 2048 + 8, 2560);
	put_be32(d + 2048 + 16, 1);
	put_be32(d + 2048 + 20, 0x00010002);
	d[2560] = 0xc0;                         /* blocks 0 and 1 full */
	put_be32(d + 2048 + 24, vhd_checksum(d + 2560, 512, 512));
	memset(&r, 0, sizeof(r));
	r.io.ops = &rec_ops;
	r.io.name = "rec";
	assert_int_equal(vhd_io_mem_open(&r.in, d, n), 0);
	assert_int_equal(vhd_open_io(&v, &r.io, &oo), 0);
	assert_int_equal(vhd_discard(v, 0, BS), 0);
	vhd_close(v);
	int map = log_find(&r, "W2560", 0);
	int bat = log_find(&r, "W1536", 0);
	assert_true(map >= 0 && bat > map);
	int fl = log_find(&r, "F0", map);
	if (fl < 0 || fl > bat)
		fail_msg("no barrier between the batmap and the BAT update");
	size_t n2;
	const uint8_t *d2 = vhd_io_mem_data(r.in, &n2);
	assert_int_equal(d2[2560], 0x40);
	assert_int_equal(get_be32(d2 + 1536), VHD_BAT_UNUSED);

	/* Allocating: a "full" bit may only be set once the BAT entry it
	 * describes is durable. */
	memcpy(d, d2, n2 < n ? n2 : n);
	r.in->ops->close(r.in);
	memset(&r, 0, sizeof(r));
	r.io.ops = &rec_ops;
	r.io.name = "rec";
	assert_int_equal(vhd_io_mem_open(&r.in, d, n), 0);
	assert_int_equal(vhd_open_io(&v, &r.io, &oo), 0);
	uint8_t buf[4096];
	memset(buf, 7, sizeof(buf));
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 5 * BS), 0);
	vhd_close(v);
	bat = log_find(&r, "W1536", 0);
	assert_true(bat >= 0);
	map = log_find(&r, "W2560", bat);
	if (map >= 0) {
		fl = log_find(&r, "F0", bat);
		if (fl < 0 || fl > map)
			fail_msg("batmap bit set with no barrier after the BAT");
	}
	r.in->ops->close(r.in);
	free(d);
}

/* A BAT of more than one read piece (2^18 entries, 1 MiB, each): the
 * entries of every piece land in their own place.  3 x 2^18 blocks of
 * 4 KiB, one allocated in each piece and one left out. */
static void
test_bat_pieces(void **state)
{
	const uint32_t piece = 1u << 18, bs = 4096;
	const uint32_t blk[] = { 5, piece + 7, 2 * piece + 11 };
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC,
					 (uint64_t)3 * piece * bs, bs);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *w, *v;
	uint8_t buf[4096], got[4096];

	(void)state;
	assert_int_equal(vhd_open_io(&w, io, &oo), 0);
	for (int i = 0; i < 3; i++) {
		memset(buf, 0x31 + i, sizeof(buf));
		assert_int_equal(vhd_pwrite(w, buf, bs, (uint64_t)blk[i] * bs), 0);
	}
	assert_int_equal(vhd_flush(w), 0);
	assert_int_equal(tu_open_copy(&v, io, 0), 0);
	vhd_close(w);           /* and io with it */
	for (int i = 0; i < 3; i++) {
		memset(buf, 0x31 + i, sizeof(buf));
		assert_int_equal(vhd_pread(v, got, bs, (uint64_t)blk[i] * bs), 0);
		assert_memory_equal(got, buf, bs);
		/* the next block of the piece: not allocated, zeros */
		memset(buf, 0, sizeof(buf));
		assert_int_equal(vhd_pread(v, got, bs, (uint64_t)(blk[i] + 1) * bs), 0);
		assert_memory_equal(got, buf, bs);
	}
	vhd_close(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_check_reports_all),
		cmocka_unit_test(test_batmap_over_header),
		cmocka_unit_test(test_batmap_dealloc_order),
		cmocka_unit_test(test_bat_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
