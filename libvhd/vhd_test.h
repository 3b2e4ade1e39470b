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

#ifdef __cplusplus
}
#endif
#endif
