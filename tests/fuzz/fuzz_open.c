/*
 * fuzz_open.c - libFuzzer target: the input is a whole image file.
 *
 * Each input goes through what a tool does with an untrusted image:
 * open it from a memory backend (strictly, then with checksums ignored),
 * describe it, read its first and last bytes and a few places derived
 * from the input, map the whole disk, then open a copy for writing,
 * write, discard and zero a little, close, reopen and read back.  Last,
 * vhd_check runs on the same bytes written to a file in /dev/shm.
 *
 * Besides the sanitizers, a few properties the API promises are checked
 * (an abort() is reported by libFuzzer like a crash):
 *  - vhd_map returns 0 < run <= len and some status bit;
 *  - a range mapped as zero reads as zeros (fixed and dynamic disks);
 *  - data written reads back, before and after a close and reopen (also
 *    for a single sector written at the end of the disk);
 *  - an image vhd_open refuses as damaged is not reported clean by check.
 *
 * Differencing disks are always opened with VHD_OPEN_NO_PARENT: the
 * locators come from the input and must not send the fuzzer looking for
 * files (fuzz_locator.c covers their parsing).
 *
 * tests/test_fuzz_regress.c includes this file and calls
 * fuzz_open_input() on every committed regression input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vhd.h"
#include "fuzz_util.h"

/* 8 MiB: fuzz_vhdx.c unpacks its inputs into 5 MiB images. */
#define FZ_MAX_INPUT   (8u * 1024 * 1024)
#define FZ_MAP_STEPS   4096

#define FZ_ASSERT(cond, what) do { if (!(cond)) fz_fail(what, __LINE__); } \
	while (0)

static void
fz_fail(const char *what, int line)
{
	fz_property_fail("fuzz_open", "FUZZ_OPEN_IGNORE", what, line);
}

/* ---- Reading -------------------------------------------------------- */

static void
fz_reads(struct vhd *v, uint64_t disk, uint64_t *seed, uint8_t *buf)
{
	uint64_t n = disk < FZ_BUF ? disk : FZ_BUF;

	(void)vhd_pread(v, buf, (size_t)n, 0);
	(void)vhd_pread(v, buf, (size_t)n, disk - n);
	for (int i = 0; i < 4 && disk > 0; i++) {
		uint64_t off = fz_rand(seed) % disk;
		uint64_t len = 1 + fz_rand(seed) % FZ_BUF;

		if (len > disk - off)
			len = disk - off;
		(void)vhd_pread(v, buf, (size_t)len, off);
	}
	/* Past the end: must fail, without touching anything. */
	FZ_ASSERT(vhd_pread(v, buf, 1, disk) < 0, "read past the end succeeded");
	(void)vhd_pread(v, buf, 2, disk ? disk - 1 : 0);
	(void)vhd_pread(v, buf, 0, disk);
}

static void
fz_map(struct vhd *v, uint64_t disk, int zero_oracle, uint8_t *buf)
{
	uint64_t off = 0;

	for (int i = 0; i < FZ_MAP_STEPS && off < disk; i++) {
		uint64_t run = 0;
		unsigned status = 0;
		int depth = -2;
		int r = vhd_map(v, off, disk - off, &run, &status, &depth);

		if (r < 0)
			return;
		FZ_ASSERT(run > 0 && run <= disk - off, "vhd_map run out of range");
		FZ_ASSERT(status & (VHD_MAP_DATA | VHD_MAP_ZERO),
			  "vhd_map status without DATA or ZERO");
		if (zero_oracle && (status & VHD_MAP_ZERO) &&
		    !(status & VHD_MAP_DATA)) {
			size_t n = run < FZ_BUF ? (size_t)run : FZ_BUF;

			if (vhd_pread(v, buf, n, off) == 0)
				FZ_ASSERT(fz_all_zero(buf, n),
					  "range mapped as zero reads non-zero");
		}
		off += run;
	}
}

/* One read-only pass; returns the open result. */
static int
fz_read_pass(const uint8_t *data, size_t size, unsigned flags, uint8_t *buf)
{
	struct vhd *v = NULL;
	struct vhd_info info = { .struct_size = sizeof info };
	uint64_t seed = fz_seed(data, size);
	int r = fz_open(&v, data, size, flags, NULL, NULL);

	if (r < 0)
		return r;
	if (vhd_get_info(v, &info) == 0) {
		FZ_ASSERT(info.type == VHD_TYPE_FIXED ||
			  info.type == VHD_TYPE_DYNAMIC ||
			  info.type == VHD_TYPE_DIFF, "bad type in info");
		(void)vhd_type_name(info.type);
		(void)vhd_path(v);
		(void)vhd_chain_depth(v);
		fz_reads(v, info.virtual_size, &seed, buf);
		fz_map(v, info.virtual_size, info.type != VHD_TYPE_DIFF, buf);
	}
	vhd_close(v);
	return 0;
}

