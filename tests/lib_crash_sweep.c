/* lib_crash_sweep.c - the fault sweep shared by the crash tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib_crash_sweep.h"

uint8_t *
crash_sweep_copy(struct vhd_io *mem, size_t *len)
{
	const uint8_t *d = vhd_io_mem_data(mem, len);
	uint8_t *p = malloc(*len);

	assert_non_null(p);
	memcpy(p, d, *len);
	return p;
}

long
crash_sweep_run(const struct crash_sweep *s, enum fault_mode mode, long n,
		uint32_t rseed)
{
	static const int want[] = { [FAULT_FAIL] = EIO,
		[FAULT_ENOSPC] = ENOSPC, [FAULT_SHORT] = ENOSPC };
	static const char *what[] = { "none", "EIO at write",
		"crash at write", "ENOSPC from write", "short write at",
		"power loss at write" };
	struct vhd_io *mem, *dur = NULL, *fio;
	struct vhd *v;
	size_t len;

	assert_int_equal(vhd_io_mem_open(&mem, s->base, s->base_len), 0);
	if (mode == FAULT_REORDER) {
		assert_int_equal(vhd_io_mem_open(&dur, s->base, s->base_len),
				 0);
		fio = fault_io_wrap_reorder(mem, dur, n, rseed);
	} else {
		fio = fault_io_wrap(mem, mode, n);
	}
	assert_non_null(fio);
	if (s->open_image(&v, fio, VHD_OPEN_RDWR) < 0)
		fail_msg("open: %s", vhd_errmsg());
	long writes = 0;
	if (s->close_writes)
		fault_io_report_writes(fio, &writes);
	s->workload(v, fio, n, mode < sizeof(want) / sizeof(want[0]) ?
		    want[mode] : 0);
	if (!s->close_writes)
		writes = fault_io_writes(fio);
	vhd_close(v);           /* closes fio, not mem */
	const uint8_t *d = vhd_io_mem_data(dur ? dur : mem, &len);
	s->verify(d, len, what[mode], n, mode == FAULT_REORDER ||
		  mode == FAULT_SHORT);
	mem->ops->close(mem);
	if (dur)
		dur->ops->close(dur);
	return writes;
}

long
crash_sweep_stride(void)
{
	const char *env = getenv("VHD_TEST_STRIDE");

	return env && atol(env) > 1 ? atol(env) : 1;
}

void
crash_sweep(const struct crash_sweep *s)
{
	static const enum fault_mode modes[] = { FAULT_CRASH, FAULT_REORDER,
		FAULT_FAIL, FAULT_ENOSPC, FAULT_SHORT };
	static const char *mname[] = { "crash", "power loss (2 subsets)",
		"EIO", "ENOSPC", "short write" };
	long total = crash_sweep_run(s, FAULT_NONE, 0, 0);
	long stride = s->stride ? crash_sweep_stride() : 1;

	assert_true(total > s->min_writes);
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		long points = 0;

		if (s->repairs)
			*s->repairs = 0;
		for (long n = 1; n <= total; n++) {
			if (n % stride != 0 && n != 1 && n != total)
				continue;
			crash_sweep_run(s, modes[m], n, (uint32_t)n);
			points++;
			if (modes[m] == FAULT_REORDER) {
				crash_sweep_run(s, modes[m], n,
						(uint32_t)(n * 7919 + 1));
				points++;
			}
		}
		if (s->repairs)
			print_message("%s: %s: %ld points tried (%ld needed "
				      "repair)\n", s->name, mname[m], points,
				      *s->repairs);
		else
			print_message("%s: %s: %ld points tried\n", s->name,
				      mname[m], points);
	}
}

const struct crash_fmode crash_fmodes[4] = {
	{ FAULT_CRASH, 0, 0, "crashed at write" },
	{ FAULT_ENOSPC, ENOSPC, 0, "ENOSPC from write" },
	{ FAULT_SHORT, ENOSPC, 1, "short write, then ENOSPC, at write" },
	{ FAULT_FAIL, EIO, 0, "EIO at write" },
};

void
crash_expect_error(const char *op, int k, long n, int r, int must_fail)
{
	const struct crash_fmode *f = &crash_fmodes[k];

	if (f->err && must_fail && r != -f->err)
		fail_msg("%s, %s %ld: returned %d (%s), not %s", op, f->what, n,
			 r, r < 0 ? strerror(-r) : "ok", strerror(f->err));
}
