/*
 * pdw.c - parallel direct writes.
 *
 * With direct I/O the kernel (Linux 6.2 and later) serialises every write
 * to a FUSE file on its inode lock unless the open reply carries
 * FOPEN_PARALLEL_DIRECT_WRITES: four writers then go no faster than one
 * (measured: 4 fio jobs of 4 KiB O_DIRECT writes made 0.4x the IOPS of
 * the same writes to a raw file).  The library takes concurrent writes
 * (allocation under its own lock), so the flag is safe for us to give.
 *
 * libfuse 3.14 has no field for the flag in fuse_file_info, so the
 * session's reads and writes of /dev/fuse go through the two functions
 * below: a worker thread reads a request and replies to it itself, so a
 * thread-local note of the FUSE_OPEN it is serving finds the open reply,
 * whose open_flags then get the flag.  Everything else passes unchanged.
 * An older kernel ignores open flags it does not know.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>
#include "vhdfuse.h"

#if defined(__linux__) && FUSE_VERSION >= FUSE_MAKE_VERSION(3, 14)
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#endif

#ifdef FOPEN_PARALLEL_DIRECT_WRITES
/* The unique id of the FUSE_OPEN request this thread serves (0: none). */
static __thread uint64_t open_unique;

static ssize_t
pdw_read(int fd, void *buf, size_t len, void *arg)
{
	ssize_t r = read(fd, buf, len);

	(void)arg;
	if (r >= (ssize_t)sizeof(struct fuse_in_header)) {
		const struct fuse_in_header *h = buf;
		open_unique = h->opcode == FUSE_OPEN ? h->unique : 0;
	}
	return r;
}

static ssize_t
pdw_writev(int fd, struct iovec *iov, int n, void *arg)
{
	(void)arg;
	if (open_unique && n >= 1 &&
	    iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		struct fuse_out_header *h = iov[0].iov_base;
		if (h->unique == open_unique) {
			if (h->error == 0 && n >= 2 &&
			    iov[0].iov_len == sizeof(*h) &&
			    iov[1].iov_len >= sizeof(struct fuse_open_out)) {
				struct fuse_open_out *o = iov[1].iov_base;
				if (o->open_flags & FOPEN_DIRECT_IO)
					o->open_flags |=
						FOPEN_PARALLEL_DIRECT_WRITES;
			}
			open_unique = 0;
		}
	}
	return writev(fd, iov, n);
}

int
vf_parallel_writes(struct fuse *fuse)
{
	static const struct fuse_custom_io io = {
		.read = pdw_read,
		.writev = pdw_writev,
	};
	struct fuse_session *se = fuse_get_session(fuse);
	int fd = se ? fuse_session_fd(se) : -1;

	if (fd < 0)
		return -EBADF;
	return fuse_session_custom_io(se, &io, fd);
}
#else
int
vf_parallel_writes(struct fuse *fuse)
{
	(void)fuse;
	return 0;
}
#endif
