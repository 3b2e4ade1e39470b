/* check.c - consistency check of an image and its chain; never writes.
 * Every problem is reported as a record; warnings (leaked space, accepted
 * quirks) are reported but not counted. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

struct ck {
	vhd_diag_fn report;
	void *arg;
	int count;
	struct vhd_errrec last;   /* the last problem reported */
};

static void
ck_problem(void *arg, const struct vhd_diag *d)
{
	struct ck *c = arg;

	if (d->severity == VHD_SEV_ERROR) {
		c->count++;
		c->last.code = d->code;
		c->last.offset = d->offset;
		snprintf(c->last.file, sizeof(c->last.file), "%s",
			 d->file ? d->file : "");
		snprintf(c->last.expected, sizeof(c->last.expected), "%s",
			 d->expected ? d->expected : "");
	}
	if (c->report)
		c->report(c->arg, d);
}

/* Reports a record made from a format (see vhd_rec_vformat). */
static void
ck_say(struct ck *c, enum vhd_severity sev, enum vhd_code code,
       uint64_t off, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 5, 6)))
#endif
	;
static void
ck_say(struct ck *c, enum vhd_severity sev, enum vhd_code code,
       uint64_t off, const char *fmt, ...)
{
	struct vhd_errrec r;
	struct vhd_diag d;
	va_list ap;

	va_start(ap, fmt);
	vhd_rec_vformat(&r, sev, code, off, NULL, NULL, fmt, ap);
	va_end(ap);
	vhd_rec_view(&r, &d);
	ck_problem(c, &d);
}

/* The library's last error (a refused open) as a problem. */
static void
ck_last_error(struct ck *c)
{
	struct vhd_diag d = *vhd_last_error();

	if (d.code == VHD_CODE_NONE)
		d.code = VHD_CODE_DAMAGED;
	d.severity = VHD_SEV_ERROR;
	ck_problem(c, &d);
}

/* A tolerated producer quirk (quirks.c): its code and words. */
static void
ck_quirk(struct ck *c, const char *path, unsigned warn, uint64_t off)
{
	const struct vhd_quirk *q = vhd_quirk_by_warn(warn);

	if (q)
		ck_say(c, VHD_SEV_WARNING, q->code, off, "'%s': %s", path,
		       q->warn_text);
}

/* Warnings (accepted quirks, leaked space) are reported, not counted
 * (vhd_check's one-line callers get them as "warning: ..."). */
#define ck_warn(c, code, off, ...) \
	ck_say(c, VHD_SEV_WARNING, code, off, __VA_ARGS__)
#define ck_fail(c, code, off, ...) \
	ck_say(c, VHD_SEV_ERROR, code, off, __VA_ARGS__)

static void
check_locators(struct ck *c, struct vhd *v)
{
	for (int i = 0; i < 8; i++) {
		const struct vhd_locator *l = &v->hdr.loc[i];
		uint64_t x = vhd_locator_extent(l);
		uint64_t eo = v->ft.data_offset + 576 + 24u * i;

		if (l->code == VHD_PLAT_NONE)
			continue;
		if (l->code != VHD_PLAT_WI2R && l->code != VHD_PLAT_WI2K &&
		    l->code != VHD_PLAT_W2RU && l->code != VHD_PLAT_W2KU &&
		    l->code != VHD_PLAT_MAC && l->code != VHD_PLAT_MACX) {
			ck_fail(c, VHD_CODE_LOCATOR, eo,
				"'%s': parent locator %d at offset %llu: "
				"platform code: expected one of Wi2r Wi2k W2ru "
				"W2ku Mac MacX, found 0x%08x", v->path, i,
				(unsigned long long)eo, l->code);
			continue;
		}
		if (l->offset > v->file_size || x > v->file_size - l->offset ||
		    x < l->length)
			ck_fail(c, VHD_CODE_LOCATOR, eo,
				"'%s': parent locator %d at offset %llu: data "
				"(%u bytes at %llu) must lie inside the file of "
				"%llu bytes", v->path, i, (unsigned long long)eo,
				l->length, (unsigned long long)l->offset,
				(unsigned long long)v->file_size);
	}
}

