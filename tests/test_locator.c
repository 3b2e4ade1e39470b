/* test_locator.c - parent locators, parent names and UTF-16 (locator.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "locator.h"

/* ---- a minimal in-memory backend (only pread is used) ---- */
struct tio {
	struct vhd_io io;
	uint8_t *data;
	size_t size;
	int fail;               /* pread fails with -EIO */
};

static int
tio_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct tio *t = (struct tio *)io;

	if (t->fail || off > t->size || n > t->size - off)
		return -EIO;
	memcpy(buf, t->data + off, n);
	return 0;
}

static const struct vhd_io_ops tio_ops = { .version = 1, .pread = tio_pread };

static void
tio_init(struct tio *t, size_t size)
{
	memset(t, 0, sizeof(*t));
	t->io.ops = &tio_ops;
	t->io.name = "mem";
	t->data = calloc(1, size);
	assert_non_null(t->data);
	t->size = size;
}

static void
free_cands(char **c, int n)
{
	for (int i = 0; i < n; i++)
		free(c[i]);
}

/* Puts a locator entry into slot i of hdr and its data at off. */
static void
put_loc(struct tio *t, uint8_t *hdr, int slot, uint32_t code,
	const void *data, size_t len, uint64_t off)
{
	struct vhd_locator l = { code, 512, (uint32_t)len, off };

	vhd_locator_encode(&l, hdr + 576 + 24 * slot);
	if (off + len <= t->size)
		memcpy(t->data + off, data, len);
}

static size_t
u16le(const char *s, uint8_t *out, size_t out_size)
{
	int n = vhd_utf8_to_utf16(s, 0, out, out_size);

	assert_true(n >= 0);
	return (size_t)n;
}

static void
set_name(uint8_t *hdr, const char *name)
{
	memset(hdr + 64, 0, 512);
	assert_true(vhd_utf8_to_utf16(name, 1, hdr + 64, 512) >= 0);
}

/* ---- UTF-16 ---- */

