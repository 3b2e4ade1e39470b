/*
 * vfs.c - the storage layer every name goes through (struct vhd_vfs in
 * vhd.h, in the manner of SQLite's sqlite3_vfs): the default VFS, the
 * check of a caller's VFS, and the library's calls into a VFS, which add
 * a message naming the file where the VFS left none.
 *
 * The implementations: io_file.c (POSIX) or io_win32.c (Windows), the
 * platform's VFS; io_mem.c, an in-memory namespace.
 */
#include <stdatomic.h>
#include <stdio.h>
#include "internal.h"

static _Atomic(struct vhd_vfs *) default_vfs;

static int
vfs_check(const struct vhd_vfs *vfs, const char *fn)
{
	if (vfs->version != VHD_VFS_VERSION)
		return vhd_err(EINVAL, "%s: VFS '%s': version %u is not one "
			       "libvhd %s knows (%u)", fn,
			       vfs->name ? vfs->name : "?", vfs->version,
			       VHD_VERSION_STRING, VHD_VFS_VERSION);
	if (!vfs->open_name || !vfs->lock || !vfs->identity ||
	    !vfs->full_name || !vfs->mtime || !vfs->randomness ||
	    !vfs->rename_name || !vfs->delete_name)
		return vhd_err(EINVAL, "%s: VFS '%s' lacks a required member",
			       fn, vfs->name ? vfs->name : "?");
	return 0;
}

struct vhd_vfs *
vhd_vfs_default(void)
{
	struct vhd_vfs *v = atomic_load(&default_vfs);

	return v ? v : vhd_vfs_platform();
}

int
vhd_vfs_set_default(struct vhd_vfs *vfs)
{
	int r;

	if (vfs && (r = vfs_check(vfs, "vhd_vfs_set_default")) < 0)
		return r;
	atomic_store(&default_vfs, vfs);
	return 0;
}

int
vhd_vfs_use(struct vhd_vfs **vfs, const char *fn)
{
	if (!*vfs) {
		*vfs = vhd_vfs_default();
		return 0;
	}
	return vfs_check(*vfs, fn);
}

/* A VFS member's failure r: its own message if it left one, else one
 * naming the file. */
static int
fail(int r, const char *name, const char *what)
{
	if (vhd_err_is_set())
		return r;
	if (what)
		return vhd_err(-r, "'%s': cannot %s: %s", name, what,
			       strerror(-r));
	return vhd_err(-r, "'%s': %s", name, strerror(-r));
}

int
vhd_vfs_open(struct vhd_vfs *vfs, struct vhd_io **out, const char *name,
	     unsigned flags, int lock)
{
	int r;

	if (!vfs)
		vfs = vhd_vfs_default();
	if (!out || !name)
		return vhd_err(EINVAL, "vhd_vfs_open: no name");
	vhd_err_clear();
	if ((r = vfs->open_name(vfs, name, flags, lock, out)) < 0)
		return fail(r, name, NULL);
	if ((r = vhd_io_check(*out, "vhd_vfs_open")) < 0) {
		/* A VFS whose files we cannot use: close what it gave. */
		if (*out && (*out)->ops && (*out)->ops->close)
			(*out)->ops->close(*out);
		*out = NULL;
		return r;
	}
	return 0;
}

int
vhd_vfs_lock(struct vhd_vfs *vfs, struct vhd_io *io, int lock)
{
	int r;

	if (!vfs)
		vfs = vhd_vfs_default();
	if (lock == VHD_LOCK_NONE)
		return 0;
	vhd_err_clear();
	if ((r = vfs->lock(vfs, io, lock)) < 0)
		return fail(r, io->name ? io->name : "image", "lock");
	return 0;
}

int
vhd_vfs_identity(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2])
{
	if (!vfs)
		vfs = vhd_vfs_default();
	return vfs->identity(vfs, io, id) == 1;
}

int
vhd_vfs_same(struct vhd_vfs *vfs, struct vhd_io *a, struct vhd_io *b)
{
	uint64_t x[2], y[2];

	return vhd_vfs_identity(vfs, a, x) && vhd_vfs_identity(vfs, b, y) &&
	       x[0] == y[0] && x[1] == y[1];
}

int
vhd_vfs_realpath(struct vhd_vfs *vfs, const char *name, char **out)
{
	if (!vfs)
		vfs = vhd_vfs_default();
	*out = NULL;
	return vfs->full_name(vfs, name, out);
}

uint32_t
vhd_vfs_mtime(struct vhd_vfs *vfs, const char *name)
{
	int64_t t;

	if (!vfs)
		vfs = vhd_vfs_default();
	if (vfs->mtime(vfs, name, &t) < 0)
		return 0;
	return vhd_time_from_unix(t);
}

int
vhd_vfs_random(struct vhd_vfs *vfs, void *buf, size_t n)
{
	if (!vfs)
		vfs = vhd_vfs_default();
	return vfs->randomness(vfs, buf, n);
}

int
vhd_vfs_unlink(struct vhd_vfs *vfs, const char *name)
{
	if (!vfs)
		vfs = vhd_vfs_default();
	return vfs->delete_name(vfs, name);
}

int
vhd_vfs_rename(struct vhd_vfs *vfs, const char *from, const char *to)
{
	if (!vfs)
		vfs = vhd_vfs_default();
	return vfs->rename_name(vfs, from, to);
}

/* Random bytes from the default VFS (unique ids of the calls that take
 * no VFS). */
int
vhd_random_bytes(uint8_t *buf, size_t n)
{
	return vhd_vfs_random(NULL, buf, n);
}
