/*
 * io_win32.c - the Windows file backend, built instead of io_file.c on
 * Windows (mingw-w64).  Same contract as io_file.c: positioned reads and
 * writes (ReadFile/WriteFile with an OVERLAPPED offset on a synchronous
 * handle, so threads need no shared file pointer), FlushFileBuffers,
 * SetFilePointerEx + SetEndOfFile, FSCTL_SET_ZERO_DATA for punching and
 * LockFileEx for the lock modes.  Paths are UTF-8, converted to UTF-16
 * for the wide API.
 *
 * Locks: Windows byte-range locks are mandatory, so locking the whole file
 * would make other handles' reads fail (vhdtool info on an image being
 * served must work).  Like SQLite's lock byte, we lock one byte far beyond
 * any VHD (2 TiB at most): the lock then only meets other lockers, which
 * is flock()'s advisory behaviour.
 */
#define _CRT_RAND_S             /* rand_s() in stdlib.h */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>
#include <winioctl.h>
#include "internal.h"
#include "compat.h"

#define LOCK_BYTE UINT64_C(0x7FFFFFFFFFFFFFF0)
/* ReadFile/WriteFile take a DWORD count: transfer in pieces of this. */
#define IO_CHUNK (1u << 30)

struct io_win32 {
	struct vhd_io io;
	HANDLE h;
	int rdwr;
	char *path;
};

/* errno for the thread's last Windows error. */
static int
win_errno(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE:
	case ERROR_BAD_NETPATH:
		return ENOENT;
	case ERROR_FILE_EXISTS:
	case ERROR_ALREADY_EXISTS:
		return EEXIST;
	case ERROR_ACCESS_DENIED:
		return EACCES;
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
	case ERROR_BUSY:
		return EBUSY;
	case ERROR_WRITE_PROTECT:
		return EROFS;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return ENOSPC;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return ENOMEM;
	case ERROR_INVALID_PARAMETER:
	case ERROR_INVALID_NAME:
	case ERROR_NO_UNICODE_TRANSLATION:
		return EINVAL;
	case ERROR_FILENAME_EXCED_RANGE:
		return ENAMETOOLONG;
	case ERROR_NOT_SUPPORTED:
	case ERROR_INVALID_FUNCTION:
		return ENOTSUP;
	default:
		return EIO;
	}
}

/* A malloc'd UTF-16 copy of a UTF-8 string, or NULL (errno-style code in
 * *err). */
static wchar_t *
to_wide(const char *s, int *err)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1,
				    NULL, 0);
	wchar_t *w;

	if (n <= 0) {
		*err = EINVAL;          /* not UTF-8 */
		return NULL;
	}
	w = malloc((size_t)n * sizeof(*w));
	if (!w) {
		*err = ENOMEM;
		return NULL;
	}
	MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
	return w;
}

static char *
from_wide(const wchar_t *w)
{
	int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
	char *s;

	if (n <= 0 || !(s = malloc((size_t)n)))
		return NULL;
	WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
	return s;
}

static OVERLAPPED
at(uint64_t off)
{
	OVERLAPPED ov;

	memset(&ov, 0, sizeof(ov));
	ov.Offset = (DWORD)off;
	ov.OffsetHigh = (DWORD)(off >> 32);
	return ov;
}

static int
w_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct io_win32 *f = (struct io_win32 *)io;
	uint8_t *p = buf;

	while (n > 0) {
		DWORD want = n > IO_CHUNK ? IO_CHUNK : (DWORD)n, got = 0;
		OVERLAPPED ov = at(off);

		if (!ReadFile(f->h, p, want, &got, &ov)) {
			DWORD e = GetLastError();
			if (e == ERROR_HANDLE_EOF)
				return -EIO;    /* past the end: never silent */
			return -win_errno(e);
		}
		if (got == 0)
			return -EIO;
		p += got;
		n -= got;
		off += got;
	}
	return 0;
}

static int
w_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct io_win32 *f = (struct io_win32 *)io;
	const uint8_t *p = buf;

	while (n > 0) {
		DWORD want = n > IO_CHUNK ? IO_CHUNK : (DWORD)n, put = 0;
		OVERLAPPED ov = at(off);

		if (!WriteFile(f->h, p, want, &put, &ov))
			return -win_errno(GetLastError());
		if (put == 0)
			return -EIO;
		p += put;
		n -= put;
		off += put;
	}
	return 0;
}

