/* test_create.c - vhd_create: layouts, sizes, argument checks, cleanup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"
#include "lib_testutil.h"

static int
create_mem(enum vhd_type t, uint64_t size, uint32_t bs, unsigned flags,
	   struct vhd_info *in)
{
	struct vhd_io *io;
	struct vhd_create_opts o = { sizeof o, t, size, bs, flags, NULL, NULL };
	struct vhd *v;
	int r;

	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	r = vhd_create_io(io, &o);
	if (r == 0) {
		assert_int_equal(tu_open_copy(&v, io, 0), 0);
		assert_int_equal(vhd_get_info(v, in), 0);
		vhd_close(v);
	}
	io->ops->close(io);
	return r;
}

static void
test_layouts(void **state)
{
	struct vhd_info in = { .struct_size = sizeof in };

	(void)state;
	assert_int_equal(create_mem(VHD_TYPE_FIXED, 20 << 20, 0, 0, &in), 0);
	assert_int_equal(in.type, VHD_TYPE_FIXED);
	assert_true(in.virtual_size == (20u << 20));
	assert_true(in.file_size == (20u << 20) + 512);
	assert_string_equal(in.creator_app, VHD_CREATOR_APP);
	assert_int_equal(in.features, 2);
	assert_int_equal(create_mem(0, 100 << 20, 0, 0, &in), 0);
	assert_int_equal(in.type, VHD_TYPE_DYNAMIC);
	assert_int_equal(in.block_size, VHD_DEFAULT_BLOCK_SIZE);
	assert_int_equal(in.max_table_entries, 50);
	assert_int_equal(in.allocated_blocks, 0);
	assert_true(in.original_size == in.virtual_size);
	/* Version 4 random UUIDs. */
	assert_int_equal(in.unique_id[6] >> 4, 4);
	assert_int_equal(create_mem(0, (1u << 20) + 512, 4096, 0, &in), 0);
	assert_int_equal(in.max_table_entries, 257);
	assert_int_equal(create_mem(0, 1073741824, 0, VHD_CREATE_CHS_ROUND,
				    &in), 0);
	assert_true(in.virtual_size == 1073995776);
	assert_true(in.chs_size == in.virtual_size);
	assert_int_equal(create_mem(0, VHD_MAX_DISK_SIZE, 0, 0, &in), 0);
	assert_int_equal(in.max_table_entries, 1044480);
}

static void
test_bad_args(void **state)
{
	struct vhd_info in = { .struct_size = sizeof in };

	(void)state;
	assert_int_equal(create_mem(0, 0, 0, 0, &in), -EINVAL);
	assert_int_equal(create_mem(0, 1000, 0, 0, &in), -EINVAL);
	assert_int_equal(create_mem(0, VHD_MAX_DISK_SIZE + 512, 0, 0, &in),
			 -EINVAL);
	assert_int_equal(create_mem(0, 1 << 20, 3000, 0, &in), -EINVAL);
	assert_int_equal(create_mem(0, 1 << 20, 2048, 0, &in), -EINVAL);
	assert_int_equal(create_mem(0, 1 << 20, 512u << 20, 0, &in), -EINVAL);
	assert_int_equal(create_mem(VHD_TYPE_DIFF, 1 << 20, 0, 0, &in), -EINVAL);
	assert_int_equal(create_mem(7, 1 << 20, 0, 0, &in), -EINVAL);
}

