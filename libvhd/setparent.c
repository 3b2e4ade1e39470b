/*
 * setparent.c - point a differencing disk at another parent
 * (vhd_set_parent), what Hyper-V's Set-VHD -ParentPath does.
 *
 * Crash safety: the new locator data goes to space nothing points at:
 * the room between the header and the BAT that vhd_create leaves beside
 * the current locators, or else fresh space at the end of the file (after
 * the last block and every other piece of metadata, with the trailing
 * footer moved behind it).  Only after a barrier is the header rewritten,
 * in one 1024-byte write that switches parent id, timestamp, name and
 * locators together.  A crash before the header write leaves the old
 * header pointing at the old, untouched locator data; a torn header write
 * is caught by the header checksum.  The current locators' space is never
 * rewritten in place: that could not be ordered safely.
 */
#include <stdlib.h>
#include "vhdx.h"

/* vhd_open_vfs with flags alone. */
static int
open_flags(struct vhd **out, struct vhd_vfs *vfs, const char *path,
	   unsigned flags)
{
	struct vhd_open_opts oo = { sizeof(oo), flags, NULL };

	return vhd_open_vfs(out, vfs, path, &oo);
}

int
vhd_reparent_open(struct vhd_reparent *rp, struct vhd_vfs *vfs,
		  const char *child, const char *new_parent, unsigned format)
{
	int r;

	memset(rp, 0, sizeof(*rp));
	r = open_flags(&rp->child, vfs, child, VHD_OPEN_RDWR | format |
		       VHD_OPEN_NO_PARENT);
	if (r < 0)
		return r;
	if (rp->child->type != VHD_TYPE_DIFF)
		return vhd_err(EINVAL, "'%s': not a differencing disk", child);
	r = open_flags(&rp->parent, vfs, new_parent, VHD_OPEN_RDONLY |
		       format | VHD_OPEN_NO_PARENT | VHD_OPEN_NOLOCK);
	if (r < 0)
		return r;
	if (vhd_vfs_same(vfs, rp->child->io, rp->parent->io))
		return vhd_err(EINVAL, "'%s': an image cannot be its own parent",
			       child);
	/* The child will record the parent's identity (VHD: unique id and
	 * time; VHDX: DataWriteGuid): no writer may change it meanwhile (a
	 * reader's lock, as create --parent takes). */
	return vhd_vfs_open(vfs, &rp->plock, new_parent, 0, VHD_LOCK_READ);
}

int
vhd_reparent_size(const struct vhd_reparent *rp, const char *child,
		  const char *new_parent, unsigned flags)
{
	/* A parent grown (or shrunk) after the child was made still opens,
	 * as it does for reads: the child reads the parent up to its own
	 * size, zeros past the parent's end.  Accepted when forced. */
	if (rp->parent->size != rp->child->size &&
	    !(flags & VHD_SET_PARENT_FORCE))
		return vhd_err_code(EINVAL, VHD_CODE_PARENT_SIZE,
			    "'%s' is %llu bytes but '%s' is %llu bytes: "
			    "a parent should have the child's size", new_parent,
			    (unsigned long long)rp->parent->size, child,
			    (unsigned long long)rp->child->size);
	return 0;
}

/* Would making new_parent the parent of the child close a loop?  Checked
 * on the new parent's own chain when it opens; a chain that does not open
 * (its own parent missing, say) cannot contain the child through a valid
 * link. */
int
vhd_reparent_loop(const struct vhd_reparent *rp, const char *child,
		  const char *new_parent, unsigned format)
{
	struct vhd *c = rp->child, *chain, *v;
	int loop = 0;

	if (open_flags(&chain, c->vfs, new_parent, VHD_OPEN_RDONLY | format |
		       VHD_OPEN_NOLOCK) < 0)
		return 0;
	for (v = chain; v; v = v->parent)
		if (vhd_vfs_same(c->vfs, v->io, c->io))
			loop = 1;
	vhd_close(chain);
	if (loop)
		return vhd_err_code(EINVAL, VHD_CODE_CHAIN_LOOP,
			    "'%s' descends from '%s': the chain would loop",
			    new_parent, child);
	return 0;
}

void
vhd_reparent_close(struct vhd_reparent *rp)
{
	if (rp->plock)
		rp->plock->ops->close(rp->plock);
	vhd_close(rp->parent);
	vhd_close(rp->child);
	memset(rp, 0, sizeof(*rp));
}

/* The parent's modification time in VHD seconds (what blktap records;
 * the specification: "the modification time stamp of the parent"). */
static uint32_t
parent_mtime(struct vhd_vfs *vfs, const char *path)
{
	uint32_t t = vhd_vfs_mtime(vfs, path);

	return t ? t : vhd_time_now();
}

