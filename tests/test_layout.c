/* test_layout.c - the layout module (libvhd/layout.c) on its own: the
 * metadata extents past the end of the file, where new space goes, the
 * footer moves, mapping and dropping a block when the BAT write fails,
 * the header encoder, and the footer search. */
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

/* ---- a memory file whose writes at one offset fail ---- */
struct failing {
	struct vhd_io io;
	struct vhd_io *in;
	uint64_t fail_at;       /* VHD_NO_OFFSET: none */
	int failed;
};

static int
f_pread(struct vhd_io *io, void *b, size_t n, uint64_t off)
{
	struct failing *f = (struct failing *)io;
	return f->in->ops->pread(f->in, b, n, off);
}

static int
f_pwrite(struct vhd_io *io, const void *b, size_t n, uint64_t off)
{
	struct failing *f = (struct failing *)io;
	if (off <= f->fail_at && f->fail_at < off + n) {
		f->failed++;
		return -EIO;
	}
	return f->in->ops->pwrite(f->in, b, n, off);
}

static int
f_flush(struct vhd_io *io)
{
	struct failing *f = (struct failing *)io;
	return f->in->ops->flush(f->in);
}

static int
f_size(struct vhd_io *io, uint64_t *sz)
{
	struct failing *f = (struct failing *)io;
	return f->in->ops->get_size(f->in, sz);
}

static int
f_trunc(struct vhd_io *io, uint64_t sz)
{
	struct failing *f = (struct failing *)io;
	return f->in->ops->truncate(f->in, sz);
}

static void
f_close(struct vhd_io *io)
{
	struct failing *f = (struct failing *)io;
	f->in->ops->close(f->in);
}

static const struct vhd_io_ops failing_ops = {
	1, f_pread, f_pwrite, f_flush, f_size, f_trunc, NULL, f_close,
};

/* A dynamic image of 1 MiB in 64 KiB blocks with blocks 0 and 1 written:
 * footer copy 0, header 512, BAT 1536..2048, blocks, footer. */
static uint8_t *
image(size_t *n)
{
	struct vhd_io *io = tu_mem_image(VHD_TYPE_DYNAMIC, 1u << 20, BS);
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd *v;
	uint8_t buf[4096];

	assert_non_null(io);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vhd_open_io(&v, io, &oo), 0);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 0), 0);
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), BS), 0);
	/* New blocks' BAT entries reach the file at a commit (flush). */
	assert_int_equal(vhd_flush(v), 0);
	const uint8_t *d = vhd_io_mem_data(io, n);
	uint8_t *copy = malloc(*n);
	assert_non_null(copy);
	memcpy(copy, d, *n);
	vhd_close(v);
	return copy;
}

static struct vhd *
open_failing(struct failing *f, const uint8_t *d, size_t n, unsigned flags)
{
	struct vhd_open_opts oo = { sizeof oo, flags, NULL };
	struct vhd *v;

	memset(f, 0, sizeof(*f));
	f->io.ops = &failing_ops;
	f->io.name = "failing";
	f->fail_at = VHD_NO_OFFSET;
	assert_int_equal(vhd_io_mem_open(&f->in, d, n), 0);
	if (vhd_open_io(&v, &f->io, &oo) < 0)
		fail_msg("open: %s", vhd_errmsg());
	return v;
}

/* Dropping or mapping a block whose BAT write fails leaves the table in
 * memory as the file has it (rw.c did this; compact.c and resize.c did
 * not, before the one function). */
