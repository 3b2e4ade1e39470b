/*
 * repair.c - vhd_repair: fix what can be fixed without guessing.
 *
 * What a crash, a full disk or an old tool can leave, and what we do:
 *  - the trailing footer missing, torn or zeroed while the copy at offset
 *    0 is valid: the copy is written after the last block (or piece of
 *    metadata), and anything past it is cut off;
 *  - the copy at offset 0 invalid (or different from a valid trailing
 *    footer, which is the one every reader uses): rewritten from the
 *    trailing footer;
 *  - leaked space between the last block and the trailing footer (a crash
 *    between writing a block and pointing the BAT at it, or a set-parent
 *    that stopped before its header write): the footer is written at the
 *    end of the last block, synced, and only then is the file truncated,
 *    so every crash point during the repair leaves a valid footer at the
 *    end.
 * Everything else is reported and left alone.  In particular a dynamic
 * header whose checksum does not match is not "fixed" by recomputing the
 * checksum: the mismatch says the header bytes themselves may be wrong
 * (a torn write, bit rot), and a recomputed checksum would make a wrong
 * BAT offset or block size look valid.  Neither footer valid (both with
 * bad checksums, say) is refused for the same reason.  Fixed disks have
 * no footer copy, so nothing about them is repairable.
 *
 * The file is locked exclusively first: an image in use by a writer is
 * never repaired under it.  Only this image is repaired, not its parents.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

struct rp {
	vhd_diag_fn report;
	void *arg;
	const char *path;
	int fixes;
};

/* A fix made (fix 1: severity repaired) or refused (severity error), as
 * a record "'FILE': what" with the code of the problem concerned. */
static void
say(struct rp *c, int fix, enum vhd_code code, uint64_t off,
    const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 5, 6)))
#endif
	;
static void
say(struct rp *c, int fix, enum vhd_code code, uint64_t off,
    const char *fmt, ...)
{
	struct vhd_errrec r;
	struct vhd_diag d;
	va_list ap;

	va_start(ap, fmt);
	vhd_rec_vfile(&r, fix ? VHD_SEV_REPAIRED : VHD_SEV_ERROR, code, off,
		      c->path, fmt, ap);
	va_end(ap);
	if (fix)
		c->fixes++;
	if (c->report) {
		vhd_rec_view(&r, &d);
		c->report(c->arg, &d);
	}
}

static int
io_fail(struct rp *c, int r, const char *what)
{
	return vhd_err(-r, "'%s': repair: cannot %s: %s", c->path, what,
		       strerror(-r));
}

/* Puts the footer raw at off, syncs, then cuts the file at off + 512. */
static int
place_footer(struct rp *c, struct vhd_io *io, const uint8_t raw[512],
	     uint64_t off, uint64_t fs)
{
	const char *failed = "";
	int r = vhd_footer_place_io(io, raw, off, fs, &failed);

	return r < 0 ? io_fail(c, r, failed) : 0;
}

