/*
 * fuzz_vhdx.c - libFuzzer target: VHDX structures, packed.
 *
 * A VHDX places its structures at 64 KiB and 1 MiB boundaries, so a whole
 * file is megabytes of mostly zeros that a byte-mutating fuzzer explores
 * badly.  The input here holds only the structures, and is unpacked into
 * a 5 MiB image that then goes through fuzz_open's whole pipeline (open
 * strict and lenient, info, reads, map, writes on a copy, check):
 *
 *   input offset   bytes   image offset
 *   0              1       control (below)
 *   1              4 KiB   64 KiB      header 1
 *   +4 KiB         4 KiB   128 KiB     header 2
 *   +8 KiB         4 KiB   192 KiB     region table (the rest of its 64 KiB zero)
 *   +12 KiB        4 KiB   256 KiB     region table copy
 *   +16 KiB        4 KiB   1 MiB       metadata table
 *   +20 KiB        4 KiB   1 MiB+64 KiB metadata items
 *   +24 KiB        8 KiB   2 MiB       BAT (1024 entries)
 *   +32 KiB        16 KiB  3 MiB       a block, a sector bitmap or the log
 *   +48 KiB        4 KiB   4 MiB       another (a differencing image's bitmap)
 *
 * The image starts with "vhdxfile".  Control bits: 1 seals both headers
 * (their CRC-32C recomputed), 2 both region tables, 4 log entries at 3 MiB
 * ("loge" at a 4 KiB boundary, over their EntryLength up to the image's
 * end), so that mutations reach the checks behind the checksums; bits 4-7
 * cut the image short by that many 64 KiB units.  Seeds
 * (tests/fuzz/seeds/vhdx) come from make-vhdx-seeds.py.
 *
 * tests/test_fuzz_regress.c includes this file and calls
 * fuzz_vhdx_input() on every input of regress/vhdx and seeds/vhdx.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_NO_MAIN
/* fuzz_open's pipeline, its entry point renamed (this file has its own). */
#define FUZZ_VHDX_OWN_OPEN 1
#define LLVMFuzzerTestOneInput fuzz_vhdx_open_entry
#include "fuzz_open.c"
#undef LLVMFuzzerTestOneInput
#endif

#define FV_IMAGE   (5u << 20)
#define FV_PACKED  (1 + 49152 + 4096)

static const struct { uint32_t in, len, at; } fv_map[] = {
	{ 1, 4096, 64 << 10 },          { 1 + 4096, 4096, 128 << 10 },
	{ 1 + 8192, 4096, 192 << 10 },  { 1 + 12288, 4096, 256 << 10 },
	{ 1 + 16384, 4096, 1 << 20 },   { 1 + 20480, 4096, (1 << 20) + (64 << 10) },
	{ 1 + 24576, 8192, 2 << 20 },   { 1 + 32768, 16384, 3 << 20 },
	{ 1 + 49152, 4096, 4 << 20 },
};

/* CRC-32C (Castagnoli, reflected), bitwise: the harness's own. */
static uint32_t
fv_crc32c(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= (i >= skip && i < skip + 4) ? 0 : p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

static void
fv_seal(uint8_t *p, size_t n)
{
	uint32_t c = fv_crc32c(p, n, 4);

	p[4] = (uint8_t)c;
	p[5] = (uint8_t)(c >> 8);
	p[6] = (uint8_t)(c >> 16);
	p[7] = (uint8_t)(c >> 24);
}

int fuzz_vhdx_input(const uint8_t *data, size_t size);

int
fuzz_vhdx_input(const uint8_t *data, size_t size)
{
	uint8_t *img, ctl;
	size_t len;

	if (size < 1 || size > FV_PACKED)
		return 0;
	img = calloc(1, FV_IMAGE);
	if (!img)
		return 0;
	memcpy(img, "vhdxfile", 8);
	for (size_t i = 0; i < sizeof(fv_map) / sizeof(fv_map[0]); i++) {
		if (fv_map[i].in >= size)
			break;
		size_t n = size - fv_map[i].in < fv_map[i].len ?
			   size - fv_map[i].in : fv_map[i].len;
		memcpy(img + fv_map[i].at, data + fv_map[i].in, n);
	}
	ctl = data[0];
	if (ctl & 1) {
		fv_seal(img + (64 << 10), 4096);
		fv_seal(img + (128 << 10), 4096);
	}
	if (ctl & 2) {
		fv_seal(img + (192 << 10), 65536);
		fv_seal(img + (256 << 10), 65536);
	}
	if (ctl & 4) {
		for (uint32_t o = 3 << 20; o < (3u << 20) + 16384; o += 4096) {
			uint8_t *e = img + o;
			uint32_t el = (uint32_t)e[8] | (uint32_t)e[9] << 8 |
				      (uint32_t)e[10] << 16 |
				      (uint32_t)e[11] << 24;
			if (memcmp(e, "loge", 4) != 0 || el < 4096 ||
			    el % 4096 || el > FV_IMAGE - o)
				continue;
			fv_seal(e, el);
		}
	}
	len = FV_IMAGE - (size_t)(ctl >> 4) * 65536;
	fuzz_open_input(img, len);
	free(img);
	return 0;
}

#ifdef FUZZ_VHDX_OWN_OPEN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_vhdx_input(data, size);
}
#endif