static void
test_utf16_basic(void **state)
{
	static const uint8_t le[] = { 'a', 0, 0xE9, 0, 0xAC, 0x20, 0x3D, 0xD8,
				      0x00, 0xDE, 0, 0, 'z', 0 };
	static const uint8_t be[] = { 0, 'a', 0, 0xE9, 0x20, 0xAC, 0xD8, 0x3D,
				      0xDE, 0x00 };
	char out[32];
	(void)state;

	/* a, e-acute, euro sign, U+1F600 (surrogate pair), stop at NUL */
	assert_int_equal(vhd_utf16_to_utf8(le, sizeof(le), 0, out, sizeof(out)), 10);
	assert_string_equal(out, "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
	assert_int_equal(vhd_utf16_to_utf8(be, sizeof(be), 1, out, sizeof(out)), 10);
	assert_string_equal(out, "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
	/* odd trailing byte ignored */
	assert_int_equal(vhd_utf16_to_utf8(le, 3, 0, out, sizeof(out)), 1);
	assert_string_equal(out, "a");
	/* empty */
	assert_int_equal(vhd_utf16_to_utf8(le, 0, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* exact fit and one short */
	assert_int_equal(vhd_utf16_to_utf8(le, 4, 0, out, 4), 3);
	assert_int_equal(vhd_utf16_to_utf8(le, 4, 0, out, 3), -ENAMETOOLONG);
	assert_int_equal(vhd_utf16_to_utf8(le, 10, 0, out, 10), -ENAMETOOLONG);
	assert_int_equal(vhd_utf16_to_utf8(le, 2, 0, out, 0), -ENAMETOOLONG);
}

static void
test_utf16_lone_surrogates(void **state)
{
	static const uint8_t hi_end[] = { 'a', 0, 0x3D, 0xD8 };
	static const uint8_t hi_then_a[] = { 0x3D, 0xD8, 'a', 0 };
	static const uint8_t hi_then_hi[] = { 0x3D, 0xD8, 0x3D, 0xD8 };
	static const uint8_t lo_first[] = { 0x00, 0xDE, 0x3D, 0xD8 };
	static const uint8_t hi_then_nul[] = { 0x3D, 0xD8, 0, 0 };
	char out[32];
	(void)state;

	assert_int_equal(vhd_utf16_to_utf8(hi_end, 4, 0, out, 32), -EBADMSG);
	assert_int_equal(vhd_utf16_to_utf8(hi_then_a, 4, 0, out, 32), -EBADMSG);
	assert_int_equal(vhd_utf16_to_utf8(hi_then_hi, 4, 0, out, 32), -EBADMSG);
	assert_int_equal(vhd_utf16_to_utf8(lo_first, 4, 0, out, 32), -EBADMSG);
	assert_int_equal(vhd_utf16_to_utf8(hi_then_nul, 4, 0, out, 32), -EBADMSG);
	/* truncated pair: high surrogate in the last full unit, odd byte */
	assert_int_equal(vhd_utf16_to_utf8(hi_then_a, 3, 0, out, 32), -EBADMSG);
}

static void
test_utf8_to_utf16(void **state)
{
	uint8_t buf[64];
	char back[64];
	const char *s = "p\xC3\xA9re\xE2\x82\xAC\xF0\x9F\x98\x80.vhd";
	int n;
	(void)state;

	n = vhd_utf8_to_utf16(s, 0, buf, sizeof(buf));
	assert_int_equal(n, 9 * 2 + 4);       /* 9 BMP units + 1 pair */
	assert_int_equal(buf[0], 'p');
	assert_int_equal(buf[1], 0);
	assert_int_equal(vhd_utf16_to_utf8(buf, (size_t)n, 0, back, sizeof(back)),
			 (int)strlen(s));
	assert_string_equal(back, s);
	n = vhd_utf8_to_utf16(s, 1, buf, sizeof(buf));
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[1], 'p');
	assert_int_equal(vhd_utf16_to_utf8(buf, (size_t)n, 1, back, sizeof(back)),
			 (int)strlen(s));
	assert_string_equal(back, s);
	/* surrogate pair bytes: U+1F600 = D83D DE00 */
	n = vhd_utf8_to_utf16("\xF0\x9F\x98\x80", 0, buf, sizeof(buf));
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "\x3D\xD8\x00\xDE", 4);

	assert_int_equal(vhd_utf8_to_utf16("", 0, buf, 0), 0);
	assert_int_equal(vhd_utf8_to_utf16("ab", 0, buf, 4), 4);
	assert_int_equal(vhd_utf8_to_utf16("ab", 0, buf, 3), -ENAMETOOLONG);
	assert_int_equal(vhd_utf8_to_utf16("\xF0\x9F\x98\x80", 0, buf, 3),
			 -ENAMETOOLONG);
	/* invalid UTF-8: overlong, encoded surrogate, truncated, stray
	 * continuation, beyond U+10FFFF, 0xFF */
	assert_int_equal(vhd_utf8_to_utf16("\xC0\x80", 0, buf, 64), -EINVAL);
	assert_int_equal(vhd_utf8_to_utf16("\xE0\x80\xAF", 0, buf, 64), -EINVAL);
	assert_int_equal(vhd_utf8_to_utf16("\xED\xA0\x80", 0, buf, 64), -EINVAL);
	assert_int_equal(vhd_utf8_to_utf16("a\xE2\x82", 0, buf, 64), -EINVAL);
	assert_int_equal(vhd_utf8_to_utf16("\x80", 0, buf, 64), -EINVAL);
	assert_int_equal(vhd_utf8_to_utf16("\xF4\x90\x80\x80", 0, buf, 64), -EINVAL);
	assert_int_equal(vhd_utf8_to_utf16("\xFF", 0, buf, 64), -EINVAL);
}

/* ---- entries ---- */

static void
test_locator_codec(void **state)
{
	static const uint8_t raw[24] = {
		'W', '2', 'r', 'u', 0, 1, 0, 0, 0, 0, 0, 0x20, 0xAA, 0xBB, 0xCC, 0xDD,
		0, 0, 0, 1, 0, 0, 0x30, 0,
	};
	struct vhd_locator l;
	uint8_t back[24];
	(void)state;

	vhd_locator_decode(raw, &l);
	assert_int_equal(l.code, VHD_PLAT_W2RU);
	assert_int_equal(l.space, 65536);
	assert_int_equal(l.length, 32);
	assert_int_equal(l.offset, UINT64_C(0x100003000));
	vhd_locator_encode(&l, back);
	/* the reserved field is written as zero */
	assert_memory_equal(back, raw, 12);
	assert_memory_equal(back + 12, "\0\0\0\0", 4);
	assert_memory_equal(back + 16, raw + 16, 8);
	assert_int_equal(VHD_PLAT_W2KU, 0x57326B75u);
	assert_memory_equal("MacX", "\x4D\x61\x63\x58", 4);
}

static void
test_locator_extent(void **state)
{
	struct vhd_locator l = { VHD_PLAT_W2RU, 512, 26, 3072 };
	(void)state;

	assert_int_equal(vhd_locator_extent(&l), 512);          /* blktap */
	l.space = 65536; l.length = 32;
	assert_int_equal(vhd_locator_extent(&l), 65536);        /* Hyper-V */
	l.space = 4096; l.length = 84;
	assert_int_equal(vhd_locator_extent(&l), 4096);
	l.space = 1; l.length = 26;
	assert_int_equal(vhd_locator_extent(&l), 512);          /* sectors */
	l.space = 2; l.length = 600;
	assert_int_equal(vhd_locator_extent(&l), 1024);
	l.space = 2; l.length = 2000;                           /* damaged */
	assert_int_equal(vhd_locator_extent(&l), 2000);
	l.space = 0xFFFFFFFFu; l.length = 0xFFFFFFFFu;
	assert_int_equal(vhd_locator_extent(&l), 0xFFFFFFFFu);
	l.space = 0x10000000u; l.length = 0xFFFFFFFFu;
	assert_int_equal(vhd_locator_extent(&l), UINT64_C(0x10000000) * 512);
	l.code = VHD_PLAT_NONE;
	assert_int_equal(vhd_locator_extent(&l), 0);
}

/* ---- candidates ---- */

static void
test_candidates_every_kind(void **state)
{
	struct tio t;
	uint8_t hdr[1024] = { 0 }, u[256], alias[150] = { 0 };
	char *c[VHD_MAX_PARENT_CANDIDATES];
	const char *macx = "file:///Users/a%20b/p5.vhd";
	int n;
	(void)state;

	tio_init(&t, 16384);
	/* entries stored in an order unlike the lookup order */
	put_loc(&t, hdr, 0, VHD_PLAT_MAC, alias, sizeof(alias), 8192);
	put_loc(&t, hdr, 1, VHD_PLAT_MACX, macx, strlen(macx), 7680);
	put_loc(&t, hdr, 2, VHD_PLAT_WI2K, "/abs/p4.vhd", 11, 7168);
	put_loc(&t, hdr, 3, VHD_PLAT_W2KU, u, u16le("C:\\dir\\p3.vhd", u, sizeof(u)), 6656);
	put_loc(&t, hdr, 4, VHD_PLAT_WI2R, "..\\x\\p2.vhd", 11, 6144);
	put_loc(&t, hdr, 5, VHD_PLAT_W2RU, u, u16le(".\\p.vhd", u, sizeof(u)), 5632);
	/* Mac alias record, version 2, file name "p6.vhd" at offset 50 */
	alias[7] = 2;
	alias[50] = 6;
	memcpy(alias + 51, "p6.vhd", 6);
	memcpy(t.data + 8192, alias, sizeof(alias));
	set_name(hdr, "C:\\z\\p7.vhd");

	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d/c/child.vhd", c);
	assert_int_equal(n, 7);
	assert_string_equal(c[0], "/d/c/p.vhd");
	assert_string_equal(c[1], "/d/c/../x/p2.vhd");
	assert_string_equal(c[2], "/d/c/p3.vhd");
	assert_string_equal(c[3], "/abs/p4.vhd");
	assert_string_equal(c[4], "/Users/a b/p5.vhd");
	assert_string_equal(c[5], "/d/c/p6.vhd");
	assert_string_equal(c[6], "/d/c/p7.vhd");
	free_cands(c, n);
	free(t.data);
}

static void
test_candidates_relative_child(void **state)
{
	struct tio t;
	uint8_t hdr[1024] = { 0 }, u[256];
	char *c[VHD_MAX_PARENT_CANDIDATES];
	const char *macx = "file://localhost/srv/img/p%2Fq.vhd";
	const char *macx2 = "file://./sub/p.vhd";
	const char *macx3 = "file://mac.local/Volumes/HD/p9.vhd";
	const char *macx4 = "file://../up/p10.vhd";
	int n;
	(void)state;

	tio_init(&t, 8192);
	put_loc(&t, hdr, 0, VHD_PLAT_W2RU, u, u16le(".\\.\\p.vhd", u, sizeof(u)), 1024);
	put_loc(&t, hdr, 1, VHD_PLAT_MACX, macx, strlen(macx), 2048);
	put_loc(&t, hdr, 2, VHD_PLAT_MACX, macx2, strlen(macx2), 3072);
	put_loc(&t, hdr, 3, VHD_PLAT_MACX, macx3, strlen(macx3), 4096);
	put_loc(&t, hdr, 4, VHD_PLAT_MACX, macx4, strlen(macx4), 5120);
	set_name(hdr, "p.vhd");
	/* child given without a directory: candidates relative to the cwd */
	n = vhd_parent_candidates(&t.io, t.size, hdr, "child.vhd", c);
	assert_int_equal(n, 5);
	assert_string_equal(c[0], "p.vhd");
	assert_string_equal(c[1], "/srv/img/p/q.vhd");
	assert_string_equal(c[2], "sub/p.vhd");
	assert_string_equal(c[3], "/Volumes/HD/p9.vhd");
	assert_string_equal(c[4], "../up/p10.vhd");
	free_cands(c, n);
	/* child in the root directory */
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/child.vhd", c);
	assert_int_equal(n, 5);
	assert_string_equal(c[0], "/p.vhd");
	assert_string_equal(c[2], "/sub/p.vhd");
	assert_string_equal(c[4], "/../up/p10.vhd");
	free_cands(c, n);
	/* no child path at all (a memory backend) */
	n = vhd_parent_candidates(&t.io, t.size, hdr, NULL, c);
	assert_int_equal(n, 5);
	assert_string_equal(c[0], "p.vhd");
	free_cands(c, n);
	free(t.data);
}

static void
test_candidates_bad_entries(void **state)
{
	struct tio t;
	uint8_t hdr[1024] = { 0 }, u[256];
	char *c[VHD_MAX_PARENT_CANDIDATES];
	struct vhd_locator l;
	static const uint8_t lone[] = { 'a', 0, 0x3D, 0xD8, 'b', 0 };
	int n;
	(void)state;

	tio_init(&t, 4096);
	/* data beyond the end of the file */
	put_loc(&t, hdr, 0, VHD_PLAT_W2RU, u, u16le(".\\gone.vhd", u, sizeof(u)), 4090);
	/* offset + length overflows */
	l = (struct vhd_locator){ VHD_PLAT_W2KU, 512, 64, UINT64_MAX - 8 };
	vhd_locator_encode(&l, hdr + 576 + 24);
	/* absurd length */
	l = (struct vhd_locator){ VHD_PLAT_W2KU, 512, 0xFFFFFFF0u, 0 };
	vhd_locator_encode(&l, hdr + 576 + 48);
	/* zero length */
	l = (struct vhd_locator){ VHD_PLAT_WI2K, 512, 0, 2048 };
	vhd_locator_encode(&l, hdr + 576 + 72);
	/* lone surrogate */
	put_loc(&t, hdr, 4, VHD_PLAT_W2KU, lone, sizeof(lone), 2560);
	/* Mac alias too short, then one with a bad name length */
	put_loc(&t, hdr, 5, VHD_PLAT_MAC, "xx", 2, 3072);
	memset(u, 0xFF, sizeof(u));
	put_loc(&t, hdr, 6, VHD_PLAT_MAC, u, 200, 3584);
	/* unknown code */
	put_loc(&t, hdr, 7, 0x41424344u, "zzz", 3, 1024);

	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d/child.vhd", c);
	assert_int_equal(n, 0);
	/* a header name that is only a directory yields nothing either */
	set_name(hdr, "C:\\dir\\");
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d/child.vhd", c);
	assert_int_equal(n, 0);
	/* a header name with a lone surrogate is skipped */
	memset(hdr + 64, 0, 512);
	hdr[64] = 0xD8;
	hdr[65] = 0x3D;
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d/child.vhd", c);
	assert_int_equal(n, 0);
	/* read errors skip the entry, the name still counts */
	put_loc(&t, hdr, 0, VHD_PLAT_W2RU, u, u16le(".\\p.vhd", u, sizeof(u)), 1024);
	set_name(hdr, "q.vhd");
	t.fail = 1;
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d/child.vhd", c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0], "/d/q.vhd");
	free_cands(c, n);
	free(t.data);
}

static void
test_candidates_dedup(void **state)
{
	struct tio t;
	uint8_t hdr[1024] = { 0 }, u[256];
	char *c[VHD_MAX_PARENT_CANDIDATES];
	int n;
	(void)state;

	tio_init(&t, 8192);
	put_loc(&t, hdr, 0, VHD_PLAT_W2KU, u, u16le(".\\p.vhd", u, sizeof(u)), 1024);
	put_loc(&t, hdr, 1, VHD_PLAT_W2RU, u, u16le("./p.vhd", u, sizeof(u)), 2048);
	put_loc(&t, hdr, 2, VHD_PLAT_MACX, "file://./p.vhd", 14, 3072);
	set_name(hdr, "p.vhd");
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d//e/child.vhd", c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0], "/d/e/p.vhd");
	free_cands(c, n);
	/* more distinct paths than fit: the list stops at the limit */
	for (int i = 0; i < 8; i++) {
		char p[32];

		snprintf(p, sizeof(p), "/dir/p%d.vhd", i);
		put_loc(&t, hdr, i, VHD_PLAT_WI2K, p, strlen(p), 512 + 512 * (uint64_t)i);
	}
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/d/child.vhd", c);
	assert_int_equal(n, 9);
	assert_string_equal(c[0], "/dir/p0.vhd");
	assert_string_equal(c[8], "/d/p.vhd");
	free_cands(c, n);
	free(t.data);
}

/* ---- fixtures made by other software ---- */

static const char *
fixtures_dir(void)
{
	const char *d = getenv("SHARED_FIXTURES");

	return d && *d ? d : "../shared/fixtures";
}

static int
fixture_candidates(const char *name, char **c)
{
	char path[PATH_MAX];
	uint8_t foot[512], hdr[1024];
	struct stat st;
	struct tio t;
	uint64_t off;
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		print_message("no fixture %s\n", path);
		skip();
	}
	assert_int_equal(fstat(fd, &st), 0);
	tio_init(&t, (size_t)st.st_size);
	assert_int_equal(pread(fd, t.data, t.size, 0), (ssize_t)t.size);
	close(fd);
	memcpy(foot, t.data + t.size - 512, 512);
	assert_memory_equal(foot, "conectix", 8);
	off = 0;
	for (int i = 16; i < 24; i++)
		off = off << 8 | foot[i];
	assert_true(off + 1024 <= t.size);
	memcpy(hdr, t.data + off, 1024);
	assert_memory_equal(hdr, "cxsparse", 8);
	n = vhd_parent_candidates(&t.io, t.size, hdr, "/images/moved/child.vhd", c);
	free(t.data);
	return n;
}

static void
test_fixture_windows(void **state)
{
	char *c[VHD_MAX_PARENT_CANDIDATES];
	int n;
	(void)state;

	/* W2ku "C:\Projects\...\fat-parent.vhd" at 4096 before the BAT, W2ru
	 * ".\fat-parent.vhd" after it, the name a full C:\ path: all three
	 * lead to fat-parent.vhd next to the child. */
	n = fixture_candidates("win10-diskpart-child-noparent.vhd", c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0], "/images/moved/fat-parent.vhd");
	free_cands(c, n);
}