static int
w_flush(struct vhd_io *io)
{
	struct io_win32 *f = (struct io_win32 *)io;

	/* A read-only handle has nothing to flush (and Windows refuses). */
	if (!f->rdwr)
		return 0;
	return FlushFileBuffers(f->h) ? 0 : -win_errno(GetLastError());
}

static int
w_get_size(struct vhd_io *io, uint64_t *size)
{
	struct io_win32 *f = (struct io_win32 *)io;
	LARGE_INTEGER sz;
	GET_LENGTH_INFORMATION li;
	DWORD got;

	if (GetFileSizeEx(f->h, &sz)) {
		*size = (uint64_t)sz.QuadPart;
		return 0;
	}
	/* A disk or volume (\\.\PhysicalDrive0) has no file size. */
	if (DeviceIoControl(f->h, IOCTL_DISK_GET_LENGTH_INFO, NULL, 0, &li,
			    sizeof(li), &got, NULL)) {
		*size = (uint64_t)li.Length.QuadPart;
		return 0;
	}
	return -win_errno(GetLastError());
}

/* Callers hold the image's exclusive lock; the file pointer is used by
 * nothing else (reads and writes carry their own offsets). */
static int
w_truncate(struct vhd_io *io, uint64_t size)
{
	struct io_win32 *f = (struct io_win32 *)io;
	LARGE_INTEGER pos;

	if (size > (uint64_t)INT64_MAX)
		return -EINVAL;
	pos.QuadPart = (LONGLONG)size;
	if (!SetFilePointerEx(f->h, pos, NULL, FILE_BEGIN) ||
	    !SetEndOfFile(f->h))
		return -win_errno(GetLastError());
	return 0;
}

/* FSCTL_SET_ZERO_DATA zeroes the range and, on a sparse file, frees it.
 * Where the file system cannot, the caller writes zeros instead. */
static int
w_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct io_win32 *f = (struct io_win32 *)io;
	FILE_ZERO_DATA_INFORMATION z;
	DWORD got;

	if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	z.FileOffset.QuadPart = (LONGLONG)off;
	z.BeyondFinalZero.QuadPart = (LONGLONG)(off + n);
	if (!DeviceIoControl(f->h, FSCTL_SET_ZERO_DATA, &z, sizeof(z), NULL,
			     0, &got, NULL))
		return -ENOTSUP;
	return 0;
}

static void
w_close(struct vhd_io *io)
{
	struct io_win32 *f = (struct io_win32 *)io;

	if (!f)
		return;
	CloseHandle(f->h);      /* releases the lock */
	free(f->path);
	free(f);
}

static const struct vhd_io_ops win32_ops = {
	.version = VHD_IO_OPS_VERSION,
	.pread = w_pread,
	.pwrite = w_pwrite,
	.flush = w_flush,
	.get_size = w_get_size,
	.truncate = w_truncate,
	.punch = w_punch,
	.close = w_close,
};

/* VHD_LOCK_READ shared, VHD_LOCK_WRITE exclusive; VHD_LOCK_PEEK shares
 * everything, so it takes no lock here (QEMU's byte protocol is POSIX
 * only).  Waits as io_file.c does (vhd_lock_wait, set by
 * vhd_set_lock_wait), without naming the holder. */
static int
take_lock(HANDLE h, int lock, const char *path)
{
	OVERLAPPED ov = at(LOCK_BYTE);
	DWORD fl = LOCKFILE_FAIL_IMMEDIATELY, waited = 0;
	const char *who;

	if (lock == VHD_LOCK_PEEK)
		return 0;
	if (lock == VHD_LOCK_WRITE)
		fl |= LOCKFILE_EXCLUSIVE_LOCK;
	who = lock == VHD_LOCK_WRITE ? "another program" : "a writer";
	for (;;) {
		DWORD le;
		if (LockFileEx(h, fl, 0, 1, 0, &ov))
			return 0;
		le = GetLastError();
		if (le != ERROR_LOCK_VIOLATION)
			return vhd_err(win_errno(le), "'%s': cannot lock: %s",
				       path, strerror(win_errno(le)));
		if (waited >= vhd_lock_wait.ms)
			return vhd_err_code(EBUSY, VHD_CODE_LOCKED,
					    "'%s': in use by %s", path, who);
		if (waited == VHD_LOCK_QUIET_MS && vhd_lock_wait.waiting) {
			vhd_err_code(EBUSY, VHD_CODE_LOCKED,
				     "'%s': in use by %s", path, who);
			vhd_lock_wait.waiting(vhd_lock_wait.arg, vhd_errmsg(),
					      vhd_lock_wait.ms);
		}
		Sleep(50);
		waited += 50;
	}
}