static void
test_map_unmap_restore(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	struct failing f;
	struct vhd *v = open_failing(&f, d, n, VHD_OPEN_RDWR);
	uint32_t b0 = v->bat[0], b1 = v->bat[1];

	(void)state;
	assert_int_not_equal(b0, VHD_BAT_UNUSED);
	f.fail_at = v->hdr.table_offset;        /* the BAT's first sector */
	assert_int_equal(vhd_layout_unmap_block(v, 0), -EIO);
	assert_true(f.failed > 0);
	assert_int_equal(v->bat[0], b0);
	assert_int_equal(vhd_layout_map_block(v, 3, v->next_free, NULL, 1),
			 -EIO);
	assert_int_equal(v->bat[3], VHD_BAT_UNUSED);
	assert_int_equal(vhd_layout_map_block(v, 1, v->next_free, NULL, 0),
			 -EIO);
	assert_int_equal(v->bat[1], b1);
	/* Reads still see the data: the table was not changed. */
	uint8_t buf[16];
	assert_int_equal(vhd_pread(v, buf, sizeof(buf), 0), 0);
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(vhd_pread(v, buf, sizeof(buf), BS), 0);
	assert_int_equal(buf[0], 0x5a);
	/* Without the fault: dropped, and the file says so. */
	f.fail_at = VHD_NO_OFFSET;
	assert_int_equal(vhd_layout_unmap_block(v, 0), 0);
	assert_int_equal(v->bat[0], VHD_BAT_UNUSED);
	assert_int_equal(vhd_pread(v, buf, sizeof(buf), 0), 0);
	assert_int_equal(buf[0], 0);
	vhd_close(v);
	free(d);
}

/* A blktap batmap whose map lies past the end of the file is ignored by
 * the open, but counts in the extents and is stepped over by new space:
 * a grown file would show it. */
static void
test_place_clear_of_meta_past_eof(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	struct failing f;
	struct vhd_ext m[VHD_META_EXTENTS];
	uint64_t foot = n - 512;

	(void)state;
	/* The batmap header in the sector after the BAT (free before the
	 * first block); its 16-sector map 8 KiB past the footer. */
	assert_true(get_be32(d + 1536) * 512ull >= 2560);
	uint64_t map_off = align_up(foot, 4096) + 8192;
	memset(d + 2048, 0, 512);
	memcpy(d + 2048, "tdbatmap", 8);
	put_be64(d + 2048 + 8, map_off);
	put_be32(d + 2048 + 16, 16);
	put_be32(d + 2048 + 20, 0x00010002);
	struct vhd *v = open_failing(&f, d, n, VHD_OPEN_RDWR);
	assert_int_equal(v->batmap.present, 0);
	assert_int_equal(v->batmap.hdr_off, 2048);
	assert_int_equal(v->footer_off, foot);

	/* in_file: what the open validates against; else all of it. */
	size_t k1 = vhd_meta_extents(v, m, 1);
	size_t k0 = vhd_meta_extents(v, m, 0);
	assert_int_equal(k0, k1 + 2);
	int seen = 0;
	for (size_t i = 0; i < k0; i++)
		if (m[i].start == map_off && m[i].end == map_off + 8192)
			seen = 1;
	assert_true(seen);
	struct vhd_ext *x;
	size_t nx;
	assert_int_equal(vhd_extents(v, &x, &nx), 0);
	for (size_t i = 1; i < nx; i++)
		assert_true(x[i - 1].start <= x[i].start);
	assert_int_equal(x[nx - 1].start, map_off);
	free(x);

	/* A block (and the footer behind it) steps over the map; its data
	 * stays 4 KiB aligned. */
	uint64_t len = v->bitmap_size + (uint64_t)v->block_size + 512;
	uint64_t s = vhd_layout_place(v, v->next_free, len, 1);
	assert_true(s < map_off + 8192 ? s + len <= map_off : 1);
	assert_true(s >= map_off + 8192);
	assert_int_equal((s + v->bitmap_size) % VHD_DATA_ALIGN, 0);
	assert_int_equal(s, vhd_block_slot(v, map_off + 8192));
	/* Unaligned metadata placement: 512-byte steps. */
	uint64_t s2 = vhd_layout_place(v, foot + 1, 512, 0);
	assert_int_equal(s2, align_up(foot + 1, 512));
	/* Beyond 2 TiB nothing is placed for a block: the caller refuses. */
	assert_true(vhd_layout_place(v, UINT64_C(1) << 42, len, 1) / 512 >=
		    VHD_BAT_UNUSED);

	/* The write takes that place, the footer moves behind the block. */
	uint8_t buf[512];
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(vhd_pwrite(v, buf, sizeof(buf), 5 * BS), 0);
	assert_int_equal(v->bat[5] * 512ull, s);
	assert_int_equal(v->footer_off, s + v->bitmap_size + v->block_size);
	assert_int_equal(v->next_free, v->footer_off);
	assert_int_equal(v->file_size, v->footer_off + 512);
	vhd_close(v);
	free(d);
}