static void
test_fixture_blktap(void **state)
{
	char *c[VHD_MAX_PARENT_CANDIDATES];
	int n;
	(void)state;

	/* MacX "file://./tap-parent-8M.vhd", W2ku and W2ru ".\tap-parent-8M.vhd" */
	n = fixture_candidates("tap-child-8M.vhd", c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0], "/images/moved/tap-parent-8M.vhd");
	free_cands(c, n);
	n = fixture_candidates("tap-child-of-raw.vhd", c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0], "/images/moved/tap-rawparent.img");
	free_cands(c, n);
}

static void
test_fixture_qemu_name_only(void **state)
{
	char *c[VHD_MAX_PARENT_CANDIDATES];
	int n;
	(void)state;

	/* no locators at all: only the header's parent name */
	n = fixture_candidates("image-differential.vhd", c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0], "/images/moved/image.vhd");
	free_cands(c, n);
}

/* ---- building ---- */

static char tmpdir[64];

static int
mk_tmp(void **state)
{
	char p[128];
	(void)state;

	strcpy(tmpdir, "/tmp/test_locator.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/a", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/b", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/b/p.vhd", tmpdir);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	snprintf(p, sizeof(p), "%s/a/sib.vhd", tmpdir);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	return 0;
}

static int
rm_tmp(void **state)
{
	char cmd[128];
	(void)state;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
check_built(const uint8_t *hdr, const uint8_t *blob, size_t blob_len,
	    uint64_t data_off, const char *want_abs, const char *want_rel,
	    const char *want_name)
{
	struct vhd_locator l[8];
	char s[1024];

	for (int i = 0; i < 8; i++)
		vhd_locator_decode(hdr + 576 + 24 * i, &l[i]);
	assert_int_equal(l[0].code, VHD_PLAT_W2KU);
	assert_int_equal(l[1].code, VHD_PLAT_W2RU);
	for (int i = 2; i < 8; i++) {
		static const uint8_t zero[24];

		assert_memory_equal(hdr + 576 + 24 * i, zero, 24);
	}
	assert_int_equal(l[0].offset, data_off);
	assert_int_equal(l[0].space % 512, 0);
	assert_true(l[0].space >= l[0].length);
	assert_int_equal(l[1].offset, data_off + l[0].space);
	assert_int_equal(l[1].space % 512, 0);
	assert_true(l[1].space >= l[1].length);
	assert_int_equal(blob_len, (size_t)l[0].space + l[1].space);
	assert_true(vhd_utf16_to_utf8(blob, l[0].length, 0, s, sizeof(s)) > 0);
	assert_string_equal(s, want_abs);
	assert_true(vhd_utf16_to_utf8(blob + l[1].offset - data_off, l[1].length,
				      0, s, sizeof(s)) > 0);
	assert_string_equal(s, want_rel);
	assert_true(vhd_utf16_to_utf8(hdr + 64, 512, 1, s, sizeof(s)) > 0);
	assert_string_equal(s, want_name);
}

static void
test_build(void **state)
{
	uint8_t hdr[1024], *blob = NULL;
	size_t len = 0;
	char child[128], parent[128], want[256], *real;
	char *c[VHD_MAX_PARENT_CANDIDATES];
	struct tio t;
	int n;
	(void)state;

	real = realpath(tmpdir, NULL);
	assert_non_null(real);
	/* parent in a sibling directory; the child does not exist yet */
	snprintf(child, sizeof(child), "%s/a/child.vhd", tmpdir);
	snprintf(parent, sizeof(parent), "%s/a/../b/p.vhd", tmpdir);
	memset(hdr, 0xEE, sizeof(hdr));
	assert_int_equal(vhd_locators_build(child, parent, hdr, 1536, &blob, &len), 0);
	snprintf(want, sizeof(want), "%s/b/p.vhd", real);
	check_built(hdr, blob, len, 1536, want, ".\\..\\b\\p.vhd", "p.vhd");
	/* the name field is NUL-padded */
	assert_int_equal(hdr[64 + 10], 0);
	assert_int_equal(hdr[575], 0);

	/* and reading them back finds the parent first through W2ru */
	tio_init(&t, 1536 + len);
	memcpy(t.data + 1536, blob, len);
	n = vhd_parent_candidates(&t.io, t.size, hdr, child, c);
	assert_int_equal(n, 3);
	snprintf(want, sizeof(want), "%s/a/../b/p.vhd", tmpdir);
	assert_string_equal(c[0], want);
	snprintf(want, sizeof(want), "%s/b/p.vhd", real);
	assert_string_equal(c[1], want);
	snprintf(want, sizeof(want), "%s/a/p.vhd", tmpdir);
	assert_string_equal(c[2], want);
	free_cands(c, n);
	free(t.data);
	free(blob);

	/* same directory, relative paths given */
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(vhd_locators_build("a/c2.vhd", "a/sib.vhd", hdr, 4096,
					    &blob, &len), 0);
	snprintf(want, sizeof(want), "%s/a/sib.vhd", real);
	check_built(hdr, blob, len, 4096, want, ".\\sib.vhd", "sib.vhd");
	free(blob);
	/* parent below the child's directory */
	assert_int_equal(vhd_locators_build("c3.vhd", "b/p.vhd", hdr, 512,
					    &blob, &len), 0);
	snprintf(want, sizeof(want), "%s/b/p.vhd", real);
	check_built(hdr, blob, len, 512, want, ".\\b\\p.vhd", "p.vhd");
	free(blob);
	/* a directory whose name shares a prefix with the child's */
	assert_int_equal(vhd_locators_build("b/../a/c4.vhd", "b/p.vhd", hdr, 512,
					    &blob, &len), 0);
	check_built(hdr, blob, len, 512, want, ".\\..\\b\\p.vhd", "p.vhd");
	free(blob);

	assert_int_equal(vhd_locators_build("c.vhd", "b/p.vhd", hdr, 100,
					    &blob, &len), -EINVAL);
	assert_int_equal(vhd_locators_build("c.vhd", "nodir/x/p.vhd", hdr, 512,
					    &blob, &len) < 0, 1);
	free(real);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf16_basic),
		cmocka_unit_test(test_utf16_lone_surrogates),
		cmocka_unit_test(test_utf8_to_utf16),
		cmocka_unit_test(test_locator_codec),
		cmocka_unit_test(test_locator_extent),
		cmocka_unit_test(test_candidates_every_kind),
		cmocka_unit_test(test_candidates_relative_child),
		cmocka_unit_test(test_candidates_bad_entries),
		cmocka_unit_test(test_candidates_dedup),
		cmocka_unit_test(test_fixture_windows),
		cmocka_unit_test(test_fixture_blktap),
		cmocka_unit_test(test_fixture_qemu_name_only),
		cmocka_unit_test_setup_teardown(test_build, mk_tmp, rm_tmp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
