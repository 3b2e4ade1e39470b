/* test_api_iso.c - the public interface alone, as a program outside the
 * project would use it: vhd.h compiles as strict ISO C11 (built with
 * -std=c11 -pedantic), and the ABI promises hold.  Built twice: linked
 * with libmsvhd.a (build/tests/test_api_iso) and with the shared
 * libmsvhd.so.1 (build/tests-so/test_api_iso, run by tests/abi/shared.sh),
 * so it may only call what vhd.h declares. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vhd.h"

#define DISK (1024u * 1024u)

static int failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		printf("%s:%d: check failed: %s (last message: %s)\n", \
		       __FILE__, __LINE__, #cond, vhd_errmsg()); \
		failures++; \
	} \
} while (0)

static int
has(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

/* The version call and the macros agree, and the string is built from the
 * numbers. */
static void
test_version(void)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", VHD_VERSION_MAJOR,
		 VHD_VERSION_MINOR, VHD_VERSION_PATCH);
	CHECK(strcmp(VHD_VERSION_STRING, want) == 0);
	CHECK(strcmp(vhd_version_string(), VHD_VERSION_STRING) == 0);
	CHECK(vhd_version() == VHD_VERSION_NUMBER);
	CHECK(VHD_VERSION_NUMBER == VHD_VERSION_MAJOR * 10000 +
	      VHD_VERSION_MINOR * 100 + VHD_VERSION_PATCH);
}

/* A fixed disk in memory, made with public calls only. */
static struct vhd_io *
mem_fixed(void)
{
	unsigned char *img = calloc(1, DISK + 512);
	struct vhd_io *io = NULL;

	if (!img || vhd_fixed_footer(DISK, 0, img + DISK) != 0 ||
	    vhd_io_mem_open(&io, img, DISK + 512) != 0)
		io = NULL;
	free(img);
	return io;
}