/* The trailing footer moves down (compact) with a truncate, and up
 * (fixed grow) without one; the footer found again is the one written. */
static void
test_footer_moves(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	struct failing f;
	struct vhd *v = open_failing(&f, d, n, VHD_OPEN_RDWR);
	uint64_t end = v->next_free, foot = v->footer_off;
	uint64_t sz;

	(void)state;
	/* Grow behind new data ending before the footer: the footer stays. */
	assert_int_equal(vhd_layout_grow(v, foot - 512), 0);
	assert_int_equal(v->footer_off, foot);
	assert_int_equal(v->next_free, foot - 512);
	/* Behind the footer: it moves, the file grows. */
	assert_int_equal(vhd_layout_grow(v, foot + 4096), 0);
	assert_int_equal(v->footer_off, foot + 4096);
	assert_int_equal(f.in->ops->get_size(f.in, &sz), 0);
	assert_int_equal(sz, foot + 4096 + 512);
	/* Down again, with the truncate. */
	assert_int_equal(vhd_layout_footer_to(v, end), 0);
	assert_int_equal(v->footer_off, end);
	assert_int_equal(v->file_size, end + 512);
	assert_int_equal(f.in->ops->get_size(f.in, &sz), 0);
	assert_int_equal(sz, end + 512);

	/* The search finds it; the copy at 0 is the same footer. */
	struct vhd_footer_scan s;
	struct vhd_problems p = { .fn = NULL, .arg = NULL };
	uint8_t raw[512];
	uint64_t off;
	unsigned warn;
	assert_int_equal(vhd_footer_scan(f.in, sz, &s), 0);
	assert_int_equal(vhd_footer_pick(&s, "t", VHD_FOOTER_AT_END |
					 VHD_FOOTER_AT_511 | VHD_FOOTER_AT_COPY,
					 0, raw, &off, &warn, &p),
			 VHD_FOOTER_AT_END);
	assert_int_equal(off, end);
	assert_int_equal(warn, 0);
	assert_memory_equal(raw, v->footer_raw, 512);
	assert_true(vhd_footer_same(raw, s.copy));
	vhd_close(v);
	free(d);
}

/* The footer search: the trailing footer, an old 511-byte one, the copy
 * at 0 (dynamic only), and the cookie rule of vhd_probe. */