/* ---- Writing -------------------------------------------------------- */

struct fz_write {
	uint64_t off;
	size_t len;
	uint8_t fill;
	int ok;
};

static void
fz_write_pass(const uint8_t *data, size_t size, unsigned flags, uint8_t *buf)
{
	struct vhd *v = NULL;
	struct vhd_info info = { .struct_size = sizeof info };
	struct fz_write w[4];
	uint8_t *out = NULL;
	size_t out_len = 0;
	uint64_t seed = fz_seed(data, size) ^ 0x5a5a;
	uint64_t disk;
	int r, diff;

	r = fz_open(&v, data, size, flags | VHD_OPEN_RDWR, &out, &out_len);
	if (r < 0)
		return;
	if (vhd_get_info(v, &info) < 0 || info.virtual_size == 0) {
		vhd_close(v);
		free(out);
		return;
	}
	disk = info.virtual_size;
	diff = info.type == VHD_TYPE_DIFF;
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 4; i++) {
		w[i].off = fz_rand(&seed) % disk;
		if (i == 0)
			w[i].off = 0;
		if (i == 1)
			w[i].off = disk - 1;
		if (i < 2 || (fz_rand(&seed) & 1))
			w[i].off &= ~(uint64_t)511;
		w[i].len = 1 + fz_rand(&seed) % 8192;
		if (w[i].len > disk - w[i].off)
			w[i].len = (size_t)(disk - w[i].off);
		w[i].fill = (uint8_t)(0x11 * (i + 1));
		memset(buf, w[i].fill, w[i].len);
		w[i].ok = vhd_pwrite(v, buf, w[i].len, w[i].off) == 0;
		if (w[i].ok) {
			FZ_ASSERT(vhd_pread(v, buf, w[i].len, w[i].off) == 0 ||
				  diff, "reading back a write failed");
			FZ_ASSERT(diff || (buf[0] == w[i].fill &&
					   buf[w[i].len - 1] == w[i].fill),
				  "written data does not read back");
		}
		/* A later write may overlap an earlier one. */
		for (int j = 0; j < i; j++)
			if (w[j].off < w[i].off + w[i].len &&
			    w[i].off < w[j].off + w[j].len)
				w[j].ok = 0;
	}
	{
		uint64_t off = fz_rand(&seed) % disk, len = fz_rand(&seed) % (4u << 20);

		if (len > disk - off)
			len = disk - off;
		if (vhd_discard(v, off, len) == 0)
			for (int j = 0; j < 4; j++)
				if (w[j].off < off + len && off < w[j].off + w[j].len)
					w[j].ok = 0;
		off = fz_rand(&seed) % disk;
		len = fz_rand(&seed) % (1u << 20);
		if (len > disk - off)
			len = disk - off;
		if (vhd_write_zeroes(v, off, len, (unsigned)(fz_rand(&seed) & 3)) == 0)
			for (int j = 0; j < 4; j++)
				if (w[j].off < off + len && off < w[j].off + w[j].len)
					w[j].ok = 0;
	}
	(void)vhd_flush(v);
	vhd_close(v);
	if (!out)
		return;

	/* Triage: FUZZ_OPEN_DUMP=FILE keeps what the write pass produced. */
	if (getenv("FUZZ_OPEN_DUMP"))
		(void)fz_write_file(getenv("FUZZ_OPEN_DUMP"), out, out_len);
	/* What the library wrote must open again and hold the data. */
	v = NULL;
	r = fz_open(&v, out, out_len, flags, NULL, NULL);
	if (r < 0) {
		/* (In test_fuzz_regress.c a failed property returns.) */
		FZ_ASSERT(0, "image written by libvhd does not reopen");
		free(out);
		return;
	}
	for (int i = 0; i < 4; i++) {
		if (!w[i].ok || diff)
			continue;
		FZ_ASSERT(vhd_pread(v, buf, w[i].len, w[i].off) == 0,
			  "reading back after reopen failed");
		FZ_ASSERT(buf[0] == w[i].fill && buf[w[i].len - 1] == w[i].fill,
			  "written data lost after reopen");
	}
	fz_map(v, disk, !diff, buf);
	vhd_close(v);
	free(out);
}

