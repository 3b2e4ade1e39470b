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

/* Lower case, as Hyper-V writes it (libvhdi reads no other). */
size_t
vhdx_guid_utf16(uint8_t out[80], const uint8_t g[16])
{
	char s[39];

	vhdx_fmt_guid(s, g);
	for (char *q = s; *q; q++)
		if (*q >= 'A' && *q <= 'F')
			*q = (char)(*q - 'A' + 'a');
	return (size_t)vhd_utf8_to_utf16(s, 0, out, 80);
}

int
vhdx_locator_item(const char *name, const struct vhdx_kv *kv, int n,
		  uint8_t **out, uint32_t *len)
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

int
vhdx_parent_kv(struct vhd_vfs *vfs, const char *child_path,
	       const char *name, const char *parent_path,
	       const uint8_t data_guid[16], uint8_t g[80], uint8_t **blob,
	       struct vhdx_kv kv[3])
{
	uint8_t hdr[1024];
	size_t blob_len = 0;
	struct vhd_locator la, lr;
	int r;

	/* The relative and absolute paths as VHD's W2ru and W2ku would hold
	 * them (UTF-16LE). */
	*blob = NULL;
	memset(hdr, 0, sizeof(hdr));
	r = vhd_locators_build_vfs(vfs, child_path, parent_path, hdr, 0, blob,
				   &blob_len);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot record the parent path '%s': "
			       "%s", name, parent_path, strerror(-r));
	vhd_locator_decode(hdr + 576, &la);       /* W2ku */
	vhd_locator_decode(hdr + 600, &lr);       /* W2ru */
	if (la.offset + la.length > blob_len ||
	    lr.offset + lr.length > blob_len)
		return vhd_err(EINVAL, "'%s': cannot record the parent path "
			       "'%s'", name, parent_path);
	/* absolute_win32_path with Windows separators: a path rooted on the
	 * current drive ("\dir\p.vhdx"); readers that cannot use it take
	 * its last component next to the child (libvhdi does). */
	for (uint32_t i = 0; i + 1 < la.length; i += 2)
		if ((*blob)[la.offset + i] == '/' &&
		    (*blob)[la.offset + i + 1] == 0)
			(*blob)[la.offset + i] = '\\';
	kv[0] = (struct vhdx_kv){ "parent_linkage", g,
				  vhdx_guid_utf16(g, data_guid) };
	kv[1] = (struct vhdx_kv){ "relative_path", *blob + lr.offset,
				  lr.length };
	kv[2] = (struct vhdx_kv){ "absolute_win32_path", *blob + la.offset,
				  la.length };
	return 0;
}

int
vhdx_set_parent(struct vhd_vfs *vfs, const char *child,
		const char *new_parent, unsigned flags)
{
	struct vhd_reparent rp;
	struct vhd *v, *p;
	struct vhdx *x, *px;
	uint8_t *blob = NULL, *item = NULL, g[80];
	struct vhdx_kv kv[3];
	uint32_t len;
	int r;

	r = vhd_reparent_open(&rp, vfs, child, new_parent,
			      VHD_OPEN_FORMAT_VHDX);
	if (r < 0)
		goto out;
	v = rp.child;
	p = rp.parent;
	x = v->fmt;
	px = p->fmt;
	if (px->lss != x->lss) {
		r = vhd_err(EINVAL, "'%s' has %u-byte logical sectors but '%s' "
			    "has %u-byte ones: a parent has its child's",
			    new_parent, px->lss, child, x->lss);
		goto out;
	}
	if ((r = vhd_reparent_size(&rp, child, new_parent, flags)) < 0)
		goto out;
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
	if ((r = vhd_reparent_loop(&rp, child, new_parent,
				   VHD_OPEN_FORMAT_VHDX)) < 0 ||
	    (r = vhdx_parent_kv(vfs, child, child, new_parent, px->data_guid,
				g, &blob, kv)) < 0 ||
	    (r = vhdx_locator_item(child, kv, 3, &item, &len)) < 0)
		goto out;
	if ((r = vhdx_write_locator(v, x, item, len)) < 0)
		goto out;
	/* The clean close: the session's end is part of the change. */
	r = vhdx_rdwr_close(v, x);
out:
	free(item);
	free(blob);
	vhd_reparent_close(&rp);
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
	struct vhdx_kv kv[5];
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
	kv[n++] = (struct vhdx_kv){ "parent_linkage", g1, vhdx_guid_utf16(g1, g) };
	kv[n++] = (struct vhdx_kv){ "parent_linkage2", g2,
			       vhdx_guid_utf16(g2, tx->data_guid) };
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
		kv[n++] = (struct vhdx_kv){ keys[k], path[k], (size_t)l };
	}
	if ((r = vhdx_locator_item(above->path, kv, n, &item, &len)) < 0 ||
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