static void
check_batmap(struct ck *c, struct vhd *v)
{
	struct vhd_batmap *b = &v->batmap;

	if (!b->hdr_off || b->cut)
		return;         /* none, or cut short by the end: unused */
	if (!b->present) {
		ck_fail(c, VHD_CODE_BATMAP, b->hdr_off,
			"'%s': blktap batmap header at offset %llu: the map "
			"(%u sectors at %llu) is not between its header and the "
			"footer", v->path,
			(unsigned long long)b->hdr_off, b->map_sectors,
			(unsigned long long)b->map_off);
		return;
	}
	uint64_t len = (uint64_t)b->map_sectors * 512;
	uint32_t sum = vhd_checksum(b->map, len, len);
	if (sum != b->checksum)
		ck_fail(c, VHD_CODE_BATMAP, b->hdr_off,
			"'%s': blktap batmap header at offset %llu: checksum: "
			"expected 0x%08x, found 0x%08x", v->path,
			(unsigned long long)b->hdr_off, sum, b->checksum);
	for (uint32_t i = 0; i < v->bat_entries && i < len * 8; i++) {
		if (!bit_test(b->map, i))
			continue;
		if (v->bat[i] == VHD_BAT_UNUSED) {
			ck_fail(c, VHD_CODE_BATMAP, b->map_off + i / 8,
				"'%s': blktap batmap: block %u: marked full "
				"but not allocated", v->path, i);
			continue;
		}
		int set;
		uint32_t run;
		if (vhd_bm_run(v, i, 0, v->spb, &set, &run) == 0 &&
		    (!set || run != v->spb))
			ck_fail(c, VHD_CODE_BATMAP, b->map_off + i / 8,
				"'%s': blktap batmap: block %u: marked full "
				"but its bitmap has clear bits", v->path, i);
	}
}

static int
check_one(const char *path, struct ck *c)
{
	struct vhd_io *io;
	struct vhd_problems p = { .fn = ck_problem, .arg = c };
	struct vhd_problems quiet = { .fn = NULL, .arg = NULL };
	struct vhd_footer_scan s;
	uint8_t tail[512], *copy = s.copy;
	uint64_t fs, off;
	unsigned warn = 0;
	int r, tail_ok;

	if ((r = vhd_vfs_open(NULL, &io, path, 0, VHD_LOCK_NONE)) < 0)
		return r;
	if ((r = io->ops->get_size(io, &fs)) < 0 || fs < 512) {
		io->ops->close(io);
		if (r < 0)
			return vhd_err(-r, "'%s': %s", path, strerror(-r));
		ck_fail(c, VHD_CODE_NOT_VHD, VHD_DIAG_NO_OFFSET,
			"'%s': not a VHD image: %llu bytes", path,
			(unsigned long long)fs);
		return 0;
	}
	if ((r = vhd_footer_scan(io, fs, &s)) == 0)
		r = s.err;
	io->ops->close(io);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot read: %s", path, strerror(-r));

	/* A valid 511-byte footer from pre-2004 tools is a quirk (the open
	 * below warns about it), not a damaged trailing footer. */
	tail_ok = vhd_footer_pick(&s, path, VHD_FOOTER_AT_END |
				  VHD_FOOTER_AT_511, 0, tail, &off, &warn,
				  &quiet) != 0;
	if (!tail_ok) {
		memcpy(tail, s.tail, 512);
		vhd_footer_check(tail, path, fs - 512, 0, &warn, &p);
	}
	if (warn & VHD_WARN_HIDDEN_BYTE)
		ck_quirk(c, path, VHD_WARN_HIDDEN_BYTE,
			 (tail_ok ? off : fs - 512) + 85);
	uint32_t type = vhd_footer_type(tail_ok ? tail : copy);
	if (type == VHD_TYPE_DYNAMIC || type == VHD_TYPE_DIFF) {
		warn = 0;
		int copy_ok = vhd_footer_check(copy, path, 0, 0, &warn,
					       &p) == 0;
		if (tail_ok && copy_ok && !vhd_footer_same(tail, copy))
			ck_fail(c, VHD_CODE_FOOTER_COPY_DIFFERS, 0,
				"'%s': the footer copy at offset 0 differs "
				"from the footer at offset %llu", path,
				(unsigned long long)(fs - 512));
	}

	/* Structure: open (checksums accepted, BAT problems reported). */
	struct vhd *v;
	vhd_set_check_reporter(ck_problem, c);
	r = vhd_open(&v, path, VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHD |
		     VHD_OPEN_IGNORE_CHECKSUM |
		     VHD_OPEN_NO_PARENT | VHD_OPEN_NOLOCK);
	vhd_set_check_reporter(NULL, NULL);
	if (r < 0) {
		if (r != -EBADMSG)
			return r;
		/* The open refuses with the first problem found: not
		 * twice when the footer check above reported it. */
		const struct vhd_diag *e = vhd_last_error();
		if (c->count == 0 || e->code != c->last.code ||
		    e->offset != c->last.offset ||
		    strcmp(e->file ? e->file : "", c->last.file) != 0 ||
		    strcmp(e->expected ? e->expected : "",
			   c->last.expected) != 0)
			ck_last_error(c);
		return 0;
	}
	if (v->warnings & VHD_WARN_FOOTER_511)
		ck_quirk(c, path, VHD_WARN_FOOTER_511, v->footer_off);
	if (v->type == VHD_TYPE_DIFF || v->type == VHD_TYPE_DYNAMIC) {
		warn = 0;
		vhd_header_check(v->header_raw, path, v->ft.data_offset, v->size,
				 v->file_size, 0, &warn, &p);
		if (v->type == VHD_TYPE_DIFF)
			check_locators(c, v);
		check_batmap(c, v);
		/* Space past the last block (a crash between writing a block
		 * and pointing the BAT at it): harmless, only wasted. */
		uint64_t used = vhd_block_slot(v, v->next_free);
		if (tail_ok && v->footer_off > used)
			ck_warn(c, VHD_CODE_LEAKED, v->next_free,
				"'%s': %llu bytes leaked between offset %llu "
				"and the footer at %llu", path,
				(unsigned long long)(v->footer_off -
						     v->next_free),
				(unsigned long long)v->next_free,
				(unsigned long long)v->footer_off);
	}
	vhd_close(v);
	return 0;
}

