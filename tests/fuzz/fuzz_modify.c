/*
 * fuzz_modify.c - libFuzzer target for the calls that rewrite an image's
 * metadata in place: vhd_resize_io, vhd_compact_io and vhd_repair.
 *
 * The input is an image file.  Each call runs on its own copy (resize and
 * compact on a memory backend that caps growth, repair on a file in
 * /dev/shm since it takes a path).  Whatever the input, nothing may
 * crash; and these properties, which vhd.h promises, are checked:
 *  - resize: on success the image reopens with the new size, the kept
 *    range reads as before and a grown range reads as zeros; on failure
 *    it still opens, at the old size or the new one (crash-safe), with
 *    the kept range intact;
 *  - compact: on success the image reopens, reads as before and the file
 *    did not grow; on failure it still opens and reads as before;
 *  - repair: an image that opened before still opens and reads the same,
 *    and a second repair finds nothing more to fix.
 * Differencing disks: resize opens the parent (from the locators, which
 * come from the input) so it is skipped for them; compact and repair run
 * without the parent, and their data (which may need the parent) is not
 * compared.
 */
#include <stdio.h>
#include "vhd.h"
#include "fuzz_util.h"

#define FM_MAX_INPUT (1u * 1024 * 1024)
/* Compared ranges: first and last FM_SPAN bytes and a few in between. */
#define FM_SPAN      (16u * 1024)

#define FM_ASSERT(cond, what) do { if (!(cond)) fm_fail(what, __LINE__); } \
	while (0)

static void
fm_fail(const char *what, int line)
{
	fz_property_fail("fuzz_modify", "FUZZ_MODIFY_IGNORE", what, line);
}

/* The content of an open image over [0, limit), sampled: a hash of the
 * first and last FM_SPAN bytes and of four ranges placed by seed.  A read
 * that fails hashes as a marker, so "fails the same way" also matches. */
static uint64_t
fm_digest(struct vhd *v, uint64_t limit, uint64_t seed, uint8_t *buf)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	uint64_t off[6], len[6];

	off[0] = 0;
	len[0] = limit < FM_SPAN ? limit : FM_SPAN;
	off[1] = limit - len[0];
	len[1] = len[0];
	for (int i = 2; i < 6; i++) {
		off[i] = limit ? fz_rand(&seed) % limit : 0;
		len[i] = 1 + fz_rand(&seed) % FM_SPAN;
		if (len[i] > limit - off[i])
			len[i] = limit - off[i];
	}
	for (int i = 0; i < 6; i++) {
		if (len[i] == 0)
			continue;
		if (vhd_pread(v, buf, (size_t)len[i], off[i]) < 0) {
			h = (h ^ 0xEE) * UINT64_C(0x100000001b3);
			continue;
		}
		for (uint64_t k = 0; k < len[i]; k++)
			h = (h ^ buf[k]) * UINT64_C(0x100000001b3);
	}
	return h;
}

struct fm_state {
	struct vhd_info info;
	uint64_t digest;        /* over the whole disk */
};

/* Opens data strictly (no parent); 0 with *st filled, or -errno. */
static int
fm_look(const uint8_t *data, size_t size, uint64_t limit, uint64_t seed,
	struct fm_state *st, uint8_t *buf)
{
	struct vhd *v;
	int r = fz_open(&v, data, size, VHD_OPEN_RDONLY, NULL, NULL);

	if (r < 0)
		return r;
	st->info.struct_size = sizeof(st->info);
	if ((r = vhd_get_info(v, &st->info)) == 0) {
		if (limit > st->info.virtual_size)
			limit = st->info.virtual_size;
		st->digest = fm_digest(v, limit, seed, buf);
	}
	vhd_close(v);
	return r;
}

/* Reads [from, to) of an image and says whether it is all zeros. */
static int
fm_zeros(const uint8_t *data, size_t size, uint64_t from, uint64_t to,
	 uint8_t *buf)
{
	struct vhd *v;
	int ok = 1;

	if (fz_open(&v, data, size, VHD_OPEN_RDONLY, NULL, NULL) < 0)
		return 0;
	if (to - from > FZ_BUF)
		to = from + FZ_BUF;
	if (to > from)
		ok = vhd_pread(v, buf, (size_t)(to - from), from) == 0 &&
		     fz_all_zero(buf, (size_t)(to - from));
	vhd_close(v);
	return ok;
}

/* A new size derived from the input: around the old one, a multiple of
 * 512.  Growth stays under 65536 more blocks (a 256 KiB BAT): a larger
 * table is valid but only makes every later open slower. */
static uint64_t
fm_new_size(uint64_t old, uint32_t block, uint64_t *seed)
{
	uint64_t r = fz_rand(seed), k = (fz_rand(seed) % 4096) * 512;
	uint64_t most = old + (uint64_t)(block ? block : 4096) * 65536;
	uint64_t ns;

	switch (r % 6) {
	case 0: ns = old + k; break;
	case 1: ns = old > k ? old - k : 512; break;
	case 2: ns = old * 2; break;
	case 3: ns = old / 2 & ~(uint64_t)511; break;
	case 4: ns = (fz_rand(seed) % (most / 512 + 1)) * 512; break;
	default: ns = old + 512; break;
	}
	return ns <= most ? ns : most & ~(uint64_t)511;
}

