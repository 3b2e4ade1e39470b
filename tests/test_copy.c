/* test_copy.c - the copy engine (vhd_copy): every source kind to every
 * destination kind reads back the same bytes; zero granules are not
 * written (a dynamic destination leaves the block unallocated); a stream
 * ending in a fixed VHD's footer loses it, and one that must be a VHD
 * but is not fails with -EBADMSG blamed on the source; a cancelled copy
 * and a failed write leave no destination behind and name the end that
 * failed; gzip round trips. */
#include <errno.h>
#include <fcntl.h>
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
#include "lib_testutil.h"

#define DISK  (5u << 20)        /* not a whole number of 2 MiB blocks */

static uint8_t model[DISK];
static char *dir;

static char *
in_dir(const char *name)
{
	static char buf[8][4096];
	static int i;
	char *p = buf[i++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static int
setup(void **state)
{
	uint32_t seed = 5;

	(void)state;
	dir = tu_tmpdir();
	memset(model, 0, sizeof(model));
	/* Data in the first MiB, a zero MiB, a few bytes near the end. */
	tu_fill(model, 1u << 20, &seed);
	tu_fill(model + DISK - 8192 + 100, 300, &seed);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmrf(dir);
	free(dir);
	return 0;
}

/* The raw model as a sparse file: [1 MiB, 2 MiB) is a hole, the second
 * 2 MiB block zeros written out (data to SEEK_DATA, zeros to the copy). */
static const char *
raw_model(void)
{
	const char *p = in_dir("model.raw");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, model, 1u << 20, 0), 1 << 20);
	assert_int_equal(pwrite(fd, model + (2u << 20), 2u << 20, 2u << 20),
			 2 << 20);
	assert_int_equal(pwrite(fd, model + DISK - 8192, 8192, DISK - 8192),
			 8192);
	assert_int_equal(close(fd), 0);
	return p;
}

static struct vhd_copy_end *
dst(const char *path, enum vhd_format f, enum vhd_type t, unsigned flags)
{
	struct vhd_copy_dst_opts o = { .struct_size = sizeof o };
	struct vhd_copy_end *d = NULL;

	o.fd = -1;
	o.format = f;
	o.type = t;
	o.size = DISK;
	o.flags = flags;
	assert_int_equal(vhd_copy_dst_create(&d, path, &o), 0);
	return d;
}

static void
copy_finish(struct vhd_copy_end *s, struct vhd_copy_end *d)
{
	assert_int_equal(vhd_copy(s, d, NULL), 0);
	assert_int_equal(vhd_copy_finish(d, 0), 0);
	vhd_copy_close(d);
	vhd_copy_close(s);
}

