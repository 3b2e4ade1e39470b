/* io_file.c - the POSIX file backend: pread/pwrite loops, fdatasync,
 * hole punching and advisory locking with flock(). */
/* 64-bit off_t on 32-bit glibc: without it pread/pwrite/ftruncate take a
 * 32-bit offset and every image or offset past 2 GiB breaks. */
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

struct io_file {
	struct vhd_io io;
	int fd;
	char *path;
};

static int
f_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct io_file *f = (struct io_file *)io;
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = pread(f->fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;   /* past the end: never silent */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int
f_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct io_file *f = (struct io_file *)io;
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = pwrite(f->fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;   /* no progress: never loop forever */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int
f_flush(struct vhd_io *io)
{
	struct io_file *f = (struct io_file *)io;

	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int
f_get_size(struct vhd_io *io, uint64_t *size)
{
	struct io_file *f = (struct io_file *)io;
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
f_truncate(struct vhd_io *io, uint64_t size)
{
	struct io_file *f = (struct io_file *)io;

	return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
}

static int
f_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
#ifdef FALLOC_FL_PUNCH_HOLE
	struct io_file *f = (struct io_file *)io;

	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)n) < 0)
		return -errno;
	return 0;
#else
	(void)io; (void)off; (void)n;
	return -ENOTSUP;
#endif
}

static void
f_close(struct vhd_io *io)
{
	struct io_file *f = (struct io_file *)io;

	if (!f)
		return;
	close(f->fd);   /* releases the flock */
	free(f->path);
	free(f);
}

static const struct vhd_io_ops file_ops = {
	.version = VHD_IO_OPS_VERSION,
	.pread = f_pread,
	.pwrite = f_pwrite,
	.flush = f_flush,
	.get_size = f_get_size,
	.truncate = f_truncate,
	.punch = f_punch,
	.close = f_close,
};

int
vhd_io_file_open2(struct vhd_io **out, const char *path, unsigned flags,
		  int lock)
{
	int oflags = O_CLOEXEC;
	struct io_file *f;

	if (!out || !path)
		return vhd_err(EINVAL, "vhd_io_file_open: no path");
	oflags |= (flags & VHD_IO_RDWR) ? O_RDWR : O_RDONLY;
	if (flags & VHD_IO_CREATE)
		oflags |= O_RDWR | O_CREAT | O_EXCL;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return vhd_err(ENOMEM, "'%s': no memory", path);
	}
	f->fd = open(path, oflags, 0644);
	if (f->fd < 0) {
		int e = errno;
		free(f->path);
		free(f);
		return vhd_err(e, "'%s': %s", path, strerror(e));
	}
	if (lock) {
		int op = (lock == 2 ? LOCK_EX : LOCK_SH) | LOCK_NB;
		if (flock(f->fd, op) < 0) {
			int e = errno;
			close(f->fd);
			free(f->path);
			free(f);
			if (e == EWOULDBLOCK)
				return vhd_err(EBUSY, "'%s': in use by %s",
					       path, lock == 2 ?
					       "another program" :
					       "a writer");
			return vhd_err(e, "'%s': cannot lock: %s", path,
				       strerror(e));
		}
	}
	f->io.ops = &file_ops;
	f->io.name = f->path;
	*out = &f->io;
	return 0;
}

int
vhd_io_file_open(struct vhd_io **out, const char *path, unsigned flags)
{
	return vhd_io_file_open2(out, path, flags, 0);
}

int
vhd_io_file_id(struct vhd_io *io, uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	if (!io || io->ops != &file_ops)
		return 0;
	if (fstat(((struct io_file *)io)->fd, &st) < 0)
		return 0;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 1;
}

/* Removes a file we created (vhd_create's cleanup). */
int
vhd_io_file_unlink(const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}

int
vhd_random_bytes(uint8_t *buf, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (n > 0) {
		ssize_t r = read(fd, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			return -EIO;
		}
		buf += r;
		n -= (size_t)r;
	}
	close(fd);
	return 0;
}

uint32_t
vhd_file_mtime(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	return vhd_time_from_unix((int64_t)st.st_mtime);
}
