/* check.c - consistency check of an image and its chain; never writes.
 * Every problem is reported; "warning: " lines (leaked space, accepted
 * quirks) are reported but not counted. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

struct ck {
	vhd_report_fn report;
	void *arg;
	int count;
	char last[1024];
};

static void
ck_problem(void *arg, const char *msg)
{
	struct ck *c = arg;

	c->count++;
	snprintf(c->last, sizeof(c->last), "%s", msg);
	if (c->report)
		c->report(c->arg, msg);
}

static void
ck_warn(struct ck *c, const char *fmt, ...)
{
	char msg[1100];
	va_list ap;

	strcpy(msg, "warning: ");
	va_start(ap, fmt);
	vsnprintf(msg + 9, sizeof(msg) - 9, fmt, ap);
	va_end(ap);
	if (c->report)
		c->report(c->arg, msg);
}

static void
ck_fail(struct ck *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck_problem(c, msg);
}

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
			ck_fail(c, "'%s': parent locator %d at offset %llu: "
				"platform code: expected one of Wi2r Wi2k W2ru "
				"W2ku Mac MacX, found 0x%08x", v->path, i,
				(unsigned long long)eo, l->code);
			continue;
		}
		if (l->offset > v->file_size || x > v->file_size - l->offset ||
		    x < l->length)
			ck_fail(c, "'%s': parent locator %d at offset %llu: data "
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
		ck_fail(c, "'%s': blktap batmap header at offset %llu: the map "
			"(%u sectors at %llu) is not between its header and the "
			"footer", v->path,
			(unsigned long long)b->hdr_off, b->map_sectors,
			(unsigned long long)b->map_off);
		return;
	}
	uint64_t len = (uint64_t)b->map_sectors * 512;
	uint32_t sum = vhd_checksum(b->map, len, len);
	if (sum != b->checksum)
		ck_fail(c, "'%s': blktap batmap header at offset %llu: checksum: "
			"expected 0x%08x, found 0x%08x", v->path,
			(unsigned long long)b->hdr_off, sum, b->checksum);
	for (uint32_t i = 0; i < v->bat_entries && i < len * 8; i++) {
		if (!bit_test(b->map, i))
			continue;
		if (v->bat[i] == VHD_BAT_UNUSED) {
			ck_fail(c, "'%s': blktap batmap: block %u: marked full "
				"but not allocated", v->path, i);
			continue;
		}
		int set;
		uint32_t run;
		if (vhd_bm_run(v, i, 0, v->spb, &set, &run) == 0 &&
		    (!set || run != v->spb))
			ck_fail(c, "'%s': blktap batmap: block %u: marked full "
				"but its bitmap has clear bits", v->path, i);
	}
}

static int
check_one(const char *path, struct ck *c)
{
	struct vhd_io *io;
	struct vhd_problems p = { ck_problem, c, 0, "" };
	struct vhd_problems quiet = { NULL, NULL, 0, "" };
	uint8_t tail[512], copy[512], old511[512];
	uint64_t fs;
	unsigned warn = 0;
	int r, tail_ok;

	if ((r = vhd_vfs_open(NULL, &io, path, 0, VHD_LOCK_NONE)) < 0)
		return r;
	if ((r = io->ops->get_size(io, &fs)) < 0 || fs < 512) {
		io->ops->close(io);
		if (r < 0)
			return vhd_err(-r, "'%s': %s", path, strerror(-r));
		ck_fail(c, "'%s': not a VHD image: %llu bytes", path,
			(unsigned long long)fs);
		return 0;
	}
	r = io->ops->pread(io, tail, 512, fs - 512);
	if (r == 0)
		r = io->ops->pread(io, copy, 512, 0);
	if (r == 0)
		r = io->ops->pread(io, old511, 511, fs - 511);
	io->ops->close(io);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot read: %s", path, strerror(-r));

	/* A valid 511-byte footer from pre-2004 tools is a quirk (the open
	 * below warns about it), not a damaged trailing footer. */
	old511[511] = 0;
	tail_ok = vhd_footer_check(tail, path, fs - 512, 0, &warn, &quiet) == 0;
	if (!tail_ok && vhd_footer_check(old511, path, fs - 511, 0, &warn,
					 &quiet) == 0) {
		memcpy(tail, old511, 512);
		tail_ok = 1;
	}
	if (!tail_ok)
		vhd_footer_check(tail, path, fs - 512, 0, &warn, &p);
	if (warn & VHD_WARN_HIDDEN_BYTE)
		ck_warn(c, "'%s': footer: tapdisk hidden byte set with a "
			"stale checksum", path);
	uint32_t type = get_be32(tail + 60);
	if (!tail_ok)
		type = get_be32(copy + 60);
	if (type == VHD_TYPE_DYNAMIC || type == VHD_TYPE_DIFF) {
		warn = 0;
		int copy_ok = vhd_footer_check(copy, path, 0, 0, &warn,
					       &p) == 0;
		if (tail_ok && copy_ok &&
		    memcmp(tail, copy, 512) != 0 &&
		    (memcmp(tail, copy, 85) != 0 ||
		     memcmp(tail + 86, copy + 86, 426) != 0))
			ck_fail(c, "'%s': the footer copy at offset 0 differs "
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
		if (strcmp(vhd_errmsg(), c->last) != 0)
			ck_problem(c, vhd_errmsg());
		return 0;
	}
	if (v->warnings & VHD_WARN_FOOTER_511)
		ck_warn(c, "'%s': old 511-byte footer", path);
	if (v->type == VHD_TYPE_DIFF || v->type == VHD_TYPE_DYNAMIC) {
		warn = 0;
		vhd_header_check(v->header_raw, path, v->ft.data_offset, v->size,
				 v->file_size, 0, &warn, &p);
		if (v->type == VHD_TYPE_DIFF)
			check_locators(c, v);
		check_batmap(c, v);
		/* Space past the last block (a crash between writing a block
		 * and pointing the BAT at it): harmless, only wasted. */
		uint64_t used = align_up(v->next_free + v->bitmap_size,
					 VHD_DATA_ALIGN) - v->bitmap_size;
		if (tail_ok && v->footer_off > used)
			ck_warn(c, "'%s': %llu bytes leaked between offset %llu "
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
		ck_problem(c, vhd_errmsg());
		return c->count;
	}
	if (r < 0)
		return r;
	if (v->warnings & VHD_WARN_LOG_REPLAYED)
		ck_warn(c, "'%s': the log is not empty (unclean shutdown); "
			"replayed in memory, the file is unchanged", path);
	vhd_close(v);
	return c->count;
}

static int check_locked(const char *path, unsigned flags,
			vhd_report_fn report, void *arg);

int
vhd_check(const char *path, unsigned flags, vhd_report_fn report, void *arg)
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
	r = check_locked(path, flags, report, arg);
	lk->ops->close(lk);
	return r;
}

static int
check_locked(const char *path, unsigned flags, vhd_report_fn report,
	     void *arg)
{
	struct ck c = { report, arg, 0, "" };
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
		ck_problem(&c, vhd_errmsg());
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
		ck_problem(&c, vhd_errmsg());
		return c.count;
	}
	for (struct vhd *p = v->parent; p; p = p->parent) {
		if (p->kind != VHD_KIND_VHD)
			continue;
		if ((r = check_one(p->path, &c)) < 0)
			ck_problem(&c, vhd_errmsg());
	}
	vhd_close(v);
	return c.count;
}