static void
same_as_model(const char *path)
{
	struct vhd *v;
	uint8_t *buf = malloc(DISK);

	assert_int_equal(vhd_open(&v, path, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_pread(v, buf, DISK, 0), 0);
	assert_memory_equal(buf, model, DISK);
	vhd_close(v);
	free(buf);
}

static void
raw_same_as_model(const char *path)
{
	size_t n;
	uint8_t *p = tu_slurp(path, &n);

	assert_int_equal(n, DISK);
	assert_memory_equal(p, model, DISK);
	free(p);
}

static void
raw_to_dynamic_to_raw(void **state)
{
	struct vhd_copy_end *s;
	struct vhd *v;
	const char *raw = raw_model(), *vhd = in_dir("a.vhd"),
		   *back = in_dir("back.raw");
	uint64_t run;
	unsigned st;

	(void)state;
	assert_int_equal(vhd_copy_src_raw(&s, raw, NULL), 0);
	assert_int_equal(vhd_copy_size(s), DISK);
	assert_null(vhd_copy_image(s));
	copy_finish(s, dst(vhd, VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 0));
	same_as_model(vhd);
	/* The second 2 MiB block was read (zeros written out in the raw
	 * file) but holds only zeros: never written, so never allocated. */
	assert_int_equal(vhd_open(&v, vhd, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_map(v, 2u << 20, 2u << 20, &run, &st, NULL), 0);
	assert_false(st & VHD_MAP_DATA);
	assert_int_equal(run, 2u << 20);
	assert_int_equal(vhd_map(v, 0, 4096, &run, &st, NULL), 0);
	assert_true(st & VHD_MAP_DATA);
	vhd_close(v);

	/* And back, from the image. */
	assert_int_equal(vhd_open(&v, vhd, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_copy_src_image(&s, v, "the image"), 0);
	assert_ptr_equal(vhd_copy_image(s), v);
	copy_finish(s, dst(back, VHD_FORMAT_RAW, 0, 0));
	raw_same_as_model(back);
	struct stat sb;
	assert_int_equal(stat(back, &sb), 0);
	/* Sparse: 1 MiB and a granule of data, not 5 MiB. */
	assert_true((uint64_t)sb.st_blocks * 512 < (2u << 20));
}

static void
raw_to_fixed(void **state)
{
	struct vhd_copy_end *s;
	struct vhd_info in = { .struct_size = sizeof in };
	struct vhd *v;
	struct stat sb;
	const char *fixed = in_dir("f.vhd");

	(void)state;
	assert_int_equal(vhd_copy_src_raw(&s, raw_model(), NULL), 0);
	copy_finish(s, dst(fixed, VHD_FORMAT_VHD, VHD_TYPE_FIXED, 0));
	assert_int_equal(stat(fixed, &sb), 0);
	assert_int_equal(sb.st_size, DISK + 512);
	assert_int_equal(vhd_open(&v, fixed, VHD_OPEN_RDONLY), 0);
	assert_int_equal(vhd_get_info(v, &in), 0);
	assert_int_equal(in.type, VHD_TYPE_FIXED);
	vhd_close(v);
	same_as_model(fixed);
}

/* A pipe fed with the bytes of path (then the pipe's read end). */
static int
pipe_of(const char *path)
{
	int p[2];
	size_t n;
	uint8_t *data = tu_slurp(path, &n);

	assert_int_equal(pipe(p), 0);
	if (fork() == 0) {
		close(p[0]);
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(p[1], data + off, n - off);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	close(p[1]);
	free(data);
	return p[0];
}

static void
streams(void **state)
{
	struct vhd_copy_end *s, *d;
	struct vhd_copy_opts o = { .struct_size = sizeof o };
	const char *fixed = in_dir("s.vhd"), *out = in_dir("s.raw"),
		   *gz = in_dir("s.raw.gz"), *back = in_dir("s2.raw");
	char head[512];
	size_t got;
	int fd;

	(void)state;
	assert_int_equal(vhd_copy_src_raw(&s, raw_model(), NULL), 0);
	copy_finish(s, dst(fixed, VHD_FORMAT_VHD, VHD_TYPE_FIXED, 0));

	/* A fixed VHD on a pipe: its footer goes. */
	fd = pipe_of(fixed);
	assert_int_equal(vhd_copy_src_stream(&s, NULL, fd, "pipe"), 0);
	assert_int_equal(vhd_copy_head(s, head, sizeof head, &got), 0);
	assert_int_equal(got, 512);
	assert_memory_equal(head, model, 512);
	d = dst(out, VHD_FORMAT_RAW, 0, 0);
	assert_int_equal(vhd_copy(s, d, NULL), 0);
	assert_int_equal(vhd_copy_size(s), DISK);
	assert_int_equal(vhd_copy_finish(d, vhd_copy_size(s)), 0);
	vhd_copy_close(d);
	vhd_copy_close(s);
	close(fd);
	raw_same_as_model(out);

	/* Compressed and back. */
	assert_int_equal(vhd_copy_src_raw(&s, out, NULL), 0);
	copy_finish(s, dst(gz, VHD_FORMAT_RAW, 0, VHD_COPY_GZIP));
	assert_int_equal(vhd_copy_is_gzip(gz), 1);
	assert_int_equal(vhd_copy_is_gzip(out), 0);
	assert_int_equal(vhd_copy_src_stream(&s, gz, -1, NULL), 0);
	d = dst(back, VHD_FORMAT_RAW, 0, 0);
	assert_int_equal(vhd_copy(s, d, NULL), 0);
	assert_int_equal(vhd_copy_finish(d, vhd_copy_size(s)), 0);
	vhd_copy_close(d);
	vhd_copy_close(s);
	raw_same_as_model(back);

	/* A raw stream that must be a fixed VHD: the source is blamed,
	 * nothing is left behind. */
	unlink(back);
	assert_int_equal(vhd_copy_src_stream(&s, out, -1, NULL), 0);
	d = dst(back, VHD_FORMAT_RAW, 0, 0);
	o.flags = VHD_COPY_FROM_VHD;
	assert_int_equal(vhd_copy(s, d, &o), -EBADMSG);
	assert_true(vhd_copy_failed(s));
	assert_false(vhd_copy_failed(d));
	assert_non_null(strstr(vhd_errmsg(), "not a fixed VHD stream"));
	vhd_copy_close(d);
	vhd_copy_close(s);
	assert_int_equal(access(back, F_OK), -1);

	/* A dynamic VHD in a stream is read from a spool file. */
	const char *dyn = in_dir("sp.vhd"), *sp;
	assert_int_equal(vhd_copy_src_raw(&s, raw_model(), NULL), 0);
	copy_finish(s, dst(dyn, VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 0));
	fd = pipe_of(dyn);
	assert_int_equal(vhd_copy_src_stream(&s, NULL, fd, "pipe"), 0);
	assert_int_equal(vhd_copy_spool(s, NULL, &sp), 0);
	char *spool = strdup(sp);
	same_as_model(spool);
	vhd_copy_close(s);
	close(fd);
	assert_int_equal(access(spool, F_OK), -1);   /* removed with s */
	free(spool);
}

static int
cancel_now(void *arg)
{
	int *calls = arg;
	return ++*calls > 1;
}

static void
cancel_and_failures(void **state)
{
	struct vhd_copy_end *s, *d;
	struct vhd_copy_opts o = { .struct_size = sizeof o };
	const char *out = in_dir("c.vhd");
	int calls = 0;

	(void)state;
	assert_int_equal(vhd_copy_src_raw(&s, raw_model(), NULL), 0);
	d = dst(out, VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 0);
	o.cancel = cancel_now;
	o.cancel_arg = &calls;
	assert_int_equal(vhd_copy(s, d, &o), -EINTR);
	assert_true(vhd_copy_failed(d));
	assert_non_null(strstr(vhd_errmsg(), "interrupted"));
	vhd_copy_close(d);
	assert_int_equal(access(out, F_OK), -1);     /* removed */

	/* A device that is full: every write fails, the destination is
	 * blamed. */
	if (access("/dev/full", W_OK) == 0) {
		d = dst("/dev/full", VHD_FORMAT_RAW, 0, VHD_COPY_DENSE);
		assert_int_equal(vhd_copy(s, d, NULL), -ENOSPC);
		assert_true(vhd_copy_failed(d));
		assert_false(vhd_copy_failed(s));
		assert_non_null(strstr(vhd_errmsg(), "write error"));
		vhd_copy_close(d);
	}
	vhd_copy_close(s);

	/* A destination that exists is not replaced. */
	struct vhd_copy_dst_opts dopt = { .struct_size = sizeof dopt };
	dopt.fd = -1;
	dopt.format = VHD_FORMAT_RAW;
	dopt.size = DISK;
	assert_int_equal(vhd_copy_dst_create(&d, raw_model(), &dopt), -EEXIST);
	/* A struct from a newer caller with members set we do not know. */
	struct { struct vhd_copy_dst_opts o; uint64_t newer; } big;
	memset(&big, 0, sizeof big);
	big.o = dopt;
	big.o.struct_size = sizeof big;
	big.newer = 1;
	assert_int_equal(vhd_copy_dst_create(&d, out, &big.o), -EINVAL);
	big.newer = 0;          /* zero: accepted */
	assert_int_equal(vhd_copy_dst_create(&d, out, &big.o), 0);
	vhd_copy_close(d);
	assert_int_equal(access(out, F_OK), -1);     /* never finished */
}

static int
collect(void *arg, const char *p, size_t n, uint64_t at)
{
	uint64_t *runs = arg;
	(void)p;
	runs[runs[0] * 2 + 1] = at;
	runs[runs[0] * 2 + 2] = n;
	runs[0]++;
	return 0;
}

static void
nonzero_runs(void **state)
{
	char buf[16384];
	uint64_t runs[16] = { 0 };

	(void)state;
	memset(buf, 0, sizeof(buf));
	buf[10] = 1;            /* granule [0, 4096) relative to off 1000 */
	buf[9000] = 1;          /* [7192, 11288) at absolute 8192-12288 */
	/* off 1000: granules are aligned to absolute offsets, so the first
	 * is 3096 bytes, then [3096, 7192), [7192, 11288), ... */
	assert_int_equal(vhd_nonzero_runs(buf, sizeof buf, 1000, 4096,
					  collect, runs), 0);
	assert_int_equal(runs[0], 2);
	assert_int_equal(runs[1], 1000);
	assert_int_equal(runs[2], 3096);
	assert_int_equal(runs[3], 8192);
	assert_int_equal(runs[4], 4096);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(raw_to_dynamic_to_raw),
		cmocka_unit_test(raw_to_fixed),
		cmocka_unit_test(streams),
		cmocka_unit_test(cancel_and_failures),
		cmocka_unit_test(nonzero_runs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