/* 1 if the file at path holds a VHDX (its identifier), 0 if not. */
static int
is_vhdx(struct vhd_vfs *vfs, const char *path)
{
	struct vhd_io *io;
	uint64_t fs;
	int r;

	if ((r = vhd_vfs_open(vfs, &io, path, 0, VHD_LOCK_NONE)) < 0)
		return r;
	if ((r = io->ops->get_size(io, &fs)) == 0)
		r = vhd_drv_vhdx.probe(io, fs);
	io->ops->close(io);
	if (r < 0)
		return vhd_err(-r, "'%s': cannot read: %s", path, strerror(-r));
	return r == 1;
}

int
vhd_set_parent(const char *child, const char *new_parent, unsigned flags)
{
	return vhd_set_parent_vfs(NULL, child, new_parent, flags);
}

int
vhd_set_parent_vfs(struct vhd_vfs *vfs, const char *child,
		   const char *new_parent, unsigned flags)
{
	struct vhd_reparent rp;
	struct vhd *v, *p;
	uint8_t hdr[1024], *blob = NULL;
	size_t blob_len = 0;
	uint64_t data_off, room = 0;
	uint32_t pts;
	int r;

	if (child == NULL || new_parent == NULL ||
	    (flags & ~VHD_SET_PARENT_FORCE))
		return vhd_err(EINVAL, "vhd_set_parent: bad arguments");
	if ((r = vhd_vfs_use(&vfs, "vhd_set_parent_vfs")) < 0)
		return r;
	/* A VHDX child: its locator is rewritten through its log. */
	if ((r = is_vhdx(vfs, child)) < 0)
		return r;
	if (r)
		return vhdx_set_parent(vfs, child, new_parent, flags);
	r = vhd_reparent_open(&rp, vfs, child, new_parent,
			      VHD_OPEN_FORMAT_VHD);
	v = rp.child;
	p = rp.parent;
	if (r < 0 ||
	    (r = vhd_reparent_size(&rp, child, new_parent, flags)) < 0)
		goto out;
	if (memcmp(p->ft.uuid, v->hdr.parent_id, 16) != 0 &&
	    !(flags & VHD_SET_PARENT_FORCE)) {
		r = vhd_err_code(EINVAL, VHD_CODE_PARENT_MISMATCH,
			    "'%s' is not the parent '%s' was made "
			    "from: its unique id differs", new_parent, child);
		goto out;
	}
	if ((r = vhd_reparent_loop(&rp, child, new_parent,
				   VHD_OPEN_FORMAT_VHD)) < 0)
		goto out;

	/* New locator data: before the BAT if there is room, else past every
	 * block and piece of metadata and past the current trailing footer
	 * (which it may overwrite once the new footer is in place behind it). */
	data_off = align_up(v->next_free > v->footer_off ? v->next_free :
			    v->footer_off, 512);
	memcpy(hdr, v->header_raw, 1024);
	r = vhd_locators_build_vfs(vfs, child, new_parent, hdr, data_off,
				   &blob, &blob_len);
	if (r == 0) {
		/* Appended, the data and the footer behind it keep clear of
		 * metadata past the end of the file, as blocks do. */
		uint64_t at = room = vhd_layout_room_before_bat(v, blob_len);
		if (!room)
			at = vhd_layout_place(v, data_off, blob_len + 512, 0);
		if (at != data_off) {
			free(blob);
			blob = NULL;
			data_off = at;
			r = vhd_locators_build_vfs(vfs, child, new_parent,
						   hdr, data_off, &blob,
						   &blob_len);
		}
	}
	if (r < 0) {
		r = vhd_err(-r, "'%s': cannot record the parent path '%s'",
			    child, new_parent);
		goto out;
	}
	pts = parent_mtime(vfs, new_parent);

	/* 1. the footer behind the new data (when appending), then the data
	 * (over the old footer's place), 2. barrier, 3. the header,
	 * 4. barrier. */
	if (!room && (r = vhd_layout_grow(v, data_off + blob_len)) < 0)
		goto out;
	r = v->io->ops->pwrite(v->io, blob, blob_len, data_off);
	if (r < 0) {
		r = vhd_err(-r, "'%s': cannot write the parent locators", child);
		goto out;
	}
	r = v->io->ops->flush(v->io);
	if (r < 0) {
		r = vhd_err(-r, "'%s': cannot sync", child);
		goto out;
	}
	/* The new name and locators (hdr), the new parent's id and time. */
	memcpy(v->header_raw, hdr, 1024);
	memcpy(v->hdr.parent_id, p->ft.uuid, 16);
	v->hdr.parent_ts = pts;
	r = vhd_write_header(v);
	if (r < 0)
		goto out;
	r = v->io->ops->flush(v->io);
	if (r < 0)
		r = vhd_err(-r, "'%s': cannot sync", child);
out:
	free(blob);
	vhd_reparent_close(&rp);
	return r;
}
