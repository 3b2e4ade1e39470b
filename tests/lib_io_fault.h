/* lib_io_fault.h - a backend wrapper that fails or "crashes" at the Nth
 * write, and a VFS whose files are such wrappers (tests only). */
#ifndef LIB_IO_FAULT_H
#define LIB_IO_FAULT_H
#include <stdint.h>
#include "vhd.h"

enum fault_mode {
	FAULT_NONE,
	FAULT_FAIL,     /* the Nth write fails with -EIO; later ones work */
	FAULT_CRASH,    /* the Nth write and every later one is dropped
			   (reported as done): the file as a crash leaves it
			   when writes reach the disk in order (or a killed
			   process: everything before the Nth) */
	FAULT_ENOSPC,   /* the Nth and every later write fail with -ENOSPC
			   (the disk is full) */
	FAULT_SHORT,    /* the Nth write stores only its first half, then
			   it and every later write fail with -ENOSPC (what
			   a full disk does to a write it had started) */
	FAULT_REORDER,  /* power loss at the Nth write: the durable copy
			   holds everything up to the last flush plus a
			   random subset of the writes since (the disk may
			   reorder between barriers); see wrap_reorder */
};

/* Wraps inner (not owned: closing the wrapper leaves inner open).  n is
 * 1-based; writes are pwrite, truncate and punch calls. */
struct vhd_io *fault_io_wrap(struct vhd_io *inner, enum fault_mode mode,
			     long n);
/* FAULT_REORDER: every write goes to inner (the live file the library
 * keeps using); durable (not owned, starting as a copy of inner) receives
 * the writes a flush made durable, and at the Nth write a subset of the
 * pending ones chosen by seed, and nothing after. */
struct vhd_io *fault_io_wrap_reorder(struct vhd_io *inner,
				     struct vhd_io *durable, long n,
				     uint32_t seed);
/* *writes gets the count of writes when the wrapper is closed (the
 * writes of vhd_close, a commit, count too). */
void fault_io_report_writes(struct vhd_io *io, long *writes);
/* Writes seen so far (including dropped ones). */
long fault_io_writes(struct vhd_io *io);
/* Has the fault triggered? */
int fault_io_triggered(struct vhd_io *io);
/* Was the triggering call a pwrite or truncate (whose error the library
 * must pass on), not a punch (optional: ignoring its failure is fine)? */
int fault_io_trigger_must_fail(struct vhd_io *io);

/* A VFS over inner (not owned) whose every file is wrapped as above, all
 * sharing one count: the Nth write-like call of any file of it (pwrite,
 * truncate, punch, creating a file, rename, unlink) triggers mode.  Any
 * mode but FAULT_REORDER.  So the calls that take names (vhd_merge_vfs,
 * vhd_set_parent_vfs, ...) are crashed and failed at every write without
 * tracing the process. */
struct vhd_vfs *fault_vfs_new(struct vhd_vfs *inner, enum fault_mode mode,
			      long n);
void fault_vfs_free(struct vhd_vfs *vfs);
long fault_vfs_writes(struct vhd_vfs *vfs);
int  fault_vfs_triggered(struct vhd_vfs *vfs);
int  fault_vfs_trigger_must_fail(struct vhd_vfs *vfs);
/* One run of op on a fault VFS over the platform's (mode FAULT_NONE:
 * counting); *writes (if not NULL) gets the writes seen, *must_fail (if
 * not NULL) whether the triggering call was one whose error the library
 * must pass on.  op's result.  Aborts if the VFS cannot be made. */
int  fault_vfs_run(int (*op)(struct vhd_vfs *), enum fault_mode mode, long n,
		   long *writes, int *must_fail);
#endif
