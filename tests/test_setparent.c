/* test_setparent.c - vhd_set_parent's on-disk result and its crash-safe
 * order, checked on the raw bytes of the file. */
#include <errno.h>
#include <fcntl.h>
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
#include "lib_testutil.h"
#include "locator.h"

#define SIZE (4u * 1024 * 1024)

static char dir[64];
static char pbase[128], pchild[128], pcopy[160];
static uint8_t *model;

static uint32_t
sum(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			s += p[i];
	return ~s;
}

static void
verify(const char *path)
{
	struct vhd *v;
	uint8_t *b = malloc(SIZE);

	assert_non_null(b);
	if (vhd_open(&v, path, VHD_OPEN_RDONLY) < 0)
		fail_msg("open %s: %s", path, vhd_errmsg());
	assert_int_equal(vhd_pread(v, b, SIZE, 0), 0);
	assert_memory_equal(b, model, SIZE);
	vhd_close(v);
	free(b);
}

static int
setup(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o,
				     .type = VHD_TYPE_DYNAMIC, .size = SIZE,
				     .block_size = 1024 * 1024 };
	struct vhd *v;
	uint8_t buf[8192];
	(void)state;

	strcpy(dir, "/tmp/test_setparent.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(pbase, sizeof(pbase), "%s/base.vhd", dir);
	snprintf(pchild, sizeof(pchild), "%s/child.vhd", dir);
	model = calloc(1, SIZE);
	if (model == NULL || vhd_create(pbase, &o) < 0 ||
	    vhd_open(&v, pbase, VHD_OPEN_RDWR) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	if (vhd_pwrite(v, buf, sizeof(buf), 0) < 0)
		return -1;
	memcpy(model, buf, sizeof(buf));
	vhd_close(v);
	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.parent = pbase;
	if (vhd_create(pchild, &o) < 0 || vhd_open(&v, pchild, VHD_OPEN_RDWR) < 0)
		return -1;
	memset(buf, 0xA5, sizeof(buf));
	if (vhd_pwrite(v, buf, 4096, 2 * 1024 * 1024) < 0)
		return -1;
	memcpy(model + 2 * 1024 * 1024, buf, 4096);
	vhd_close(v);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	(void)state;

	free(model);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_layout_and_crash_order(void **state)
{
	uint8_t *before, *after, *hdr, *crash;
	size_t nb, na;
	uint64_t ho, bat, data_end = 0, loc_start = UINT64_MAX;
	uint32_t entries, bsize, bmsize;
	struct vhd_locator l;
	struct stat st;
	char sub[128], name[600];
	(void)state;

	/* the parent moves into a subdirectory under another name */
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(pcopy, sizeof(pcopy), "%s/moved base.vhd", sub);
	assert_int_equal(rename(pbase, pcopy), 0);
	before = tu_slurp(pchild, &nb);
	assert_int_equal(vhd_set_parent(pchild, pcopy, 0), 0);
	after = tu_slurp(pchild, &na);
	verify(pchild);

	/* the new locators fit into the room vhd_create left before the
	 * BAT: the file keeps its size and footers */
	assert_int_equal(na, nb);
	assert_memory_equal(after + na - 512, before + nb - 512, 512);
	assert_memory_equal(after, before, 512);
	/* header: checksum right, parent name and id, timestamp = mtime */
	ho = tu_be64(after + 16);
	hdr = after + ho;
	assert_int_equal(tu_be32(hdr + 36), sum(hdr, 1024, 36));
	assert_memory_equal(hdr + 40, before + ho + 40, 16);       /* same id */
	assert_true(vhd_utf16_to_utf8(hdr + 64, 512, 1, name, sizeof(name)) > 0);
	assert_string_equal(name, "moved base.vhd");
	assert_int_equal(stat(pcopy, &st), 0);
	assert_int_equal(tu_be32(hdr + 56), (uint32_t)(st.st_mtime - 946684800));
	/* new locator data between header and BAT, clear of the old,
	 * which is untouched */
	bat = tu_be64(hdr + 16);
	entries = tu_be32(hdr + 28);
	bsize = tu_be32(hdr + 32);
	bmsize = (bsize / 512 / 8 + 511) / 512 * 512;
	for (uint32_t i = 0; i < entries; i++) {
		uint32_t e = tu_be32(after + bat + 4 * i);

		if (e != 0xFFFFFFFFu && (uint64_t)e * 512 + bmsize + bsize > data_end)
			data_end = (uint64_t)e * 512 + bmsize + bsize;
	}
	assert_true(data_end > 0);
	for (int i = 0; i < 8; i++) {
		struct vhd_locator old;

		vhd_locator_decode(hdr + 576 + 24 * i, &l);
		vhd_locator_decode(before + ho + 576 + 24 * i, &old);
		if (l.code != VHD_PLAT_NONE) {
			assert_true(l.offset >= ho + 1024);
			assert_true(l.offset + vhd_locator_extent(&l) <= bat);
			if (l.offset < loc_start)
				loc_start = l.offset;
		}
		if (old.code != VHD_PLAT_NONE) {
			assert_true(old.offset + vhd_locator_extent(&old) <= bat);
			assert_memory_equal(after + old.offset, before + old.offset,
					    old.length);
			for (int j = 0; j < 8; j++) {
				vhd_locator_decode(hdr + 576 + 24 * j, &l);
				if (l.code != VHD_PLAT_NONE)
					assert_false(l.offset < old.offset +
						     vhd_locator_extent(&old) &&
						     old.offset < l.offset +
						     vhd_locator_extent(&l));
			}
		}
	}
	assert_true(loc_start < bat);

	/* a crash before the header write: the old header over the new
	 * file still opens on the original parent */
	crash = malloc(na);
	assert_non_null(crash);
	memcpy(crash, after, na);
	memcpy(crash + ho, before + ho, 1024);
	snprintf(name, sizeof(name), "%s/crash.vhd", dir);
	tu_spill(name, crash, na);
	assert_int_equal(rename(pcopy, pbase), 0);
	verify(name);
	/* and the finished one opens on the moved parent only */
	{
		struct vhd *v;

		assert_int_equal(vhd_open(&v, pchild, VHD_OPEN_RDONLY), -ENOENT);
		assert_non_null(strstr(vhd_errmsg(), "moved base.vhd"));
	}
	assert_int_equal(rename(pbase, pcopy), 0);
	verify(pchild);
	assert_int_equal(vhd_check(pchild, 0, NULL, NULL), 0);
	free(crash);
	free(before);
	free(after);
	unlink(name);

	/* repeated set-parent keeps working, the two sets of locators
	 * taking turns before the BAT */
	assert_int_equal(rename(pcopy, pbase), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(vhd_set_parent(pchild, pbase, 0), 0);
	assert_int_equal(stat(pchild, &st), 0);
	assert_int_equal((size_t)st.st_size, na);
	verify(pchild);
	assert_int_equal(vhd_check(pchild, 0, NULL, NULL), 0);
	/* new blocks still go after everything */
	{
		struct vhd *v;
		uint8_t b[4096];

		memset(b, 0x3C, sizeof(b));
		assert_int_equal(vhd_open(&v, pchild, VHD_OPEN_RDWR), 0);
		assert_int_equal(vhd_pwrite(v, b, sizeof(b), 3 * 1024 * 1024), 0);
		memcpy(model + 3 * 1024 * 1024, b, sizeof(b));
		vhd_close(v);
	}
	verify(pchild);
	assert_int_equal(vhd_check(pchild, 0, NULL, NULL), 0);
	rmdir(sub);
}

#ifndef _WIN32
/* Paths too long for the room before the BAT: the first long set fits
 * beside the short one, the second no longer does and is appended after
 * every block, with the trailing footer moved behind it.  Not built for
 * Windows: its paths stop at 260 characters (MAX_PATH) and this needs
 * about 2,800; the placement logic it tests has no platform code. */
static void
test_long_paths_appended(void **state)
{
	char deep[4096], cmd[8500];
	uint8_t *b1, *b2, *hdr;
	size_t n1, n2;
	uint64_t ho, bat, data_end = 0;
	struct vhd_locator l;
	size_t k;
	(void)state;

	k = (size_t)snprintf(deep, sizeof(deep), "%s", dir);
	while (k < 2800)
		k += (size_t)snprintf(deep + k, sizeof(deep) - k, "/%0100d", 0);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s' '%s/base.vhd'",
		 deep, pbase, deep);
	assert_int_equal(system(cmd), 0);
	strcat(deep, "/base.vhd");

	assert_int_equal(vhd_set_parent(pchild, deep, 0), 0);
	b1 = tu_slurp(pchild, &n1);
	verify(pchild);
	assert_int_equal(vhd_set_parent(pchild, deep, 0), 0);
	b2 = tu_slurp(pchild, &n2);
	verify(pchild);
	assert_int_equal(vhd_check(pchild, 0, NULL, NULL), 0);

	ho = tu_be64(b2 + 16);
	hdr = b2 + ho;
	bat = tu_be64(hdr + 16);
	for (uint32_t i = 0; i < tu_be32(hdr + 28); i++) {
		uint32_t e = tu_be32(b2 + bat + 4 * i);
		uint64_t bs = tu_be32(hdr + 32);
		uint64_t end = (uint64_t)e * 512 + (bs / 4096 + 511) / 512 * 512 + bs;

		if (e != 0xFFFFFFFFu && end > data_end)
			data_end = end;
	}
	assert_true(n2 > n1);
	assert_memory_equal(b2 + n2 - 512, b1 + n1 - 512, 512);
	for (int i = 0; i < 2; i++) {
		vhd_locator_decode(hdr + 576 + 24 * i, &l);
		assert_true(l.offset >= data_end && l.offset >= n1 - 512);
		assert_true(l.offset + vhd_locator_extent(&l) <= n2 - 512);
		/* the first long set, before the BAT, is untouched */
		vhd_locator_decode(b1 + ho + 576 + 24 * i, &l);
		assert_true(l.offset + vhd_locator_extent(&l) <= bat);
		assert_memory_equal(b2 + l.offset, b1 + l.offset, l.length);
	}
	free(b1);
	free(b2);
	/* back to the short path: before the BAT again */
	assert_int_equal(vhd_set_parent(pchild, pbase, 0), 0);
	b1 = tu_slurp(pchild, &n1);
	assert_int_equal(n1, n2);
	vhd_locator_decode(b1 + ho + 576, &l);
	assert_true(l.offset < bat);
	free(b1);
	verify(pchild);
}

/* Appended locator data keeps clear of metadata past the end of the
 * file, as new blocks do: here a blktap batmap whose map lies just past
 * the footer (the open ignores it; once the file grows over it, a later
 * open takes it, and locator bytes there would read as "full" bits). */
static void
test_append_clear_of_meta_past_eof(void **state)
{
	struct vhd_create_opts o = { .struct_size = sizeof o, .parent = pbase };
	char deep[4096], cmd[8500], c2[160];
	uint8_t *b, *hdr, z[2048];
	size_t n, n2, k;
	struct vhd *v;
	struct vhd_locator l;
	(void)state;

	snprintf(c2, sizeof(c2), "%s/child2.vhd", dir);
	assert_int_equal(vhd_create(c2, &o), 0);
	assert_int_equal(vhd_open(&v, c2, VHD_OPEN_RDWR), 0);
	memset(z, 0xA5, sizeof(z));
	assert_int_equal(vhd_pwrite(v, z, 2048, 2 * 1024 * 1024), 0);
	vhd_close(v);
	b = tu_slurp(c2, &n);
	hdr = b + tu_be64(b + 16);
	uint64_t bat = tu_be64(hdr + 16);
	uint64_t bat_end = bat + (tu_be32(hdr + 28) * 4ull + 511) / 512 * 512;
	uint64_t first = UINT64_MAX;
	for (uint32_t i = 0; i < tu_be32(hdr + 28); i++)
		if (tu_be32(b + bat + 4 * i) != 0xFFFFFFFFu &&
		    tu_be32(b + bat + 4 * i) * 512ull < first)
			first = tu_be32(b + bat + 4 * i) * 512ull;
	assert_true(first >= bat_end + 512);
	/* The batmap header after the BAT; its 4-sector map, all clear (its
	 * checksum that of zeros), 1 KiB past the footer. */
	uint64_t map_off = n - 512 + 1024;
	memset(b + bat_end, 0, 512);
	memcpy(b + bat_end, "tdbatmap", 8);
	for (int i = 0; i < 8; i++)
		b[bat_end + 8 + i] = (uint8_t)(map_off >> (56 - 8 * i));
	tu_put_be32(b + bat_end + 16, 4);
	tu_put_be32(b + bat_end + 20, 0x00010002);
	memset(z, 0, sizeof(z));
	tu_put_be32(b + bat_end + 24, sum(z, 2048, 2048));
	tu_spill(c2, b, n);
	free(b);

	/* A parent path too long for the room before the BAT. */
	k = (size_t)snprintf(deep, sizeof(deep), "%s/m", dir);
	while (k < 2800)
		k += (size_t)snprintf(deep + k, sizeof(deep) - k, "/%0100d", 1);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s' '%s/base.vhd'",
		 deep, pbase, deep);
	assert_int_equal(system(cmd), 0);
	strcat(deep, "/base.vhd");
	/* The first long set fills the room before the BAT, the second
	 * is appended. */
	assert_int_equal(vhd_set_parent(c2, deep, 0), 0);
	b = tu_slurp(c2, &n2);
	assert_int_equal(n2, n);
	free(b);
	assert_int_equal(vhd_set_parent(c2, deep, 0), 0);

	b = tu_slurp(c2, &n2);
	hdr = b + tu_be64(b + 16);
	assert_true(n2 > map_off + 2048);
	for (int i = 0; i < 2; i++) {
		vhd_locator_decode(hdr + 576 + 24 * i, &l);
		assert_true(l.offset >= map_off + 2048 ||
			    l.offset + vhd_locator_extent(&l) <= map_off);
	}
	/* The map reads as it was written: zeros (the file grew over it). */
	assert_memory_equal(b + map_off, z, 2048);
	free(b);
	/* The grown file takes the batmap now, and it is consistent. */
	assert_int_equal(vhd_check(c2, VHD_CHECK_NO_PARENT, NULL, NULL), 0);
	assert_int_equal(vhd_open(&v, c2, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(v, z, 2048, 2 * 1024 * 1024), 0);
	assert_int_equal(z[0], 0xA5);
	vhd_close(v);
}

#endif

static void
test_bad_arguments(void **state)
{
	(void)state;

	assert_int_equal(vhd_set_parent(NULL, pbase, 0), -EINVAL);
	assert_int_equal(vhd_set_parent(pchild, NULL, 0), -EINVAL);
	assert_int_equal(vhd_set_parent(pchild, pbase, 0x80), -EINVAL);
	assert_int_equal(vhd_set_parent("/nonexistent/x.vhd", pbase, 0), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_crash_order),
#ifndef _WIN32
		cmocka_unit_test(test_long_paths_appended),
		cmocka_unit_test(test_append_clear_of_meta_past_eof),
#endif
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