/* One sector written at the end of the disk (where a dynamic disk's last
 * block is most often unallocated, so this allocates), then a reopen
 * that must find it: a smaller, deterministic cousin of fz_write_pass,
 * which a bug in block placement cannot hide behind later writes. */
static void
fz_last_sector(const uint8_t *data, size_t size, unsigned flags, uint8_t *buf)
{
	struct vhd *v = NULL;
	struct vhd_info info = { .struct_size = sizeof info };
	uint8_t *out = NULL;
	size_t out_len = 0;
	uint64_t off;
	int ok;

	if (fz_open(&v, data, size, flags | VHD_OPEN_RDWR, &out, &out_len) < 0)
		return;
	if (vhd_get_info(v, &info) < 0 || info.virtual_size < 512 ||
	    info.type == VHD_TYPE_DIFF) {
		vhd_close(v);
		free(out);
		return;
	}
	off = (info.virtual_size - 512) & ~(uint64_t)511;
	memset(buf, 0xA5, 512);
	ok = vhd_pwrite(v, buf, 512, off) == 0;
	vhd_close(v);
	if (!out)
		return;
	if (ok) {
		if (fz_open(&v, out, out_len, flags, NULL, NULL) < 0) {
			FZ_ASSERT(0, "image does not reopen after one sector "
				  "written");
		} else {
			FZ_ASSERT(vhd_pread(v, buf, 512, off) == 0 &&
				  buf[0] == 0xA5 && buf[511] == 0xA5,
				  "the sector written is lost");
			vhd_close(v);
		}
	}
	free(out);
}

/* ---- Checking ------------------------------------------------------- */

static char fz_shm_path[64];

static void
fz_shm_cleanup(void)
{
	if (fz_shm_path[0])
		unlink(fz_shm_path);
}

/* Counts the problems reported ("warning: " lines are reported but, by
 * check.c's design, not counted). */
static void
fz_count(void *arg, const char *problem)
{
	FZ_ASSERT(problem && problem[0], "check reported an empty problem");
	if (problem && strncmp(problem, "warning: ", 9) != 0)
		++*(int *)arg;
}

/* vhd_check takes a path: the input goes to a tmpfs file.  Returns what
 * vhd_check returned, or INT32_MIN when the file could not be written. */
static int
fz_check(const uint8_t *data, size_t size)
{
	int reported = 0, r;

	if (!fz_shm_path[0]) {
		snprintf(fz_shm_path, sizeof(fz_shm_path),
			 "/dev/shm/vhd-fuzz-%ld.vhd", (long)getpid());
		atexit(fz_shm_cleanup);
	}
	if (fz_write_file(fz_shm_path, data, size) < 0)
		return INT32_MIN;
	r = vhd_check(fz_shm_path, VHD_CHECK_NO_PARENT, fz_count, &reported);
	/* Now, not only at exit: a crashing input never reaches atexit. */
	unlink(fz_shm_path);
	FZ_ASSERT(r < 0 || r == reported, "check's count differs from its reports");
	return r;
}

/* The whole pipeline for one input (also used by test_fuzz_regress.c). */
int fuzz_open_input(const uint8_t *data, size_t size);

int
fuzz_open_input(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	int strict, lenient, checked;

	if (size > FZ_MAX_INPUT)
		return 0;
	buf = malloc(FZ_BUF);
	if (!buf)
		return 0;
	strict = fz_read_pass(data, size, VHD_OPEN_RDONLY, buf);
	lenient = fz_read_pass(data, size, VHD_OPEN_IGNORE_CHECKSUM, buf);
	FZ_ASSERT(strict < 0 || lenient == 0,
		  "IGNORE_CHECKSUM refuses what a strict open accepts");
	fz_write_pass(data, size, strict == 0 ? 0 : VHD_OPEN_IGNORE_CHECKSUM, buf);
	fz_last_sector(data, size, strict == 0 ? 0 : VHD_OPEN_IGNORE_CHECKSUM, buf);
	checked = fz_check(data, size);
	if (strict == -EBADMSG && checked != INT32_MIN)
		FZ_ASSERT(checked != 0, "check reports clean an image open refuses");
	free(buf);
	return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_open_input(data, size);
}
#endif