static void
test_footer_search(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	struct vhd_io *io;
	struct vhd_footer_scan s;
	struct vhd_problems p = { .fn = NULL, .arg = NULL };
	uint8_t raw[512], foot[512];
	uint64_t off;
	unsigned warn, all = VHD_FOOTER_AT_END | VHD_FOOTER_AT_511 |
			     VHD_FOOTER_AT_COPY;

	(void)state;
	memcpy(foot, d + n - 512, 512);
	/* Trailing footer damaged: the copy, placed where the footer was. */
	d[n - 512] ^= 0xff;
	assert_int_equal(vhd_io_mem_open(&io, d, n), 0);
	assert_int_equal(vhd_footer_scan(io, n, &s), 0);
	assert_int_equal(vhd_footer_pick(&s, "t", all, 0, raw, &off, &warn,
					 &p), VHD_FOOTER_AT_COPY);
	assert_int_equal(off, n);
	assert_int_equal(warn, VHD_WARN_FOOTER_FROM_COPY);
	assert_int_equal(p.count, 1);             /* the tail's problem */
	assert_int_equal(p.first.code, VHD_CODE_FOOTER_COOKIE);
	/* Not looking at the copy: nothing. */
	assert_int_equal(vhd_footer_pick(&s, "t", VHD_FOOTER_AT_END |
					 VHD_FOOTER_AT_511, 0, raw, &off,
					 &warn, &p), 0);
	assert_true(vhd_footer_cookie(&s));
	io->ops->close(io);

	/* An old 511-byte footer: the file one byte shorter. */
	memcpy(d + n - 512, foot, 512);
	uint8_t *d511 = malloc(n - 1);
	assert_non_null(d511);
	memcpy(d511, d, n - 512);
	memcpy(d511 + n - 512, foot, 511);
	assert_int_equal(vhd_io_mem_open(&io, d511, n - 1), 0);
	assert_int_equal(vhd_footer_scan(io, n - 1, &s), 0);
	assert_int_equal(vhd_footer_pick(&s, "t", all, 0, raw, &off, &warn,
					 &p), VHD_FOOTER_AT_511);
	assert_int_equal(off, n - 1 - 511);
	assert_int_equal(warn, VHD_WARN_FOOTER_511);
	io->ops->close(io);
	free(d511);

	/* Byte 85 (tapdisk's hidden flag) alone does not make two footers
	 * differ; any other byte does. */
	memcpy(raw, foot, 512);
	raw[85] ^= 1;
	assert_true(vhd_footer_same(raw, foot));
	raw[84] ^= 1;
	assert_false(vhd_footer_same(raw, foot));

	/* A fixed disk has no copy to fall back on. */
	struct vhd_io *fx = tu_mem_image(VHD_TYPE_FIXED, 1u << 20, 0);
	size_t fn;
	const uint8_t *fd = vhd_io_mem_data(fx, &fn);
	uint8_t *fc = malloc(fn);
	assert_non_null(fc);
	memcpy(fc, fd, fn);
	memcpy(fc, fd + fn - 512, 512);      /* a footer at 0 too */
	fc[fn - 512] ^= 0xff;
	assert_int_equal(vhd_io_mem_open(&io, fc, fn), 0);
	assert_int_equal(vhd_footer_scan(io, fn, &s), 0);
	assert_int_equal(vhd_footer_pick(&s, "t", all, 0, raw, &off, &warn,
					 &p), 0);
	io->ops->close(io);
	fx->ops->close(fx);
	free(fc);
	free(d);
}

/* The header encoder: decode then encode gives the same bytes; a changed
 * field comes back with a valid checksum; name and locators stay. */
static void
test_header_encode(void **state)
{
	size_t n;
	uint8_t *d = image(&n);
	struct vhd_header h, h2;
	uint8_t raw[1024];
	struct vhd_problems p = { .fn = NULL, .arg = NULL };
	unsigned warn = 0;

	(void)state;
	memcpy(raw, d + 512, 1024);
	memset(raw + 64, 0x11, 512);            /* "name": left alone */
	put_be32(raw + 36, 0);
	put_be32(raw + 36, vhd_checksum(raw, 1024, 36));
	vhd_header_decode(raw, &h);
	uint8_t again[1024];
	memcpy(again, raw, 1024);
	vhd_header_encode(&h, again);
	assert_memory_equal(again, raw, 1024);
	h.max_entries = 32;
	h.table_offset = 4096;
	vhd_header_encode(&h, again);
	vhd_header_decode(again, &h2);
	assert_int_equal(h2.max_entries, 32);
	assert_int_equal(h2.table_offset, 4096);
	assert_int_equal(h2.checksum, vhd_checksum(again, 1024, 36));
	assert_int_equal(vhd_header_check(again, "t", 512, 1u << 20, 1u << 24,
					  0, &warn, &p), 0);
	assert_memory_equal(again + 64, raw + 64, 512 + 192 + 256);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_unmap_restore),
		cmocka_unit_test(test_place_clear_of_meta_past_eof),
		cmocka_unit_test(test_footer_moves),
		cmocka_unit_test(test_footer_search),
		cmocka_unit_test(test_header_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