static int
file_open(const char *path, unsigned flags, int lock, struct vhd_io **out)
{
	struct io_win32 *f;
	DWORD access = GENERIC_READ, disp = OPEN_EXISTING;
	wchar_t *wpath;
	int e = 0, r;

	if (!out || !path)
		return vhd_err(EINVAL, "vhd_io_file_open: no path");
	if (flags & (VHD_IO_RDWR | VHD_IO_CREATE))
		access |= GENERIC_WRITE;
	if (flags & VHD_IO_CREATE)
		disp = CREATE_NEW;
	if (!(wpath = to_wide(path, &e)))
		return vhd_err(e, "'%s': %s", path, e == EINVAL ?
			       "file name is not UTF-8" : strerror(e));
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		free(wpath);
		return vhd_err(ENOMEM, "'%s': no memory", path);
	}
	/* Share everything, as POSIX does: locking is LockFileEx's job. */
	f->h = CreateFileW(wpath, access,
			   FILE_SHARE_READ | FILE_SHARE_WRITE |
			   FILE_SHARE_DELETE, NULL, disp,
			   FILE_ATTRIBUTE_NORMAL, NULL);
	free(wpath);
	if (f->h == INVALID_HANDLE_VALUE) {
		e = win_errno(GetLastError());
		free(f->path);
		free(f);
		return vhd_err(e, "'%s': %s", path, strerror(e));
	}
	f->rdwr = (access & GENERIC_WRITE) != 0;
	if (lock && (r = take_lock(f->h, lock, path)) < 0) {
		CloseHandle(f->h);
		free(f->path);
		free(f);
		return r;
	}
	f->io.ops = &win32_ops;
	f->io.name = f->path;
	*out = &f->io;
	return 0;
}

int
vhd_io_file_open(struct vhd_io **out, const char *path, unsigned flags)
{
	return file_open(path, flags, VHD_LOCK_NONE, out);
}

/* ---- The Win32 VFS ------------------------------------------------------ */

static int
w_open(struct vhd_vfs *vfs, const char *name, unsigned flags, int lock,
       struct vhd_io **out)
{
	(void)vfs;
	return file_open(name, flags, lock, out);
}

static int
w_lock(struct vhd_vfs *vfs, struct vhd_io *io, int lock)
{
	struct io_win32 *f = (struct io_win32 *)io;

	(void)vfs;
	if (!io || io->ops != &win32_ops)
		return vhd_err(EINVAL, "'%s': not a file of this VFS",
			       io && io->name ? io->name : "?");
	return lock ? take_lock(f->h, lock, f->path) : 0;
}

/* No write-through path here yet: the caller writes and flushes. */
int
vhd_io_file_pwrite_sync(struct vhd_io *io, const void *buf, size_t n,
			uint64_t off)
{
	(void)io;
	(void)buf;
	(void)n;
	(void)off;
	return -ENOTSUP;
}

/* Volume serial number and file index: what (st_dev, st_ino) are on
 * POSIX. */
static int
w_identity(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2])
{
	BY_HANDLE_FILE_INFORMATION bi;

	(void)vfs;
	if (!io || io->ops != &win32_ops)
		return 0;
	if (!GetFileInformationByHandle(((struct io_win32 *)io)->h, &bi))
		return -win_errno(GetLastError());
	id[0] = bi.dwVolumeSerialNumber;
	id[1] = (uint64_t)bi.nFileIndexHigh << 32 | bi.nFileIndexLow;
	return 1;
}

