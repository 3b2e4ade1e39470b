/*
 * fuzz_locator.c - libFuzzer target for the parent locators of a
 * differencing disk (libvhd/locator.c).
 *
 * The input is the file: its first 1024 bytes (zero-padded) are taken as
 * the dynamic header, whose eight locator entries point at absolute
 * offsets in the same bytes, as they do in an image.  The candidates must
 * be NUL-terminated, non-empty, at most VHD_MAX_PARENT_CANDIDATES, and
 * every one freeable.  The UTF-16 decoder is also fed the raw input in
 * both byte orders, and what it produces must survive a round trip.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhd.h"
#include "locator.h"

#define FL_MAX_INPUT (1u * 1024 * 1024)

#define FL_ASSERT(cond, what) do { if (!(cond)) fl_fail(what, __LINE__); } \
	while (0)

#ifdef FUZZ_NO_MAIN
void fuzz_regress_fail(const char *who, const char *what, int line);

static void
fl_fail(const char *what, int line)
{
	fuzz_regress_fail("fuzz_locator", what, line);
}
#else
static void
fl_fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_locator: property violated at line %d: %s\n",
		line, what);
	abort();
}
#endif

static void
fl_candidates(const uint8_t *data, size_t size, const char *child)
{
	uint8_t hdr[1024];
	char *out[VHD_MAX_PARENT_CANDIDATES];
	struct vhd_io *io;
	int n;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	if (vhd_io_mem_open(&io, data, size) < 0)
		return;
	memset(out, 0, sizeof(out));
	n = vhd_parent_candidates(io, size, hdr, child, out);
	FL_ASSERT(n <= VHD_MAX_PARENT_CANDIDATES, "too many candidates");
	for (int i = 0; i < n; i++) {
		FL_ASSERT(out[i] != NULL, "NULL candidate");
		FL_ASSERT(out[i][0] != '\0', "empty candidate");
		free(out[i]);
	}
	io->ops->close(io);
}

static void
fl_utf16(const uint8_t *data, size_t size)
{
	char u8[1025], back8[1025];
	uint8_t u16[2048];

	for (int be = 0; be < 2; be++) {
		int n = vhd_utf16_to_utf8(data, size, be, u8, sizeof(u8));

		if (n < 0)
			continue;
		FL_ASSERT((size_t)n < sizeof(u8) && u8[n] == '\0' &&
			  strlen(u8) == (size_t)n, "UTF-8 length or terminator");
		int m = vhd_utf8_to_utf16(u8, be, u16, sizeof(u16));
		if (m < 0)
			continue;
		int k = vhd_utf16_to_utf8(u16, (size_t)m, be, back8,
					  sizeof(back8));
		FL_ASSERT(k == n && memcmp(u8, back8, (size_t)n) == 0,
			  "UTF-16 round trip changed the name");
	}
	/* Arbitrary bytes as UTF-8 must be refused or encoded, no more. */
	if (size < 600) {
		char s[601];

		memcpy(s, data, size);
		s[size] = '\0';
		(void)vhd_utf8_to_utf16(s, 0, u16, sizeof(u16));
		(void)vhd_utf8_to_utf16(s, 1, u16, 8);
	}
}

static void
fl_decode(const uint8_t *data, size_t size)
{
	for (size_t off = 0; off + 24 <= size && off < 24 * 8; off += 24) {
		struct vhd_locator l, l2;
		uint8_t raw[24];

		vhd_locator_decode(data + off, &l);
		(void)vhd_locator_extent(&l);
		vhd_locator_encode(&l, raw);
		vhd_locator_decode(raw, &l2);
		FL_ASSERT(l.code == l2.code && l.space == l2.space &&
			  l.length == l2.length && l.offset == l2.offset,
			  "locator encode/decode round trip");
	}
}

/* The whole pipeline for one input (also used by test_fuzz_regress.c). */
int fuzz_locator_input(const uint8_t *data, size_t size);

int
fuzz_locator_input(const uint8_t *data, size_t size)
{
	if (size > FL_MAX_INPUT)
		return 0;
	fl_candidates(data, size, "/nonexistent/dir/child.vhd");
	fl_candidates(data, size, "child.vhd");
	fl_utf16(data, size < 1024 ? size : 1024);
	fl_decode(data + (size > 576 ? 576 : size), size > 576 ? size - 576 : 0);
	return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_locator_input(data, size);
}
#endif
