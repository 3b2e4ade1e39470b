/* vhdx_parent.c - rewriting a differencing VHDX's parent locator
 * (MS-VHDX 2.6.2.6.3): vhd_set_parent on a VHDX child, and the
 * parent_linkage2 that makes an interrupted VHDX merge resumable.
 *
 * The locator item is rewritten through the child's log (vhdx_write.c,
 * vhdx_write_locator): one log entry holds the metadata table's sector
 * and the item's sectors, so a crash at any write leaves the old locator
 * (the entry not durable) or the new one (the next open replays it).
 * The header update of that session changes FileWriteGuid and LogGuid,
 * never DataWriteGuid: the disk's content is unchanged, and the images
 * whose parent this child is keep opening against it. */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"
#include "locator.h"

/* vhd_open_vfs with flags alone. */
static int
open_flags(struct vhd **out, struct vhd_vfs *vfs, const char *path,
	   unsigned flags)
{
	struct vhd_open_opts oo = { sizeof(oo), flags, NULL };

	return vhd_open_vfs(out, vfs, path, &oo);
}

/* A key/value pair of the locator: key in UTF-8, value in UTF-16LE. */
struct kv {
	const char *key;
	const uint8_t *val;
	size_t len;
};

/* "{xxxxxxxx-...}" of a GUID in UTF-16LE, lower case as Hyper-V writes
 * it (libvhdi reads no other).  Returns its length in bytes. */
static size_t
guid_utf16(uint8_t out[80], const uint8_t g[16])
{
	char s[39];

	vhdx_fmt_guid(s, g);
	for (char *q = s; *q; q++)
		if (*q >= 'A' && *q <= 'F')
			*q = (char)(*q - 'A' + 'a');
	return (size_t)vhd_utf8_to_utf16(s, 0, out, 80);
}

/* The locator item of n pairs (malloc'd into *out). */
static int
build_item(const char *name, const struct kv *kv, int n, uint8_t **out,
	   uint32_t *len)
{
	size_t total = 20 + 12 * (size_t)n, pos;
	uint8_t *p;

	for (int i = 0; i < n; i++) {
		if (kv[i].len == 0 || kv[i].len > 65534)
			return vhd_err(ENAMETOOLONG, "'%s': locator value of %s "
				       "(%zu bytes): expected 2..65534 bytes",
				       name, kv[i].key, kv[i].len);
		total += 2 * strlen(kv[i].key) + kv[i].len;
	}
	if (!(p = calloc(1, total)))
		return vhd_err(ENOMEM, "no memory");
	memcpy(p, vhdx_guid_vhdx_locator, 16);
	put_le16(p + 18, (uint16_t)n);
	pos = 20 + 12 * (size_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = p + 20 + 12 * i;
		int kl = vhd_utf8_to_utf16(kv[i].key, 0, p + pos, total - pos);
		put_le32(e, (uint32_t)pos);
		put_le16(e + 8, (uint16_t)kl);
		pos += (size_t)kl;
		memcpy(p + pos, kv[i].val, kv[i].len);
		put_le32(e + 4, (uint32_t)pos);
		put_le16(e + 10, (uint16_t)kv[i].len);
		pos += kv[i].len;
	}
	*out = p;
	*len = (uint32_t)pos;
	return 0;
}

/* Would new_parent's chain contain the child? */
static int
makes_loop(struct vhd *child, const char *new_parent)
{
	struct vhd *chain, *v;
	int loop = 0;

	if (open_flags(&chain, child->vfs, new_parent, VHD_OPEN_RDONLY |
		       VHD_OPEN_FORMAT_VHDX | VHD_OPEN_NOLOCK) < 0)
		return 0;
	for (v = chain; v; v = v->parent)
		if (vhd_vfs_same(child->vfs, v->io, child->io))
			loop = 1;
	vhd_close(chain);
	return loop;
}