static int
w_unlink(struct vhd_vfs *vfs, const char *path)
{
	int e = 0;
	wchar_t *w = to_wide(path, &e);
	int r = 0;

	(void)vfs;
	if (!w)
		return -e;
	if (!DeleteFileW(w))
		r = -win_errno(GetLastError());
	free(w);
	return r;
}

static int
w_rename(struct vhd_vfs *vfs, const char *from, const char *to)
{
	int e = 0;
	wchar_t *wf = to_wide(from, &e), *wt = wf ? to_wide(to, &e) : NULL;
	int r = 0;

	(void)vfs;
	if (!wf || !wt) {
		free(wf);
		return -e;
	}
	if (!MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING |
			 MOVEFILE_WRITE_THROUGH))
		r = -win_errno(GetLastError());
	free(wf);
	free(wt);
	return r;
}

/* rand_s() draws from the system's RtlGenRandom. */
static int
w_random(struct vhd_vfs *vfs, void *buf, size_t n)
{
	uint8_t *p = buf;

	(void)vfs;
	while (n > 0) {
		unsigned int x;
		size_t k = n < sizeof(x) ? n : sizeof(x);

		if (rand_s(&x) != 0)
			return -EIO;
		memcpy(p, &x, k);
		p += k;
		n -= k;
	}
	return 0;
}

/* FILETIME counts 100 ns since 1601-01-01 UTC. */
#define FILETIME_UNIX_EPOCH INT64_C(116444736000000000)

static int
w_mtime(struct vhd_vfs *vfs, const char *path, int64_t *secs)
{
	WIN32_FILE_ATTRIBUTE_DATA ad;
	int64_t t;
	int e = 0;
	wchar_t *w = to_wide(path, &e);
	BOOL ok;

	(void)vfs;
	if (!w)
		return -e;
	ok = GetFileAttributesExW(w, GetFileExInfoStandard, &ad);
	free(w);
	if (!ok)
		return -win_errno(GetLastError());
	t = (int64_t)((uint64_t)ad.ftLastWriteTime.dwHighDateTime << 32 |
		      ad.ftLastWriteTime.dwLowDateTime);
	*secs = (t - FILETIME_UNIX_EPOCH) / 10000000;
	return 0;
}

static int
w_realpath(struct vhd_vfs *vfs, const char *name, char **out)
{
	(void)vfs;
	if (!(*out = vhd_compat_realpath(name, NULL)))
		return -errno;
	return 0;
}

static struct vhd_vfs win32_vfs = {
	.version = VHD_VFS_VERSION,
	.name = "win32",
	.open_name = w_open,
	.lock = w_lock,
	.identity = w_identity,
	.full_name = w_realpath,
	.mtime = w_mtime,
	.randomness = w_random,
	.rename_name = w_rename,
	.delete_name = w_unlink,
};

struct vhd_vfs *
vhd_vfs_platform(void)
{
	return &win32_vfs;
}

/* realpath() for locator.c (see compat.h): the full path of an existing
 * file, '\' turned into '/' as the locator code expects. */
char *
vhd_compat_realpath(const char *path, char *resolved)
{
	wchar_t *w, *full = NULL;
	char *res = NULL, *p;
	DWORD n;
	int e = 0;

	if (!(w = to_wide(path, &e))) {
		errno = e;
		return NULL;
	}
	if (GetFileAttributesW(w) == INVALID_FILE_ATTRIBUTES) {
		errno = win_errno(GetLastError());
		goto out;
	}
	n = GetFullPathNameW(w, 0, NULL, NULL);
	if (n == 0 || !(full = malloc((size_t)n * sizeof(*full))) ||
	    GetFullPathNameW(w, n, full, NULL) == 0) {
		errno = full ? win_errno(GetLastError()) : ENOMEM;
		goto out;
	}
	if (!(res = from_wide(full))) {
		errno = ENOMEM;
		goto out;
	}
	for (p = res; *p; p++)
		if (*p == '\\')
			*p = '/';
	if (resolved) {
		/* The caller's buffer is PATH_MAX bytes (POSIX). */
		if (strlen(res) >= PATH_MAX) {
			free(res);
			res = NULL;
			errno = ENAMETOOLONG;
			goto out;
		}
		strcpy(resolved, res);
		free(res);
		res = resolved;
	}
out:
	free(full);
	free(w);
	return res;
}
