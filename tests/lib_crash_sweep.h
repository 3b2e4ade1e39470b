/* lib_crash_sweep.h - the fault sweep of the crash tests (tests only):
 * a workload runs once to count its writes N, then again for every n in
 * 1..N with each fault of lib_io_fault.h at write n (crash, power loss
 * with two reorder subsets, EIO, ENOSPC, a short write), and the bytes
 * each run leaves are handed to the caller's verifier.  test_crash.c (VHD)
 * and test_vhdx_write.c (VHDX) bring their own images, workloads and
 * verdicts; the loop, the modes and their expected errors live here. */
#ifndef LIB_CRASH_SWEEP_H
#define LIB_CRASH_SWEEP_H
#include <stddef.h>
#include <stdint.h>
#include "vhd.h"
#include "lib_io_fault.h"

struct crash_sweep {
	const char *name;               /* printed with the counts */
	const uint8_t *base;            /* the image before the workload */
	size_t base_len;
	/* Opens the image on io with flags (VHD_OPEN_RDWR here); not
	 * named "open", a macro in the Windows test shim (tests/compat). */
	int (*open_image)(struct vhd **v, struct vhd_io *io, unsigned flags);
	/* Runs the workload on v over fio; n is the failing write (0:
	 * none) and want the error (EIO, ENOSPC; 0: none) the call that
	 * issued it must return. */
	void (*workload)(struct vhd *v, struct vhd_io *fio, long n, int want);
	/* Judges the bytes the run left (the durable copy for power
	 * loss); may_repair where a torn write is possible (power loss,
	 * short write).  what names the fault ("crash at write"). */
	void (*verify)(const uint8_t *data, size_t n, const char *what,
		       long point, int may_repair);
	long min_writes;                /* the workload makes more */
	int stride;                     /* honour VHD_TEST_STRIDE */
	long *repairs;                  /* if set: zeroed per mode, printed */
	/* vhd_close's writes are fault points too (VHD: closing commits
	 * the pending BAT entries and bitmaps of group commit). */
	int close_writes;
};

/* One run with the fault mode at write n (FAULT_NONE, 0: counting);
 * rseed picks the power-loss subset.  Returns the writes seen. */
long crash_sweep_run(const struct crash_sweep *s, enum fault_mode mode,
		     long n, uint32_t rseed);
/* Every write point in every mode, the points tried per mode printed.
 * With s->stride and VHD_TEST_STRIDE=k (the emulated cross runs of `make
 * portability`, where every point would outlast their time limit): every
 * k-th point, the first and the last. */
void crash_sweep(const struct crash_sweep *s);
/* k from VHD_TEST_STRIDE=k (k > 1), else 1: how far apart the points
 * of a sweep are under an emulator. */
long crash_sweep_stride(void);
/* A malloc'd copy of a memory backend's bytes (*len its size). */
uint8_t *crash_sweep_copy(struct vhd_io *mem, size_t *len);

/* The faults a sweep over a call that takes names (vhd_merge_vfs,
 * vhd_set_parent_vfs; fault_vfs_run) tries at each of its writes. */
struct crash_fmode {
	enum fault_mode mode;
	int err;                /* 0: a crash (the call's result is moot) */
	int torn;               /* half of write n lands */
	const char *what;
};
extern const struct crash_fmode crash_fmodes[4];
#define CRASH_NFMODES 4
/* A failing mode's result: the error of the write that failed (r, the
 * call op's result at write n of mode k; must_fail from fault_vfs_run). */
void crash_expect_error(const char *op, int k, long n, int r, int must_fail);
#endif