static int
repair_io(struct rp *c, struct vhd_io *io)
{
	struct vhd_problems quiet = { .fn = NULL, .arg = NULL };
	struct vhd_footer_scan s;
	uint8_t good[512], *copy = s.copy;
	uint64_t fs, off;
	unsigned warn;
	struct vhd *v;
	int r, tail_ok, copy_ok;

	if ((r = io->ops->get_size(io, &fs)) < 0)
		return io_fail(c, r, "get the file size");
	if (fs < 512) {
		say(c, 0, VHD_CODE_NOT_VHD, VHD_DIAG_NO_OFFSET,
		    "the file has %llu bytes, fewer than a footer",
		    (unsigned long long)fs);
		return 0;
	}
	if ((r = vhd_footer_scan(io, fs, &s)) < 0 || (r = s.err) < 0)
		return io_fail(c, r, "read");
	/* Valid: checksum included, the tapdisk hidden-byte quirk accepted
	 * as readers accept it.  The trailing footer (or an old 511-byte
	 * one), else the copy at 0 of a dynamic or differencing disk. */
	tail_ok = vhd_footer_pick(&s, c->path, VHD_FOOTER_AT_END |
				  VHD_FOOTER_AT_511, 0, good, &off, &warn,
				  &quiet) != 0;
	copy_ok = vhd_footer_check(copy, c->path, 0, 0, &warn, &quiet) == 0;
	if (!tail_ok && !vhd_footer_pick(&s, c->path, VHD_FOOTER_AT_COPY, 0,
					 good, &off, &warn, &quiet)) {
		say(c, 0, VHD_CODE_FOOTER_FROM_COPY, VHD_DIAG_NO_OFFSET,
		    "no valid footer at the end of the file or at offset "
		    "0 to restore the other from");
		return 0;
	}
	if (vhd_footer_type(good) == VHD_TYPE_FIXED)
		return 0;       /* no copy, nothing movable */

	/* The structure, read strictly: the same footer choice as above, and
	 * a header whose checksum fails stops here (see the top comment). */
	r = vhd_open(&v, c->path, VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHD |
		     VHD_OPEN_NO_PARENT |
		     VHD_OPEN_NOLOCK);
	if (r < 0) {
		if (r != -EBADMSG)
			return r;
		/* The problem without its file (say() names it). */
		const struct vhd_diag *e = vhd_last_error();
		say(c, 0, e->code, e->offset, "%s (the metadata itself is in doubt: nothing "
		    "is changed)", e->message);
		return 0;
	}
	uint64_t end = v->next_free;
	uint64_t used = vhd_block_slot(v, v->next_free);
	uint64_t foot = v->footer_off;
	vhd_close(v);

	if (!tail_ok) {
		if ((r = place_footer(c, io, good, end, fs)) < 0)
			return r;
		say(c, 1, VHD_CODE_FOOTER_FROM_COPY, end,
		    "trailing footer %s: wrote the copy from offset 0 at "
		    "offset %llu, after the last block%s",
		    fs == end ? "missing" : "invalid",
		    (unsigned long long)end,
		    fs > end + 512 ? ", and cut off what followed it" : "");
	} else if (foot > used && end + 512 <= foot) {
		/* Only when the new footer does not overlap the old one: a
		 * crash before the truncate must leave the old one whole. */
		if ((r = place_footer(c, io, good, end, fs)) < 0)
			return r;
		say(c, 1, VHD_CODE_LEAKED, end,
		    "%llu bytes leaked between offset %llu and the footer "
		    "at %llu: footer moved to %llu, file truncated to %llu "
		    "bytes", (unsigned long long)(foot - end),
		    (unsigned long long)end, (unsigned long long)foot,
		    (unsigned long long)end, (unsigned long long)(end + 512));
	}
	/* else: in place (a valid old 511-byte footer is left as it is) */

	/* The copy at 0 mirrors the trailing footer (byte 85, tapdisk's
	 * hidden flag, may differ: check tolerates that too). */
	if (!copy_ok || !vhd_footer_same(copy, good)) {
		if ((r = io->ops->pwrite(io, good, 512, 0)) < 0)
			return io_fail(c, r, "write the footer copy");
		if ((r = io->ops->flush(io)) < 0)
			return io_fail(c, r, "sync");
		say(c, 1, VHD_CODE_FOOTER_COPY_DIFFERS, 0, "footer copy at offset 0 %s: rewritten from the "
		    "trailing footer", copy_ok ? "differed" : "invalid");
	}
	return 0;
}

int
vhd_repair_diag(const char *path, vhd_diag_fn fn, void *arg)
{
	struct rp c = { fn, arg, path, 0 };
	struct vhd_io *io;
	int r;

	if (!path)
		return vhd_err(EINVAL, "vhd_repair: no path");
	if ((r = vhd_path_is_vhdx(path)) != 0)
		return r < 0 ? r : vhd_err(ENOTSUP, "'%s': a VHDX image: "
					   "repair handles VHD images only",
					   path);
	/* Exclusive: nobody writes while we move the footer. */
	if ((r = vhd_vfs_open(NULL, &io, path, VHD_IO_RDWR, 2)) < 0)
		return r;
	r = repair_io(&c, io);
	io->ops->close(io);
	return r < 0 ? r : c.fixes;
}

int
vhd_repair(const char *path, vhd_report_fn report, void *arg)
{
	/* "repaired: 'FILE': ..." and "not repaired: 'FILE': ..." lines */
	struct vhd_text_report t = { report, arg, {
		[0] = "not repaired: ",
		[VHD_SEV_ERROR] = "not repaired: ",
		[VHD_SEV_WARNING] = "not repaired: ",
		[VHD_SEV_REPAIRED] = "repaired: " } };

	return vhd_repair_diag(path, vhd_report_text, &t);
}