static void
fm_resize(const uint8_t *data, size_t size, const struct fm_state *st,
	  uint8_t *buf)
{
	uint64_t seed = fz_seed(data, size) ^ 0x7e5;
	uint64_t old = st->info.virtual_size;
	uint64_t ns = fm_new_size(old, st->info.block_size, &seed);
	uint64_t keep = old < ns ? old : ns;
	unsigned flags = (fz_rand(&seed) & 1) ? VHD_RESIZE_FORCE : 0;
	struct fm_state before, after;
	struct vhd_io *io;
	uint8_t *out = NULL;
	size_t out_len = 0;
	int r;

	if (fm_look(data, size, keep, 11, &before, buf) < 0)
		return;
	if (!(io = fz_io_open(data, size, &out, &out_len)))
		return;
	r = vhd_resize_io(io, ns, flags, NULL, NULL);
	io->ops->close(io);
	if (!out)
		return;
	if (fm_look(out, out_len, keep, 11, &after, buf) < 0) {
		FM_ASSERT(0, r == 0 ? "resized image does not reopen" :
			  "failed resize left an image that does not open");
		free(out);
		return;
	}
	if (r == 0)
		FM_ASSERT(after.info.virtual_size == ns, "resize: wrong new size");
	else
		FM_ASSERT(after.info.virtual_size == old ||
			  after.info.virtual_size == ns,
			  "failed resize left a third size");
	FM_ASSERT(after.digest == before.digest,
		  "resize changed the data of the kept range");
	if (r == 0 && ns > old)
		FM_ASSERT(fm_zeros(out, out_len, old, ns, buf),
			  "grown range does not read as zeros");
	free(out);
}

static void
fm_compact(const uint8_t *data, size_t size, const struct fm_state *st,
	   uint8_t *buf)
{
	int diff = st->info.type == VHD_TYPE_DIFF;
	struct fm_state after;
	struct vhd_io *io;
	uint8_t *out = NULL;
	size_t out_len = 0;
	int r;

	if (!(io = fz_io_open(data, size, &out, &out_len)))
		return;
	r = vhd_compact_io(io, 0, NULL, NULL);
	io->ops->close(io);
	if (!out)
		return;
	if (fm_look(out, out_len, UINT64_MAX, 22, &after, buf) < 0) {
		FM_ASSERT(0, r == 0 ? "compacted image does not reopen" :
			  "failed compact left an image that does not open");
		free(out);
		return;
	}
	FM_ASSERT(after.info.virtual_size == st->info.virtual_size,
		  "compact changed the disk size");
	FM_ASSERT(diff || after.digest == st->digest,
		  "compact changed the data");
	if (r == 0)
		FM_ASSERT(out_len <= size, "compact made the file larger");
	free(out);
}

static char fm_shm_path[64];

static void
fm_shm_cleanup(void)
{
	if (fm_shm_path[0])
		unlink(fm_shm_path);
}

static void
fm_ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void
fm_repair(const uint8_t *data, size_t size, int opened,
	  const struct fm_state *st, uint8_t *buf)
{
	struct fm_state after;
	size_t n = 0;
	uint8_t *out;
	FILE *f;
	int r, r2;

	if (!fm_shm_path[0]) {
		snprintf(fm_shm_path, sizeof(fm_shm_path),
			 "/dev/shm/vhd-fuzz-modify-%ld.vhd", (long)getpid());
		atexit(fm_shm_cleanup);
	}
	if (fz_write_file(fm_shm_path, data, size) < 0)
		return;
	r = vhd_repair(fm_shm_path, fm_ignore, NULL);
	if (r < 0) {
		unlink(fm_shm_path);
		return;
	}
	r2 = vhd_repair(fm_shm_path, fm_ignore, NULL);
	FM_ASSERT(r2 <= 0, "a second repair still found things to fix");
	if (!opened) {
		unlink(fm_shm_path);
		return;
	}
	/* The repaired file, back into memory. */
	if (!(f = fopen(fm_shm_path, "rb"))) {
		unlink(fm_shm_path);
		return;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (long)(n = (size_t)ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || !(out = malloc(n ? n : 1))) {
		fclose(f);
		unlink(fm_shm_path);
		return;
	}
	n = fread(out, 1, n, f);
	fclose(f);
	unlink(fm_shm_path);    /* now: a crashing input never reaches atexit */
	if (fm_look(out, n, UINT64_MAX, 22, &after, buf) < 0)
		FM_ASSERT(0, "repair broke an image that opened");
	else
		FM_ASSERT(st->info.type == VHD_TYPE_DIFF ||
			  (after.digest == st->digest &&
			   after.info.virtual_size == st->info.virtual_size),
			  "repair changed the data");
	free(out);
}

/* The whole pipeline for one input (also used by test_fuzz_regress.c). */
int fuzz_modify_input(const uint8_t *data, size_t size);

int
fuzz_modify_input(const uint8_t *data, size_t size)
{
	struct fm_state st;
	uint8_t *buf;
	int opened;

	if (size > FM_MAX_INPUT)
		return 0;
	buf = malloc(FZ_BUF);
	if (!buf)
		return 0;
	opened = fm_look(data, size, UINT64_MAX, 22, &st, buf) == 0;
	if (opened && st.info.type != VHD_TYPE_DIFF)
		fm_resize(data, size, &st, buf);
	if (opened)
		fm_compact(data, size, &st, buf);
	fm_repair(data, size, opened, &st, buf);
	free(buf);
	return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_modify_input(data, size);
}
#endif
