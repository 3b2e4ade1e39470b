/* vhdx_meta.c - the VHDX open's validating readers (MS-VHDX v1.0): the
 * headers, the region table, the metadata items and the BAT.  Each checks
 * every field it uses and refuses with the structure, field, offset,
 * expected and found value (-EBADMSG); vhdx.c calls them in order. */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"

/* GUIDs as their 16 bytes on disk: Data1..3 little-endian, Data4 as is. */
#define G(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7) { \
	(a) & 0xff, (a) >> 8 & 0xff, (a) >> 16 & 0xff, (a) >> 24 & 0xff, \
	(b) & 0xff, (b) >> 8 & 0xff, (c) & 0xff, (c) >> 8 & 0xff, \
	d0, d1, d2, d3, d4, d5, d6, d7 }
const uint8_t vhdx_guid_bat[16] =
	G(0x2DC27766, 0xF623, 0x4200, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const uint8_t vhdx_guid_meta[16] =
	G(0x8B7CA206, 0x4790, 0x4B9A, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const uint8_t vhdx_guid_file_params[16] =
	G(0xCAA16737, 0xFA36, 0x4D43, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const uint8_t vhdx_guid_disk_size[16] =
	G(0x2FA54224, 0xCD1B, 0x4876, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const uint8_t vhdx_guid_page83[16] =
	G(0xBECA12AB, 0xB2E6, 0x4523, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const uint8_t vhdx_guid_lss[16] =
	G(0x8141BF1D, 0xA96F, 0x4709, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const uint8_t vhdx_guid_pss[16] =
	G(0xCDA348C7, 0x445D, 0x4471, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const uint8_t vhdx_guid_parent_loc[16] =
	G(0xA8D35F2D, 0xB30B, 0x454D, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);
const uint8_t vhdx_guid_vhdx_locator[16] =
	G(0xB04AEFB7, 0xD19E, 0x4A81, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13);

void
vhdx_fmt_guid(char out[39], const uint8_t g[16])
{
	snprintf(out, 39, "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
		 get_le32(g), get_le16(g + 4), get_le16(g + 6), g[8], g[9],
		 g[10], g[11], g[12], g[13], g[14], g[15]);
}

static int
bad(struct vhd *v, const char *what, uint64_t off, const char *expected,
    unsigned long long found)
{
	return vhd_err(EBADMSG, "'%s': %s at offset %llu: expected %s, found "
		       "%llu", v->path, what, (unsigned long long)off,
		       expected, found);
}

/* ---- headers ---- */

/* 0 if the header at off is valid (x filled from it), else -EBADMSG with
 * the reason as the message. */
static int
header_check(struct vhd *v, const uint8_t *h, uint64_t off, struct vhdx *x)
{
	char what[64];

	snprintf(what, sizeof(what), "header %d", off == VHDX_HEADER1_OFF ? 1
									 : 2);
	if (memcmp(h, "head", 4) != 0)
		return vhd_err(EBADMSG, "'%s': %s at offset %llu: signature: "
			       "expected 'head', found '%.4s'", v->path, what,
			       (unsigned long long)off, (const char *)h);
	uint32_t sum = vhdx_crc32c_skip(h, 4096, 4);
	if (sum != get_le32(h + 4))
		return vhd_err(EBADMSG, "'%s': %s at offset %llu: checksum: "
			       "expected 0x%08x (CRC-32C), found 0x%08x",
			       v->path, what, (unsigned long long)off, sum,
			       get_le32(h + 4));
	if (get_le16(h + 66) != 1)
		return bad(v, strcat(what, ": version"), off + 66, "1",
			   get_le16(h + 66));
	if (get_le16(h + 64) != 0)
		return bad(v, strcat(what, ": log version"), off + 64, "0",
			   get_le16(h + 64));
	uint32_t ll = get_le32(h + 68);
	uint64_t lo = get_le64(h + 72);
	if (ll % VHDX_MIB)
		return bad(v, strcat(what, ": log length"), off + 68,
			   "a multiple of 1 MiB", ll);
	if (lo < VHDX_MIB || lo % VHDX_MIB)
		return bad(v, strcat(what, ": log offset"), off + 72,
			   "a multiple of 1 MiB, at least 1 MiB", lo);
	x->seq = get_le64(h + 8);
	memcpy(x->file_guid, h + 16, 16);
	memcpy(x->data_guid, h + 32, 16);
	memcpy(x->log_guid, h + 48, 16);
	x->log_len = ll;
	x->log_off = lo;
	return 0;
}

int
vhdx_read_headers(struct vhd *v, struct vhdx *x)
{
	uint8_t h[2][4096];
	struct vhdx c[2];
	char msg[2][1024];
	int ok[2], r;

	for (int i = 0; i < 2; i++) {
		uint64_t off = i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF;
		memset(&c[i], 0, sizeof(c[i]));
		if ((r = vhd_file_read(v, h[i], 4096, off)) < 0)
			return r;
		ok[i] = header_check(v, h[i], off, &c[i]) == 0;
		snprintf(msg[i], sizeof(msg[i]), "%s", ok[i] ? "" :
			 vhd_errmsg());
	}
	if (!ok[0] && !ok[1])
		return vhd_err(EBADMSG, "%s; and %s", msg[0], msg[1]);
	int cur = !ok[0] || (ok[1] && c[1].seq > c[0].seq);
	memcpy(x->log_guid, c[cur].log_guid, 16);
	memcpy(x->data_guid, c[cur].data_guid, 16);
	memcpy(x->file_guid, c[cur].file_guid, 16);
	x->seq = c[cur].seq;
	x->log_len = c[cur].log_len;
	x->log_off = c[cur].log_off;
	x->header = cur + 1;
	if (x->log_len && (x->log_off > v->file_size ||
			   x->log_len > v->file_size - x->log_off))
		return vhd_err(EBADMSG, "'%s': header %d: the log at %llu (%u "
			       "bytes) must lie inside the file of %llu bytes",
			       v->path, x->header,
			       (unsigned long long)x->log_off, x->log_len,
			       (unsigned long long)v->file_size);
	return 0;
}

/* ---- region table ---- */

static int
region_table_check(struct vhd *v, struct vhdx *x, const uint8_t *t,
		   uint64_t off)
{
	if (memcmp(t, "regi", 4) != 0)
		return vhd_err(EBADMSG, "'%s': region table at offset %llu: "
			       "signature: expected 'regi', found '%.4s'",
			       v->path, (unsigned long long)off,
			       (const char *)t);
	uint32_t sum = vhdx_crc32c_skip(t, 65536, 4);
	if (sum != get_le32(t + 4))
		return vhd_err(EBADMSG, "'%s': region table at offset %llu: "
			       "checksum: expected 0x%08x (CRC-32C), found "
			       "0x%08x", v->path, (unsigned long long)off, sum,
			       get_le32(t + 4));
	uint32_t n = get_le32(t + 8);
	if (n > 2047)
		return bad(v, "region table: entry count", off + 8,
			   "at most 2047", n);
	x->bat_off = x->meta_off = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 16 + 32 * i;
		uint64_t eo = off + 16 + 32 * i;
		uint64_t fo = get_le64(e + 16);
		uint32_t len = get_le32(e + 24);
		int req = get_le32(e + 28) & 1;
		char g[39];
		if (memcmp(e, vhdx_guid_bat, 16) != 0 &&
		    memcmp(e, vhdx_guid_meta, 16) != 0) {
			if (!req)
				continue;
			vhdx_fmt_guid(g, e);
			return vhd_err(ENOTSUP, "'%s': region table entry %u at "
				       "offset %llu: unknown region %s is "
				       "marked required", v->path, i,
				       (unsigned long long)eo, g);
		}
		if (fo < VHDX_MIB || fo % VHDX_MIB)
			return bad(v, "region table entry: file offset",
				   eo + 16, "a multiple of 1 MiB, at least "
				   "1 MiB", fo);
		if (len == 0 || len % VHDX_MIB)
			return bad(v, "region table entry: length", eo + 24,
				   "a non-zero multiple of 1 MiB", len);
		/* Inside the file as it is, not as a replayed log would
		 * extend it: regions never move, and what is read into
		 * memory then stays bounded by the file's real size. */
		if (fo > v->file_size || len > v->file_size - fo)
			return vhd_err(EBADMSG, "'%s': region table entry %u "
				       "at offset %llu: the region at %llu (%u "
				       "bytes) must lie inside the file of %llu "
				       "bytes", v->path, i,
				       (unsigned long long)eo,
				       (unsigned long long)fo, len,
				       (unsigned long long)v->file_size);
		int isbat = memcmp(e, vhdx_guid_bat, 16) == 0;
		if ((isbat ? x->bat_off : x->meta_off) != 0)
			return vhd_err(EBADMSG, "'%s': region table entry %u "
				       "at offset %llu: a second %s region",
				       v->path, i, (unsigned long long)eo,
				       isbat ? "BAT" : "metadata");
		if (isbat) {
			x->bat_off = fo;
			x->bat_len = len;
		} else {
			x->meta_off = fo;
			x->meta_len = len;
		}
	}
	if (!x->bat_off || !x->meta_off)
		return vhd_err(EBADMSG, "'%s': region table at offset %llu: "
			       "expected a BAT and a metadata region, found "
			       "%s", v->path, (unsigned long long)off,
			       x->bat_off ? "no metadata region" :
			       "no BAT region");
	uint64_t a0 = x->bat_off, a1 = a0 + x->bat_len;
	uint64_t b0 = x->meta_off, b1 = b0 + x->meta_len;
	if (a0 < b1 && b0 < a1)
		return vhd_err(EBADMSG, "'%s': region table at offset %llu: "
			       "the BAT (%llu..%llu) and the metadata region "
			       "(%llu..%llu) overlap", v->path,
			       (unsigned long long)off, (unsigned long long)a0,
			       (unsigned long long)a1, (unsigned long long)b0,
			       (unsigned long long)b1);
	uint64_t l0 = x->log_off, l1 = l0 + x->log_len;
	if (x->log_len && ((a0 < l1 && l0 < a1) || (b0 < l1 && l0 < b1)))
		return vhd_err(EBADMSG, "'%s': region table at offset %llu: "
			       "the log (%llu..%llu) overlaps the %s region",
			       v->path, (unsigned long long)off,
			       (unsigned long long)l0, (unsigned long long)l1,
			       a0 < l1 && l0 < a1 ? "BAT" : "metadata");
	return 0;
}

/* The first region table, else (damaged) its copy. */
int
vhdx_read_regions(struct vhd *v, struct vhdx *x)
{
	uint8_t *t = malloc(65536);
	char first[1024];
	int r;

	if (!t)
		return vhd_err(ENOMEM, "no memory");
	if ((r = vhdx_file_read(v, t, 65536, VHDX_REGION1_OFF)) < 0)
		goto out;
	if ((r = region_table_check(v, x, t, VHDX_REGION1_OFF)) != -EBADMSG)
		goto out;
	snprintf(first, sizeof(first), "%s", vhd_errmsg());
	if ((r = vhdx_file_read(v, t, 65536, VHDX_REGION2_OFF)) < 0)
		goto out;
	if ((r = region_table_check(v, x, t, VHDX_REGION2_OFF)) == -EBADMSG) {
		char second[1024];
		snprintf(second, sizeof(second), "%s", vhd_errmsg());
		r = vhd_err(EBADMSG, "%s; and the copy: %s", first, second);
	}
out:
	free(t);
	return r;
}

/* ---- metadata ---- */

struct item {
	const uint8_t *guid;
	uint64_t off;           /* in the file */
	uint32_t len;
	int found;
};

static int
hexdig(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' &&
	       (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}" to its 16 bytes on disk. */
static int
parse_guid(const char *s, uint8_t g[16])
{
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t b[16];
	int k = 0;

	if (*s++ != '{')
		return -1;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (*s++ != '-')
				return -1;
			continue;
		}
		int h = hexdig(s[0]), l = h < 0 ? -1 : hexdig(s[1]);
		if (l < 0)
			return -1;
		b[k++] = (uint8_t)(h << 4 | l);
		s += 2;
		i++;
	}
	if (s[0] != '}' || s[1] != '\0')
		return -1;
	for (int i = 0; i < 16; i++)
		g[order[i]] = b[i];
	return 0;
}

static int
parent_locator(struct vhd *v, struct vhdx *x, const struct item *it,
	       const uint8_t *p)
{
	uint32_t n;

	if (it->len < 20)
		return bad(v, "metadata: parent locator: length", it->off,
			   "at least 20", it->len);
	if (memcmp(p, vhdx_guid_vhdx_locator, 16) != 0) {
		char g[39];
		vhdx_fmt_guid(g, p);
		return vhd_err(ENOTSUP, "'%s': metadata: parent locator at "
			       "offset %llu: locator type %s (only VHDX's "
			       "B04AEFB7-D19E-4A81-B789-25B8E9445913 is known)",
			       v->path, (unsigned long long)it->off, g);
	}
	n = get_le16(p + 18);
	if (20 + (uint64_t)n * 12 > it->len)
		return bad(v, "metadata: parent locator: key-value count",
			   it->off + 18, "entries inside the item", n);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + 20 + 12 * i;
		uint32_t ko = get_le32(e), vo = get_le32(e + 4);
		uint16_t kl = get_le16(e + 8), vl = get_le16(e + 10);
		char key[128], val[1024];
		if ((uint64_t)ko + kl > it->len || (uint64_t)vo + vl > it->len ||
		    kl == 0 || vl == 0 || kl % 2 || vl % 2)
			return bad(v, "metadata: parent locator entry: key or "
				   "value", it->off + 20 + 12 * i,
				   "a non-empty UTF-16 string inside the item",
				   i);
		if (vhd_utf16_to_utf8(p + ko, kl, 0, key, sizeof(key)) < 0 ||
		    vhd_utf16_to_utf8(p + vo, vl, 0, val, sizeof(val)) < 0)
			return bad(v, "metadata: parent locator entry: string",
				   it->off + 20 + 12 * i, "valid UTF-16", i);
		static const char *const keys[] = {
			"relative_path", "volume_path", "absolute_win32_path",
		};
		for (int k = 0; k < 3; k++)
			if (strcmp(key, keys[k]) == 0)
				snprintf(x->parent_path[k],
					 sizeof(x->parent_path[k]), "%s", val);
		/* MS-VHDX 2.6.2.6.3: the parent's DataWriteGuid must match
		 * one of the two (by key, whatever their order). */
		int l = strcmp(key, "parent_linkage") == 0 ? 0 :
			strcmp(key, "parent_linkage2") == 0 ? 1 : -1;
		if (l >= 0) {
			if (parse_guid(val, x->linkage[l]) < 0)
				return vhd_err(EBADMSG, "'%s': metadata: parent "
					       "locator entry %u at offset %llu: "
					       "%s: expected a GUID, found '%s'",
					       v->path, i, (unsigned long long)
					       (it->off + 20 + 12 * i), key,
					       val);
			x->has_linkage[l] = 1;
		}
	}
	if (!x->has_linkage[0])
		return vhd_err(EBADMSG, "'%s': metadata: parent locator at "
			       "offset %llu: no parent_linkage", v->path,
			       (unsigned long long)it->off);
	return 0;
}

int
vhdx_read_metadata(struct vhd *v, struct vhdx *x)
{
	struct item it[] = {
		{ vhdx_guid_file_params, 0, 0, 0 }, { vhdx_guid_disk_size, 0, 0, 0 },
		{ vhdx_guid_page83, 0, 0, 0 }, { vhdx_guid_lss, 0, 0, 0 },
		{ vhdx_guid_pss, 0, 0, 0 }, { vhdx_guid_parent_loc, 0, 0, 0 },
	};
	static const uint32_t want_len[] = { 8, 8, 16, 4, 4, 0 };
	static const char *const names[] = {
		"file parameters", "virtual disk size", "page 83 data",
		"logical sector size", "physical sector size", "parent locator",
	};
	uint8_t *t = malloc(x->meta_len);
	uint64_t mo = x->meta_off;
	int r = 0;

	if (!t)
		return vhd_err(ENOMEM, "no memory");
	if ((r = vhdx_file_read(v, t, x->meta_len, mo)) < 0)
		goto out;
	if (memcmp(t, "metadata", 8) != 0) {
		r = vhd_err(EBADMSG, "'%s': metadata table at offset %llu: "
			    "signature: expected 'metadata', found '%.8s'",
			    v->path, (unsigned long long)mo, (const char *)t);
		goto out;
	}
	uint16_t n = get_le16(t + 10);
	if (n > 2047) {
		r = bad(v, "metadata table: entry count", mo + 10,
			"at most 2047", n);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = t + 32 + 32 * i;
		uint64_t eo = mo + 32 + 32 * i;
		uint32_t io = get_le32(e + 16), il = get_le32(e + 20);
		int req = get_le32(e + 24) >> 2 & 1;
		size_t k;
		for (k = 0; k < sizeof(it) / sizeof(it[0]); k++)
			if (memcmp(e, it[k].guid, 16) == 0)
				break;
		if (k == sizeof(it) / sizeof(it[0])) {
			if (!req)
				continue;
			char g[39];
			vhdx_fmt_guid(g, e);
			r = vhd_err(ENOTSUP, "'%s': metadata entry %u at offset "
				    "%llu: unknown item %s is marked required",
				    v->path, i, (unsigned long long)eo, g);
			goto out;
		}
		if (it[k].found) {
			r = vhd_err(EBADMSG, "'%s': metadata entry %u at offset "
				    "%llu: a second %s item", v->path, i,
				    (unsigned long long)eo, names[k]);
			goto out;
		}
		if (io < 65536 || (uint64_t)io + il > x->meta_len ||
		    (want_len[k] && il != want_len[k]) || il == 0) {
			r = vhd_err(EBADMSG, "'%s': metadata entry %u (%s) at "
				    "offset %llu: expected %u bytes at an "
				    "offset of 64 KiB..%u in the region, found "
				    "%u bytes at %u", v->path, i, names[k],
				    (unsigned long long)eo, want_len[k],
				    x->meta_len, il, io);
			goto out;
		}
		it[k].off = mo + io;
		it[k].len = il;
		it[k].found = 1;
		if (k == 5) {
			x->loc_entry = 32 + 32 * i;
			x->loc_off = io;
			x->loc_len = il;
		}
	}
	for (int k = 0; k < 5; k++)
		if (!it[k].found) {
			r = vhd_err(EBADMSG, "'%s': metadata table at offset "
				    "%llu: the required %s item is missing",
				    v->path, (unsigned long long)mo, names[k]);
			goto out;
		}
	const uint8_t *fp = t + (it[0].off - mo);
	x->block_size = get_le32(fp);
	uint32_t fl = get_le32(fp + 4);
	x->leave_allocated = fl & 1;
	x->has_parent = fl >> 1 & 1;
	uint64_t size = get_le64(t + (it[1].off - mo));
	memcpy(x->disk_id, t + (it[2].off - mo), 16);
	x->lss = get_le32(t + (it[3].off - mo));
	x->pss = get_le32(t + (it[4].off - mo));
	uint32_t bs = x->block_size;
	if (bs < VHDX_MIB || bs > 256 * VHDX_MIB || (bs & (bs - 1))) {
		r = bad(v, "metadata: file parameters: block size", it[0].off,
			"a power of two from 1 MiB to 256 MiB", bs);
		goto out;
	}
	if (fl >> 2) {
		r = bad(v, "metadata: file parameters: reserved flags",
			it[0].off + 4, "bits 2-31 clear", fl);
		goto out;
	}
	if (x->lss != 512 && x->lss != 4096) {
		r = bad(v, "metadata: logical sector size", it[3].off,
			"512 or 4096", x->lss);
		goto out;
	}
	if (x->pss != 512 && x->pss != 4096) {
		r = bad(v, "metadata: physical sector size", it[4].off,
			"512 or 4096", x->pss);
		goto out;
	}
	if (size == 0 || size % x->lss || size > VHDX_MAX_SIZE) {
		r = bad(v, "metadata: virtual disk size", it[1].off,
			"a non-zero multiple of the logical sector size, at "
			"most 64 TiB", size);
		goto out;
	}
	v->size = size;
	if (x->has_parent && !it[5].found) {
		r = vhd_err(EBADMSG, "'%s': metadata: the file has a parent "
			    "(file parameters at %llu) but no parent locator",
			    v->path, (unsigned long long)it[0].off);
		goto out;
	}
	if (x->has_parent)
		r = parent_locator(v, x, &it[5], t + (it[5].off - mo));
out:
	free(t);
	return r;
}

/* ---- BAT ---- */

static int
cmp_u64(const void *a, const void *b)
{
	/* pairs (offset, length), ordered by offset */
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Is [off, off+len) clear of the first MiB, the log and the regions? */
static int
clear_of_meta(const struct vhdx *x, uint64_t off, uint64_t len)
{
	uint64_t s[3][2] = {
		{ x->log_off, x->log_off + x->log_len },
		{ x->bat_off, x->bat_off + x->bat_len },
		{ x->meta_off, x->meta_off + x->meta_len },
	};

	if (off < VHDX_MIB)
		return 0;
	for (int i = 0; i < 3; i++)
		if (s[i][0] < s[i][1] && off < s[i][1] && s[i][0] < off + len)
			return 0;
	return 1;
}

static int
check_entry(struct vhd *v, struct vhdx *x, uint64_t i, uint64_t *used,
	    size_t *nused)
{
	uint64_t e = x->bat[i], eo = x->bat_off + i * 8;
	unsigned st = BAT_STATE(e);
	int sb = (i % (x->chunk_ratio + 1)) == x->chunk_ratio;
	uint64_t blk = i - i / (x->chunk_ratio + 1), len = VHDX_MIB;

	if (sb ? (st != PB_NOT_PRESENT && st != SB_PRESENT) :
		 (st == 4 || st == 5 || (st == PB_PARTIALLY_PRESENT &&
					 !x->has_parent)))
		return vhd_err(EBADMSG, "'%s': BAT entry %llu at offset %llu: "
			       "state: expected %s, found %u", v->path,
			       (unsigned long long)i, (unsigned long long)eo,
			       sb ? "0 or 6 (sector bitmap)" :
			       x->has_parent ? "0, 1, 2, 3, 6 or 7" :
			       "0, 1, 2, 3 or 6", st);
	if (st != PB_FULLY_PRESENT && st != PB_PARTIALLY_PRESENT)
		return 0;
	/* Only the part of a block inside the disk must be in the file:
	 * QEMU ends a fixed image at the disk's end, inside its last block. */
	if (!sb) {
		if (blk >= x->blocks)
			return vhd_err(EBADMSG, "'%s': BAT entry %llu at offset "
				       "%llu: payload block %llu: expected "
				       "fewer than %llu", v->path,
				       (unsigned long long)i,
				       (unsigned long long)eo,
				       (unsigned long long)blk,
				       (unsigned long long)x->blocks);
		len = v->size - blk * x->block_size;
		if (len > x->block_size)
			len = x->block_size;
	}

	uint64_t off = BAT_OFF(e);
	if (off > x->eof || len > x->eof - off || !clear_of_meta(x, off, len))
		return vhd_err(EBADMSG, "'%s': BAT entry %llu at offset %llu: "
			       "the %s at %llu (%llu bytes) must lie inside the "
			       "file of %llu bytes, clear of the first MiB, "
			       "the log and the regions", v->path,
			       (unsigned long long)i, (unsigned long long)eo,
			       sb ? "sector bitmap" : "block",
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)x->eof);
	used[2 * *nused] = off;
	used[2 * *nused + 1] = len;
	(*nused)++;
	return 0;
}

int
vhdx_read_bat(struct vhd *v, struct vhdx *x)
{
	uint64_t cr = ((UINT64_C(1) << 23) * x->lss) / x->block_size;
	uint64_t *used = NULL;
	size_t nused = 0;
	int r;

	x->chunk_ratio = cr;
	x->blocks = (v->size + x->block_size - 1) / x->block_size;
	if (x->has_parent)
		x->bat_entries = (x->blocks + cr - 1) / cr * (cr + 1);
	else
		x->bat_entries = x->blocks + (x->blocks - 1) / cr;
	if (x->bat_entries * 8 > x->bat_len)
		return vhd_err(EBADMSG, "'%s': region table: BAT length: "
			       "expected at least %llu bytes (%llu entries for "
			       "%llu blocks), found %u", v->path,
			       (unsigned long long)x->bat_entries * 8,
			       (unsigned long long)x->bat_entries,
			       (unsigned long long)x->blocks, x->bat_len);
	x->bat = malloc(x->bat_entries * 8);
	if (!x->bat)
		return vhd_err(ENOMEM, "'%s': no memory for a BAT of %llu "
			       "entries", v->path,
			       (unsigned long long)x->bat_entries);
	if ((r = vhdx_file_read(v, x->bat, x->bat_entries * 8,
				x->bat_off)) < 0)
		return r;
	/* Room for the extents of the entries with data only: a sparse
	 * 64 TiB disk of 1 MiB blocks has 64 Mi entries. */
	size_t npresent = 1;
	for (uint64_t i = 0; i < x->bat_entries; i++) {
		x->bat[i] = get_le64((const uint8_t *)&x->bat[i]);
		npresent += BAT_STATE(x->bat[i]) == PB_FULLY_PRESENT ||
			    BAT_STATE(x->bat[i]) == PB_PARTIALLY_PRESENT;
	}
	if (!(used = malloc(npresent * 2 * sizeof(*used))))
		return vhd_err(ENOMEM, "'%s': no memory for %zu blocks",
			       v->path, npresent);
	for (uint64_t i = 0; i < x->bat_entries; i++)
		if ((r = check_entry(v, x, i, used, &nused)) < 0)
			goto out;
	/* No two blocks (or bitmaps) may share bytes. */
	qsort(used, nused, 2 * sizeof(*used), cmp_u64);
	for (size_t i = 1; i < nused; i++) {
		uint64_t p = used[2 * i - 2], plen = used[2 * i - 1];
		if (used[2 * i] < p + plen) {
			r = vhd_err(EBADMSG, "'%s': BAT: the data at %llu "
				    "overlaps the data at %llu (%llu bytes)",
				    v->path, (unsigned long long)used[2 * i],
				    (unsigned long long)p,
				    (unsigned long long)plen);
			goto out;
		}
	}
	r = 0;
out:
	free(used);
	return r;
}
