/*
 * vhd_test.h - entry points for libvhd's own tests, not part of the ABI.
 *
 * They are in libmsvhd.a (which the tests link) but not exported from
 * libmsvhd.so.1 and may change or go away in any release.  Everything
 * here works on a caller-supplied backend (struct vhd_io) that stays
 * owned, and open, by the caller.
 */
#ifndef LIBVHD_VHD_TEST_H
#define LIBVHD_VHD_TEST_H

#include "vhd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* vhd_create() on a backend. */
int  vhd_create_io(struct vhd_io *io, const struct vhd_create_opts *opts);
/* vhd_resize() on a backend. */
int  vhd_resize_io(struct vhd_io *io, uint64_t new_size, unsigned flags,
		   vhd_progress_fn progress, void *arg);
/* vhd_compact() in place on a backend. */
int  vhd_compact_io(struct vhd_io *io, unsigned flags,
		    vhd_progress_fn progress, void *arg);

/* The producer quirks table (quirks.c; SPEC.md §7 lists the same). */
struct vhd_quirk {
	const char *id;         /* stable name: SPEC.md §7's first column */
	const char *producers;  /* who does it */
	const char *what;       /* the quirk */
	const char *detect;     /* how the library tells it */
	const char *handling;   /* what the library does about it */
	unsigned warn;          /* VHD_WARN_* an open sets tolerating it */
	enum vhd_code code;     /* check's record about it (or NONE) */
	const char *warn_text;  /* vhd_warning_text(warn) */
};
const struct vhd_quirk *vhd_quirk_table(size_t *n);

/* The clock (nanoseconds) the POSIX file backend times partial-page
 * writes with, to tell a cached file from an uncached one (io_file.c);
 * NULL restores CLOCK_MONOTONIC. */
void vhd_test_edge_clock(uint64_t (*fn)(void));

#ifdef __cplusplus
}
#endif
#endif
