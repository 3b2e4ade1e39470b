/* lib_io_fault.h - a backend wrapper that fails or "crashes" at the Nth
 * write (tests only). */
#ifndef LIB_IO_FAULT_H
#define LIB_IO_FAULT_H
#include "vhd.h"

enum fault_mode {
	FAULT_NONE,
	FAULT_FAIL,     /* the Nth write fails with -EIO; later ones work */
	FAULT_CRASH,    /* the Nth write and every later one is dropped
			   (reported as done): the file as a crash leaves it */
};

/* Wraps inner (not owned: closing the wrapper leaves inner open).  n is
 * 1-based; writes are pwrite, truncate and punch calls. */
struct vhd_io *fault_io_wrap(struct vhd_io *inner, enum fault_mode mode,
			     long n);
/* Writes seen so far (including dropped ones). */
long fault_io_writes(struct vhd_io *io);
/* Has the fault triggered? */
int fault_io_triggered(struct vhd_io *io);
#endif