static void
test_files(void **state)
{
	char *dir = tu_tmpdir(), p[4200], q[4200];
	struct vhd_create_opts o = { sizeof o,
				     VHD_TYPE_DYNAMIC, 1 << 20, 0, 0, NULL,
				     NULL };
	uint8_t id[16] = { 1, 2, 3 };
	struct vhd *v;
	struct vhd_info in = { .struct_size = sizeof in };
	struct stat st;

	(void)state;
	snprintf(p, sizeof(p), "%s/a.vhd", dir);
	o.unique_id = id;
	assert_int_equal(vhd_create(p, &o), 0);
	assert_int_equal(vhd_probe(p), 1);
	assert_int_equal(vhd_open(&v, p, 0), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_memory_equal(in.unique_id, id, 16);
	vhd_close(v);
	assert_int_equal(vhd_create(p, &o), -EEXIST);
	/* A failing create (child of a missing parent) leaves nothing. */
	snprintf(q, sizeof(q), "%s/b.vhd", dir);
	o.type = VHD_TYPE_DIFF;
	o.size = 0;
	o.parent = "/nonexistent/parent.vhd";
	assert_true(vhd_create(q, &o) < 0);
	assert_true(stat(q, &st) < 0);
	/* A raw file does not probe as a VHD. */
	FILE *f = fopen(q, "w");
	fputs("hello", f);
	fclose(f);
	assert_int_equal(vhd_probe(q), 0);
	tu_rmrf(dir);
	free(dir);
}

/* Messages name the file like every other libvhd message (the tools strip
 * the "'FILE': " prefix). */
static void
test_messages(void **state)
{
	char *dir = tu_tmpdir(), p[4200], want[4300];
	struct vhd_create_opts o = { sizeof o,
				     VHD_TYPE_DYNAMIC, 1000, 0, 0, NULL, NULL };
	struct vhd_info in = { .struct_size = sizeof in };

	(void)state;
	snprintf(p, sizeof(p), "%s/a.vhd", dir);
	snprintf(want, sizeof(want), "'%s': ", p);
	assert_int_equal(vhd_create(p, &o), -EINVAL);
	if (strncmp(vhd_errmsg(), want, strlen(want)) != 0)
		fail_msg("message does not name the file: %s", vhd_errmsg());
	o.size = 1 << 20;
	o.block_size = 3000;
	assert_int_equal(vhd_create(p, &o), -EINVAL);
	if (strncmp(vhd_errmsg(), want, strlen(want)) != 0)
		fail_msg("message does not name the file: %s", vhd_errmsg());
	assert_int_equal(create_mem(0, 1 << 20, 3000, 0, &in), -EINVAL);
	if (strncmp(vhd_errmsg(), "'memory': ", 10) != 0)
		fail_msg("message does not name the backend: %s", vhd_errmsg());
	tu_rmrf(dir);
	free(dir);
}

/* The rules both formats' creation share (one function, create.c): an
 * unknown type, a differencing disk without a parent or a parent for
 * another type, and a child's size other than its parent's are refused
 * with the file named, for VHD and for VHDX alike, leaving no file. */
static void
test_shared_rules(void **state)
{
	static const unsigned fmt[] = { 0, VHD_CREATE_VHDX };
	static const char *ext[] = { "vhd", "vhdx" };
	char *dir = tu_tmpdir(), par[4200], p[4200], want[4300];
	struct stat st;

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct vhd_create_opts po = { .struct_size = sizeof po,
					      .type = VHD_TYPE_DYNAMIC,
					      .size = 8 << 20,
					      .flags = fmt[k] };
		struct vhd_create_opts o = { .struct_size = sizeof o,
					     .size = 8 << 20,
					     .flags = fmt[k] };
		static const struct {
			enum vhd_type type;
			int parent;
			uint64_t size;
			const char *text;
		} bad[] = {
			{ (enum vhd_type)7, 0, 8 << 20, "unknown disk type 7" },
			{ VHD_TYPE_DIFF, 0, 8 << 20, "needs a parent" },
			{ VHD_TYPE_DYNAMIC, 1, 8 << 20, "needs a parent" },
			{ VHD_TYPE_FIXED, 1, 8 << 20, "needs a parent" },
			{ VHD_TYPE_DIFF, 1, 16 << 20,
			  "a child has its parent's size (8388608), not "
			  "16777216" },
			{ VHD_TYPE_NONE, 1, 4 << 20,
			  "a child has its parent's size" },
		};

		snprintf(par, sizeof(par), "%s/p.%s", dir, ext[k]);
		snprintf(p, sizeof(p), "%s/c.%s", dir, ext[k]);
		snprintf(want, sizeof(want), "'%s': ", p);
		assert_int_equal(vhd_create(par, &po), 0);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			o.type = bad[i].type;
			o.parent = bad[i].parent ? par : NULL;
			o.size = bad[i].size;
			assert_int_equal(vhd_create(p, &o), -EINVAL);
			if (strncmp(vhd_errmsg(), want, strlen(want)) != 0 ||
			    !strstr(vhd_errmsg(), bad[i].text))
				fail_msg("%s, case %zu: '%s'", ext[k], i,
					 vhd_errmsg());
			assert_true(stat(p, &st) < 0);
		}
		/* the same rules let the good cases through */
		o.type = VHD_TYPE_NONE;
		o.parent = par;
		o.size = 0;
		assert_int_equal(vhd_create(p, &o), 0);
		unlink(p);
		o.size = 8 << 20;
		assert_int_equal(vhd_create(p, &o), 0);
	}
	tu_rmrf(dir);
	free(dir);
}

/* A parent beyond what a child's BAT can cover with the chosen block size
 * (blktap makes disks above 2040 GiB): refused, not a child whose BAT
 * entry count wrapped around 32 bits and that does not open. */
static void
test_huge_parent(void **state)
{
	char *dir = tu_tmpdir(), p[4200], q[4200];
	struct vhd_create_opts o = { sizeof o,
				     VHD_TYPE_DYNAMIC, 1 << 20, 256u << 20, 0,
				     NULL, NULL };
	struct vhd_io *io;
	struct vhd_footer f;
	size_t n;
	uint64_t size = UINT64_C(1) << 46;
	uint32_t entries = (uint32_t)(size >> 28);
	size_t bat = (size_t)entries * 4, len = 1536 + bat + 512;
	uint8_t *d = malloc(len);

	(void)state;
	assert_non_null(d);
	assert_int_equal(vhd_io_mem_open(&io, NULL, 0), 0);
	assert_int_equal(vhd_create_io(io, &o), 0);
	const uint8_t *src = vhd_io_mem_data(io, &n);
	memcpy(d, src, 1536);
	io->ops->close(io);
	vhd_footer_decode(d, &f);
	f.cur_size = f.orig_size = size;
	vhd_footer_encode(&f, d);
	put_be32(d + 512 + 28, entries);
	put_be32(d + 512 + 36, vhd_checksum(d + 512, 1024, 36));
	memset(d + 1536, 0xff, bat);
	memcpy(d + 1536 + bat, d, 512);
	snprintf(p, sizeof(p), "%s/huge.vhd", dir);
	FILE *fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(d, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	free(d);

	struct vhd *v;
	assert_int_equal(vhd_open(&v, p, 0), 0);      /* a valid parent */
	vhd_close(v);
	snprintf(q, sizeof(q), "%s/child.vhd", dir);
	struct vhd_create_opts c = { sizeof c,
				     VHD_TYPE_DIFF, 0, 4096, 0, p, NULL };
	int r = vhd_create(q, &c);
	if (r == 0) {
		r = vhd_open(&v, q, VHD_OPEN_NO_PARENT);
		if (r < 0)
			fail_msg("created a child that does not open: %s",
				 vhd_errmsg());
		vhd_close(v);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_non_null(strstr(vhd_errmsg(), q));
	}
	tu_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_huge_parent),
		cmocka_unit_test(test_shared_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
