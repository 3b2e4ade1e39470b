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
	vhd_report_fn report;
	void *arg;
	const char *path;
	int fixes;
};

static void
say(struct rp *c, int fix, const char *fmt, ...)
{
	char msg[1024];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg), "%s'%s': ",
		     fix ? "repaired: " : "not repaired: ", c->path);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (fix)
		c->fixes++;
	if (c->report)
		c->report(c->arg, msg);
}

/* Is raw a valid footer (checksum included; the tapdisk hidden-byte quirk
 * accepted as readers accept it)? */
static int
footer_ok(const uint8_t raw[512], const char *path, uint64_t off)
{
	struct vhd_problems quiet = { NULL, NULL, 0, "" };
	unsigned warn = 0;

	return vhd_footer_check(raw, path, off, 0, &warn, &quiet) == 0;
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
	int r;

	if ((r = io->ops->pwrite(io, raw, 512, off)) < 0)
		return io_fail(c, r, "write the footer");
	if ((r = io->ops->flush(io)) < 0)
		return io_fail(c, r, "sync");
	if (fs > off + 512) {
		if ((r = io->ops->truncate(io, off + 512)) < 0)
			return io_fail(c, r, "truncate");
		if ((r = io->ops->flush(io)) < 0)
			return io_fail(c, r, "sync");
	}
	return 0;
}

static int
repair_io(struct rp *c, struct vhd_io *io)
{
	uint8_t tail[512], copy[512], old511[512], good[512];
	uint64_t fs;
	struct vhd *v;
	int r, tail_ok, copy_ok;

	if ((r = io->ops->get_size(io, &fs)) < 0)
		return io_fail(c, r, "get the file size");
	if (fs < 512) {
		say(c, 0, "the file has %llu bytes, fewer than a footer",
		    (unsigned long long)fs);
		return 0;
	}
	memset(old511, 0, sizeof(old511));
	if ((r = io->ops->pread(io, tail, 512, fs - 512)) < 0 ||
	    (r = io->ops->pread(io, copy, 512, 0)) < 0 ||
	    (r = io->ops->pread(io, old511, 511, fs - 511)) < 0)
		return io_fail(c, r, "read");
	tail_ok = footer_ok(tail, c->path, fs - 512);
	if (!tail_ok && footer_ok(old511, c->path, fs - 511)) {
		memcpy(tail, old511, 512);
		tail_ok = 1;
	}
	copy_ok = footer_ok(copy, c->path, 0);
	if (tail_ok)
		memcpy(good, tail, 512);
	else if (copy_ok && get_be32(copy + 60) != VHD_TYPE_FIXED)
		memcpy(good, copy, 512);
	else {
		say(c, 0, "no valid footer at the end of the file or at offset "
		    "0 to restore the other from");
		return 0;
	}
	if (get_be32(good + 60) == VHD_TYPE_FIXED)
		return 0;       /* no copy, nothing movable */

	/* The structure, read strictly: the same footer choice as above, and
	 * a header whose checksum fails stops here (see the top comment). */
	r = vhd_open(&v, c->path, VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHD |
		     VHD_OPEN_NO_PARENT |
		     VHD_OPEN_NOLOCK);
	if (r < 0) {
		if (r != -EBADMSG)
			return r;
		/* "'path': problem" -> "problem" (say() names the file) */
		const char *m = vhd_errmsg();
		size_t pl = strlen(c->path);
		if (m[0] == '\'' && strncmp(m + 1, c->path, pl) == 0 &&
		    strncmp(m + 1 + pl, "': ", 3) == 0)
			m += pl + 4;
		say(c, 0, "%s (the metadata itself is in doubt: nothing "
		    "is changed)", m);
		return 0;
	}
	uint64_t end = v->next_free;
	uint64_t used = align_up(v->next_free + v->bitmap_size, VHD_DATA_ALIGN)
			- v->bitmap_size;
	uint64_t foot = v->footer_off;
	vhd_close(v);

	if (!tail_ok) {
		if ((r = place_footer(c, io, good, end, fs)) < 0)
			return r;
		say(c, 1, "trailing footer %s: wrote the copy from offset 0 at "
		    "offset %llu, after the last block%s",
		    fs == end ? "missing" : "invalid",
		    (unsigned long long)end,
		    fs > end + 512 ? ", and cut off what followed it" : "");
	} else if (foot > used && end + 512 <= foot) {
		/* Only when the new footer does not overlap the old one: a
		 * crash before the truncate must leave the old one whole. */
		if ((r = place_footer(c, io, good, end, fs)) < 0)
			return r;
		say(c, 1, "%llu bytes leaked between offset %llu and the footer "
		    "at %llu: footer moved to %llu, file truncated to %llu "
		    "bytes", (unsigned long long)(foot - end),
		    (unsigned long long)end, (unsigned long long)foot,
		    (unsigned long long)end, (unsigned long long)(end + 512));
	}
	/* else: in place (a valid old 511-byte footer is left as it is) */

	/* The copy at 0 mirrors the trailing footer (byte 85, tapdisk's
	 * hidden flag, may differ: check tolerates that too). */
	if (!copy_ok || memcmp(copy, good, 85) != 0 ||
	    memcmp(copy + 86, good + 86, 426) != 0) {
		if ((r = io->ops->pwrite(io, good, 512, 0)) < 0)
			return io_fail(c, r, "write the footer copy");
		if ((r = io->ops->flush(io)) < 0)
			return io_fail(c, r, "sync");
		say(c, 1, "footer copy at offset 0 %s: rewritten from the "
		    "trailing footer", copy_ok ? "differed" : "invalid");
	}
	return 0;
}

int
vhd_repair(const char *path, vhd_report_fn report, void *arg)
{
	struct rp c = { report, arg, path, 0 };
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