static void
test_mem_roundtrip(void)
{
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd_io *io = mem_fixed();
	struct vhd *v = NULL;
	unsigned char buf[4096], back[4096];
	uint64_t run = 0;
	unsigned st = 0;
	size_t n = 0;

	CHECK(io != NULL);
	if (!io)
		return;
	CHECK(vhd_open_io(&v, io, &oo) == 0);
	if (!v)
		return;
	memset(buf, 0x5a, sizeof(buf));
	CHECK(vhd_pwrite(v, buf, sizeof(buf), 8192) == 0);
	CHECK(vhd_pread(v, back, sizeof(back), 8192) == 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	CHECK(vhd_flush(v) == 0);
	CHECK(vhd_map(v, 0, DISK, &run, &st, NULL) == 0);
	CHECK(run == DISK && st == VHD_MAP_DATA);
	CHECK(vhd_get_info(v, &in) == 0);
	CHECK(in.struct_size == sizeof in);
	CHECK(in.type == VHD_TYPE_FIXED);
	CHECK(in.virtual_size == DISK);
	CHECK(vhd_chain_depth(v) == 1);
	CHECK(strcmp(vhd_type_name(in.type), "fixed") == 0);
	CHECK(vhd_io_mem_data(io, &n) != NULL && n == DISK + 512);
	vhd_close(v);
}

/* The struct_size member: too small refused, a newer caller's bigger
 * struct accepted while its unknown members are zero (filled with zeros
 * on output). */
static void
test_struct_size(void)
{
	struct {
		struct vhd_open_opts o;
		unsigned char newer[24];
	} big;
	struct {
		struct vhd_info in;
		unsigned char newer[24];
	} bigi;
	struct vhd_open_opts oo = { 0, 0, NULL };
	struct vhd_create_opts co = { 0, VHD_TYPE_DYNAMIC, DISK, 0, 0, NULL,
				      NULL };
	struct vhd_info in;
	struct vhd_io *io = mem_fixed();
	struct vhd *v = NULL;
	unsigned char foot[512];
	int r;

	CHECK(io != NULL);
	if (!io)
		return;
	/* input: struct_size 0 */
	r = vhd_open_io(&v, io, &oo);
	CHECK(r == -EINVAL && v == NULL);
	CHECK(has(vhd_errmsg(), "vhd_open_opts"));
	r = vhd_open(&v, "/nonexistent/x.vhd", 0);        /* no opts: fine */
	CHECK(r == -ENOENT && v == NULL);
	r = vhd_create("/nonexistent/x.vhd", &co);
	CHECK(r == -EINVAL && has(vhd_errmsg(), "vhd_create_opts"));
	/* input: bigger, unknown members set, then zero */
	memset(&big, 0, sizeof(big));
	big.o.struct_size = sizeof(big);
	big.newer[3] = 1;
	r = vhd_open_io(&v, io, &big.o);
	CHECK(r == -EINVAL && v == NULL && has(vhd_errmsg(), "not know"));
	big.newer[3] = 0;
	CHECK(vhd_open_io(&v, io, &big.o) == 0);
	if (!v)
		return;
	/* output: struct_size 0 refused, nothing written */
	memset(&in, 0x77, sizeof(in));
	in.struct_size = 0;
	CHECK(vhd_get_info(v, &in) == -EINVAL);
	CHECK(has(vhd_errmsg(), "vhd_info"));
	CHECK(in.virtual_size == 0x7777777777777777ull);
	/* output: bigger, the unknown rest cleared, struct_size kept */
	memset(&bigi, 0xee, sizeof(bigi));
	bigi.in.struct_size = sizeof(bigi);
	CHECK(vhd_get_info(v, &bigi.in) == 0);
	CHECK(bigi.in.struct_size == sizeof(bigi));
	CHECK(bigi.in.virtual_size == DISK);
	CHECK(bigi.newer[0] == 0 && bigi.newer[23] == 0);
	vhd_close(v);

	CHECK(vhd_fixed_footer(DISK, 0, foot) == 0);
	in.struct_size = 0;
	CHECK(vhd_footer_parse(foot, &in) == -EINVAL);
	in.struct_size = sizeof(in);
	CHECK(vhd_footer_parse(foot, &in) == 0 && in.virtual_size == DISK);
}

/* A backend whose ops are of an unknown version, or lack a member, is
 * refused before any of them is called. */
static void
test_io_ops_version(void)
{
	struct vhd_io *io = mem_fixed();
	struct vhd_io_ops ops;
	struct vhd_io fake;
	struct vhd *v = NULL;

	CHECK(io != NULL);
	if (!io)
		return;
	CHECK(io->ops->version == VHD_IO_OPS_VERSION);
	memcpy(&ops, io->ops, sizeof(ops));
	fake.ops = &ops;
	fake.name = "fake-backend";
	ops.version = 0;
	CHECK(vhd_open_io(&v, &fake, NULL) == -EINVAL && v == NULL);
	CHECK(has(vhd_errmsg(), "version 0") &&
	      has(vhd_errmsg(), "fake-backend"));
	ops.version = VHD_IO_OPS_VERSION + 1;
	CHECK(vhd_open_io(&v, &fake, NULL) == -EINVAL && v == NULL);
	ops.version = VHD_IO_OPS_VERSION;
	ops.pread = NULL;
	CHECK(vhd_open_io(&v, &fake, NULL) == -EINVAL && v == NULL);
	/* the real backend, untouched, still opens */
	CHECK(vhd_open_io(&v, io, NULL) == 0);
	vhd_close(v);
}

/* A dynamic disk through the path calls: create, open, write, check. */
static void
test_file(void)
{
	struct vhd_create_opts co = { sizeof co, VHD_TYPE_DYNAMIC, DISK,
				      64u * 1024, 0, NULL, NULL };
	struct vhd_info in = { .struct_size = sizeof in };
	const char *dir = getenv("TMPDIR");
	char path[4096];
	unsigned char buf[512];
	struct vhd *v = NULL;
	int r = -EEXIST;

	for (unsigned i = 0; i < 100 && r == -EEXIST; i++) {
		snprintf(path, sizeof(path), "%s/api-iso-%lx-%u.vhd",
			 dir && *dir ? dir : "/tmp", (unsigned long)time(NULL),
			 i + (unsigned)(rand() % 100000) * 100);
		r = vhd_create(path, &co);
	}
	CHECK(r == 0);
	if (r != 0)
		return;
	CHECK(vhd_probe(path) == 1);
	CHECK(vhd_open(&v, path, VHD_OPEN_RDWR) == 0);
	if (v) {
		memset(buf, 0xa5, sizeof(buf));
		CHECK(vhd_pwrite(v, buf, sizeof(buf), 3 * 512) == 0);
		CHECK(vhd_get_info(v, &in) == 0);
		CHECK(in.type == VHD_TYPE_DYNAMIC && in.allocated_blocks == 1);
		CHECK(strcmp(vhd_path(v), path) == 0 && vhd_parent(v) == NULL);
		vhd_close(v);
	}
	CHECK(vhd_check(path, 0, NULL, NULL) == 0);
	remove(path);
}

/* A chain in the in-memory VFS, with public calls only; a VFS of an
 * unknown version is refused. */
static void
test_vfs(void)
{
	struct vhd_create_opts po = { sizeof po, VHD_TYPE_DYNAMIC, DISK,
				      64u * 1024, 0, NULL, NULL };
	struct vhd_create_opts co = { sizeof co, VHD_TYPE_DIFF, 0,
				      64u * 1024, 0, "dir/base.vhd", NULL };
	struct vhd_vfs *mem = NULL, bad;
	struct vhd *v = NULL;
	unsigned char buf[512], got[512];

	CHECK(vhd_vfs_default() == vhd_vfs_platform());
	CHECK(vhd_vfs_mem_new(&mem) == 0);
	if (!mem)
		return;
	CHECK(mem->version == VHD_VFS_VERSION);
	CHECK(vhd_create_vfs(mem, "dir/base.vhd", &po) == 0);
	CHECK(vhd_create_vfs(mem, "dir/child.vhd", &co) == 0);
	CHECK(vhd_open_vfs(&v, mem, "dir/child.vhd", NULL) == 0);
	if (v) {
		CHECK(vhd_chain_depth(v) == 2);
		vhd_close(v);
		v = NULL;
	}
	memset(buf, 0x5a, sizeof(buf));
	{
		struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
		CHECK(vhd_open_vfs(&v, mem, "dir/child.vhd", &oo) == 0);
	}
	if (v) {
		CHECK(vhd_pwrite(v, buf, sizeof(buf), 512) == 0);
		vhd_close(v);
		v = NULL;
	}
	CHECK(vhd_merge_vfs(mem, "dir/child.vhd", NULL, NULL, NULL) == 0);
	CHECK(vhd_set_parent_vfs(mem, "dir/child.vhd", "dir/base.vhd",
				 VHD_SET_PARENT_FORCE) == 0);
	CHECK(vhd_open_vfs(&v, mem, "dir/base.vhd", NULL) == 0);
	if (v) {
		CHECK(vhd_pread(v, got, sizeof(got), 512) == 0 &&
		      memcmp(got, buf, sizeof(buf)) == 0);
		vhd_close(v);
		v = NULL;
	}
	bad = *mem;
	bad.version = VHD_VFS_VERSION + 1;
	CHECK(vhd_open_vfs(&v, &bad, "dir/base.vhd", NULL) == -EINVAL &&
	      v == NULL);
	CHECK(vhd_vfs_set_default(&bad) == -EINVAL);
	CHECK(vhd_vfs_default() == vhd_vfs_platform());
	vhd_vfs_mem_free(mem);
}

int
main(void)
{
	srand((unsigned)time(NULL));
	vhd_close(NULL);                            /* NULL is fine */
	CHECK(VHD_MAX_DISK_SIZE == 0xFF000000ull * 512);
	test_version();
	test_mem_roundtrip();
	test_struct_size();
	test_io_ops_version();
	test_file();
	test_vfs();
	printf("libvhd %s (header %s): %d failures\n", vhd_version_string(),
	       VHD_VERSION_STRING, failures);
	return failures != 0;
}