int
vhdx_set_parent(struct vhd_vfs *vfs, const char *child,
		const char *new_parent, unsigned flags)
{
	struct vhd *v = NULL, *p = NULL;
	struct vhd_io *plock = NULL;
	struct vhdx *x, *px;
	uint8_t hdr[1024], *blob = NULL, *item = NULL, g[80];
	size_t blob_len = 0;
	uint32_t len;
	struct vhd_locator la, lr;
	int r;

	r = open_flags(&v, vfs, child, VHD_OPEN_RDWR | VHD_OPEN_FORMAT_VHDX |
		       VHD_OPEN_NO_PARENT);
	if (r < 0)
		return r;
	x = v->fmt;
	if (v->type != VHD_TYPE_DIFF) {
		r = vhd_err(EINVAL, "'%s': not a differencing disk", child);
		goto out;
	}
	r = open_flags(&p, vfs, new_parent, VHD_OPEN_RDONLY |
		       VHD_OPEN_FORMAT_VHDX | VHD_OPEN_NO_PARENT |
		       VHD_OPEN_NOLOCK);
	if (r < 0)
		goto out;
	px = p->fmt;
	if (vhd_vfs_same(vfs, v->io, p->io)) {
		r = vhd_err(EINVAL, "'%s': an image cannot be its own parent",
			    child);
		goto out;
	}
	/* The child records the parent's DataWriteGuid: no writer may
	 * change it meanwhile. */
	if ((r = vhd_vfs_open(vfs, &plock, new_parent, 0, VHD_LOCK_READ)) < 0)
		goto out;
	if (px->lss != x->lss) {
		r = vhd_err(EINVAL, "'%s' has %u-byte logical sectors but '%s' "
			    "has %u-byte ones: a parent has its child's",
			    new_parent, px->lss, child, x->lss);
		goto out;
	}
	if (p->size != v->size && !(flags & VHD_SET_PARENT_FORCE)) {
		r = vhd_err_code(EINVAL, VHD_CODE_PARENT_SIZE,
			    "'%s' is %llu bytes but '%s' is %llu bytes: "
			    "a parent should have the child's size", new_parent,
			    (unsigned long long)p->size, child,
			    (unsigned long long)v->size);
		goto out;
	}
	if (!(flags & VHD_SET_PARENT_FORCE) &&
	    memcmp(px->data_guid, x->linkage[0], 16) != 0 &&
	    !(x->has_linkage[1] &&
	      memcmp(px->data_guid, x->linkage[1], 16) == 0)) {
		char want[39], got[39];
		vhdx_fmt_guid(want, x->linkage[0]);
		vhdx_fmt_guid(got, px->data_guid);
		r = vhd_err_code(EINVAL, VHD_CODE_PARENT_MISMATCH,
			    "'%s' is not the parent '%s' was made from: its "
			    "DataWriteGuid is %s, the child's parent_linkage "
			    "%s", new_parent, child, got, want);
		goto out;
	}
	if (makes_loop(v, new_parent)) {
		r = vhd_err_code(EINVAL, VHD_CODE_CHAIN_LOOP,
			    "'%s' descends from '%s': the chain would loop",
			    new_parent, child);
		goto out;
	}
	/* The relative and absolute paths as VHD's W2ru and W2ku would hold
	 * them (UTF-16LE, '\' separators), as vhdx_create writes them. */
	memset(hdr, 0, sizeof(hdr));
	r = vhd_locators_build_vfs(vfs, child, new_parent, hdr, 0, &blob,
				   &blob_len);
	if (r < 0) {
		r = vhd_err(-r, "'%s': cannot record the parent path '%s': %s",
			    child, new_parent, strerror(-r));
		goto out;
	}
	vhd_locator_decode(hdr + 576, &la);       /* W2ku */
	vhd_locator_decode(hdr + 600, &lr);       /* W2ru */
	if (la.offset + la.length > blob_len ||
	    lr.offset + lr.length > blob_len) {
		r = vhd_err(EINVAL, "'%s': cannot record the parent path '%s'",
			    child, new_parent);
		goto out;
	}
	for (uint32_t i = 0; i + 1 < la.length; i += 2)
		if (blob[la.offset + i] == '/' && blob[la.offset + i + 1] == 0)
			blob[la.offset + i] = '\\';
	{
		struct kv kv[3] = {
			{ "parent_linkage", g, guid_utf16(g, px->data_guid) },
			{ "relative_path", blob + lr.offset, lr.length },
			{ "absolute_win32_path", blob + la.offset, la.length },
		};
		if ((r = build_item(child, kv, 3, &item, &len)) < 0)
			goto out;
	}
	if ((r = vhdx_write_locator(v, x, item, len)) < 0)
		goto out;
	/* The clean close: the session's end is part of the change. */
	r = vhdx_rdwr_close(v, x);
out:
	free(item);
	free(blob);
	if (plock)
		plock->ops->close(plock);
	vhd_close(p);
	vhd_close(v);
	return r;
}

int
vhdx_merge_prepare(struct vhd *above, struct vhd *target)
{
	struct vhdx *ax = above->fmt, *tx = target->fmt;
	static const char *const keys[3] = {
		"relative_path", "volume_path", "absolute_win32_path",
	};
	uint8_t g[16], g1[80], g2[80], *item = NULL, *path[3] = { 0 };
	struct kv kv[5];
	uint32_t len;
	int n = 0, r = 0;

	/* The new GUID goes in parent_linkage, the target's current one in
	 * parent_linkage2: once the merge is through, the image above links
	 * to the target by parent_linkage, the one key every reader checks
	 * (7-Zip reads no other).  A merge run before wrote both and chose
	 * parent_linkage: take it again (the target may hold it already;
	 * nothing else links to it). */
	if (ax->has_linkage[1] &&
	    (memcmp(tx->data_guid, ax->linkage[0], 16) == 0 ||
	     memcmp(tx->data_guid, ax->linkage[1], 16) == 0)) {
		memcpy(tx->next_data_guid, ax->linkage[0], 16);
		tx->has_next_data_guid = 1;
		return 0;
	}
	if ((r = vhdx_new_guid(g)) < 0)
		return r;
	kv[n++] = (struct kv){ "parent_linkage", g1, guid_utf16(g1, g) };
	kv[n++] = (struct kv){ "parent_linkage2", g2,
			       guid_utf16(g2, tx->data_guid) };
	for (int k = 0; k < 3; k++) {
		size_t cap = 2 * strlen(ax->parent_path[k]) + 2;
		int l;
		if (!ax->parent_path[k][0])
			continue;
		if (!(path[k] = malloc(cap))) {
			r = vhd_err(ENOMEM, "no memory");
			goto out;
		}
		if ((l = vhd_utf8_to_utf16(ax->parent_path[k], 0, path[k],
					   cap)) < 0) {
			r = vhd_err(-l, "'%s': parent path '%s': %s",
				    above->path, ax->parent_path[k],
				    strerror(-l));
			goto out;
		}
		kv[n++] = (struct kv){ keys[k], path[k], (size_t)l };
	}
	if ((r = build_item(above->path, kv, n, &item, &len)) < 0 ||
	    (r = vhdx_write_locator(above, ax, item, len)) < 0 ||
	    (r = vhdx_rdwr_close(above, ax)) < 0)
		goto out;
	memcpy(ax->linkage[1], tx->data_guid, 16);
	memcpy(ax->linkage[0], g, 16);
	ax->has_linkage[1] = 1;
	memcpy(tx->next_data_guid, g, 16);
	tx->has_next_data_guid = 1;
out:
	for (int k = 0; k < 3; k++)
		free(path[k]);
	free(item);
	return r;
}