/* A VHDX is validated whole by its open (headers, region tables,
 * metadata, log, every BAT entry): its refusal is the problem found.  A
 * differencing VHDX is checked without its parent. */
static int
check_vhdx(const char *path, struct ck *c)
{
	struct vhd *v;
	int r = vhd_open(&v, path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT |
			 VHD_OPEN_NOLOCK);

	if (r == -EBADMSG || r == -ENOTSUP) {
		struct vhd_diag d = *vhd_last_error();
		if (d.code == VHD_CODE_DAMAGED || d.code == VHD_CODE_NONE)
			d.code = VHD_CODE_VHDX;
		ck_problem(c, &d);
		return c->count;
	}
	if (r < 0)
		return r;
	if (v->warnings & VHD_WARN_LOG_REPLAYED)
		ck_quirk(c, path, VHD_WARN_LOG_REPLAYED, VHD_DIAG_NO_OFFSET);
	vhd_close(v);
	return c->count;
}

static int check_locked(const char *path, unsigned flags,
			vhd_diag_fn report, void *arg);

int
vhd_check_diag(const char *path, unsigned flags, vhd_diag_fn fn, void *arg)
{
	struct vhd_io *lk;
	int r;

	if (!path)
		return vhd_err(EINVAL, "vhd_check: no path");
	/* Held for the whole check, so no writer changes what it reads
	 * (unless the caller accepts that: -U, force-share). */
	r = vhd_vfs_open(NULL, &lk, path, 0, (flags & VHD_CHECK_FORCE_SHARE) ?
			      VHD_LOCK_PEEK : VHD_LOCK_READ);
	if (r < 0)
		return r;
	r = check_locked(path, flags, fn, arg);
	lk->ops->close(lk);
	return r;
}

int
vhd_check(const char *path, unsigned flags, vhd_report_fn report, void *arg)
{
	/* each record's text, warnings marked */
	struct vhd_text_report t = { report, arg,
				     { [VHD_SEV_WARNING] = "warning: " } };

	return vhd_check_diag(path, flags, vhd_report_text, &t);
}

static int
check_locked(const char *path, unsigned flags, vhd_diag_fn report,
	     void *arg)
{
	struct ck c = { .report = report, .arg = arg };
	struct vhd *v;
	unsigned share = (flags & VHD_CHECK_FORCE_SHARE) ?
			 VHD_OPEN_FORCE_SHARE : 0;
	int r;

	if ((r = vhd_path_is_vhdx(path)) != 0)
		return r < 0 ? r : check_vhdx(path, &c);
	if ((r = check_one(path, &c)) < 0)
		return r;
	if (flags & VHD_CHECK_NO_PARENT)
		return c.count;
	r = vhd_open(&v, path, VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHD |
		     VHD_OPEN_IGNORE_CHECKSUM |
		     VHD_OPEN_NO_PARENT | VHD_OPEN_NOLOCK);
	if (r < 0)
		return c.count;
	int diff = v->type == VHD_TYPE_DIFF;
	vhd_close(v);
	if (!diff)
		return c.count;
	/* The parents are locked as the chain opens, the top already is. */
	struct vhd_io *io;
	if ((r = vhd_vfs_open(NULL, &io, path, 0, VHD_LOCK_NONE)) < 0) {
		ck_last_error(&c);
		return c.count;
	}
	struct vhd_open_opts oo = {
		.struct_size = sizeof oo,
		.flags = VHD_OPEN_RDONLY | VHD_OPEN_FORMAT_VHD |
			 VHD_OPEN_IGNORE_CHECKSUM | share,
	};
	if ((r = vhd_open_io(&v, io, &oo)) < 0)
		io->ops->close(io);
	if (r < 0) {
		ck_last_error(&c);
		return c.count;
	}
	for (struct vhd *p = v->parent; p; p = p->parent) {
		if (p->kind != VHD_KIND_VHD)
			continue;
		if ((r = check_one(p->path, &c)) < 0)
			ck_last_error(&c);
	}
	vhd_close(v);
	return c.count;
}
