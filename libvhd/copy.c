/*
 * copy.c - the copy engine: every byte of a disk from a source to a
 * destination, as fast as the file system allows (vhd_copy, vhd.h).
 *
 * A source is an opened image (any format driver: VHD of any type, VHDX,
 * a differencing chain flattened), a raw file or device, or a stream
 * (standard input, a gzip file) read once, front to back.  It is read
 * extent by extent: unallocated ranges of an image (vhd_map) and holes of
 * a raw file (SEEK_DATA/SEEK_HOLE) are never read.  Data is copied in
 * CHUNK pieces, and 4 KiB granules that are all zero are not written: the
 * fresh destination already reads as zeros there (a dynamic disk leaves
 * the block unallocated, a fixed disk or raw file keeps a hole).  Where
 * the file system can share blocks (reflinks), a raw or fixed source is
 * copied to a raw or fixed destination with copy_file_range.
 *
 * A destination is written through its "sink": a table of three calls
 * (write at an offset, finish with the final size, free).  Raw files,
 * fixed VHDs (raw data, then the footer), streams (plain or gzip) and
 * images opened read-write (a dynamic VHD; a VHDX once its driver
 * writes) each have one; the engine knows only the table.  A new
 * destination format plugs in at dst_create (see "destinations").
 *
 * A fixed VHD destination is written as raw data followed by its footer,
 * so it can also be a stream.  A stream source's last 512 bytes decide
 * whether it was a fixed VHD (a valid footer whose size matches) or raw.
 */
#include "internal.h"

/* Is the buffer all zero?  A short head by hand, then the buffer against
 * itself shifted by 16 bytes: all zero iff the head is and the rest
 * equals the bytes 16 before it (memcmp runs at memory speed). */
static int
zero_buf(const char *p, size_t n)
{
	size_t h = n < 16 ? n : 16;

	for (size_t i = 0; i < h; i++)
		if (p[i])
			return 0;
	return n <= 16 || memcmp(p, p + 16, n - 16) == 0;
}

int
vhd_nonzero_runs(const char *buf, size_t n, uint64_t off, size_t granule,
		 int (*fn)(void *arg, const char *p, size_t len, uint64_t at),
		 void *arg)
{
	size_t i = 0;

	if (!buf || !fn || granule == 0)
		return vhd_err(EINVAL, "vhd_nonzero_runs: bad arguments");
	while (i < n) {
		/* Granules are aligned to absolute offsets. */
		size_t g = granule - (size_t)((off + i) % granule);
		if (g > n - i)
			g = n - i;
		if (zero_buf(buf + i, g)) {
			i += g;
			continue;
		}
		size_t start = i;
		for (i += g; i < n; i += g) {
			g = n - i < granule ? n - i : granule;
			if (zero_buf(buf + i, g))
				break;
		}
		int r = fn(arg, buf + start, i - start, off + start);
		if (r < 0)
			return r;
	}
	return 0;
}

#ifdef _WIN32
/* The engine uses POSIX threads, zlib and Linux's copy calls; the
 * Windows build of the library has the calls, refusing. */
#define NOTSUP vhd_err(ENOTSUP, "vhd_copy: not available on this platform")
int vhd_copy_is_gzip(const char *p) { (void)p; return 0; }
int vhd_copy_src_image(struct vhd_copy_end **o, struct vhd *v, const char *n)
{ (void)o; (void)v; (void)n; return NOTSUP; }
int vhd_copy_src_raw(struct vhd_copy_end **o, const char *p, const char *n)
{ (void)o; (void)p; (void)n; return NOTSUP; }
int vhd_copy_src_stream(struct vhd_copy_end **o, const char *p, int fd,
			const char *n)
{ (void)o; (void)p; (void)fd; (void)n; return NOTSUP; }
int vhd_copy_head(struct vhd_copy_end *s, void *b, size_t n, size_t *g)
{ (void)s; (void)b; (void)n; (void)g; return NOTSUP; }
int vhd_copy_spool(struct vhd_copy_end *s, const struct vhd_copy_opts *o,
		   const char **p)
{ (void)s; (void)o; (void)p; return NOTSUP; }
int vhd_copy_dst_create(struct vhd_copy_end **o, const char *p,
			const struct vhd_copy_dst_opts *d)
{ (void)o; (void)p; (void)d; return NOTSUP; }
int vhd_copy(struct vhd_copy_end *s, struct vhd_copy_end *d,
	     const struct vhd_copy_opts *o)
{ (void)s; (void)d; (void)o; return NOTSUP; }
int vhd_copy_finish(struct vhd_copy_end *d, uint64_t size)
{ (void)d; (void)size; return NOTSUP; }
uint64_t vhd_copy_size(const struct vhd_copy_end *e) { (void)e; return 0; }
int vhd_copy_extent(struct vhd_copy_end *s, uint64_t off, uint64_t *len)
{ (void)s; (void)off; (void)len; return NOTSUP; }
int vhd_copy_pread(struct vhd_copy_end *s, void *b, size_t n, uint64_t off)
{ (void)s; (void)b; (void)n; (void)off; return NOTSUP; }
struct vhd *vhd_copy_image(struct vhd_copy_end *e) { (void)e; return NULL; }
int vhd_copy_failed(const struct vhd_copy_end *e) { (void)e; return 0; }
void vhd_copy_close(struct vhd_copy_end *e) { (void)e; }
#else

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef __linux__
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

/* 256 KiB: measured faster and steadier than 2 MiB when reading a VHD
 * source (bench: dynamic to raw 0.50-0.54 s against 0.55-2.19 s, the time
 * going to page-cache copies of the larger buffer). */
#define CHUNK   (256u * 1024)
#define GRANULE 4096u

/* ---- ends ---- */

enum { END_IMAGE, END_RAW, END_STREAM };

struct sink;
struct sink_ops {
	/* Writes [off, off+n), off never below what was written before for
	 * a stream; -errno with the message set. */
	int  (*write)(struct vhd_copy_end *d, const void *buf, size_t n,
		      uint64_t off);
	/* Everything written: size, footer, sync, close. */
	int  (*finish)(struct vhd_copy_end *d);
};

struct vhd_copy_end {
	int kind;               /* END_* (what is read or written) */
	char *name;             /* for messages */
	struct vhd *v;          /* END_IMAGE */
	struct vhd_io *io;      /* END_RAW: the file; or the image's own */
	int fd;                 /* the file for the kernel's copy calls; -1 */
	uint64_t size;          /* disk size (a stream source: once copied) */
	int failed;             /* the last vhd_copy failed here */

	/* a stream */
	gzFile gz;
	int sfd;                /* its descriptor (gz holds a dup) */
	int own_sfd;
	uint64_t written;       /* destination: bytes so far */
	char head[512];         /* source: read ahead by vhd_copy_head */
	size_t headlen;
	int head_read;
	char *spool;            /* source: a spool file to remove */

	/* a destination */
	const struct sink_ops *sink;
	char *path;             /* created: removed unless finished */
	int created, finished;
	int dense;              /* a device: write every byte */
	int fixed;              /* raw data then a fixed VHD footer */
	int stream;             /* sequential (standard output or gzip) */
	int sync;
	unsigned footer_flags;
};

static struct vhd_copy_end *
end_new(int kind, const char *name)
{
	struct vhd_copy_end *e = calloc(1, sizeof(*e));

	if (!e || !(e->name = strdup(name ? name : "?"))) {
		free(e);
		vhd_err(ENOMEM, "out of memory");
		return NULL;
	}
	e->kind = kind;
	e->fd = -1;
	e->sfd = -1;
	return e;
}

/* The descriptor of a file backend (io_file.c), for the kernel's copy
 * calls; -1 for any other backend. */
static int
io_fd(struct vhd_io *io)
{
	return io ? vhd_io_file_fd(io) : -1;
}

/* ---- sources ---- */

int
vhd_copy_is_gzip(const char *path)
{
	struct vhd_io *io;
	unsigned char m[2];
	uint64_t size;
	int r = 0;

	if (!path || vhd_vfs_open(NULL, &io, path, 0, VHD_LOCK_NONE) < 0)
		return 0;
	if (io->ops->get_size(io, &size) == 0 && size >= 2 &&
	    io->ops->pread(io, m, 2, 0) == 0 && m[0] == 0x1f && m[1] == 0x8b)
		r = 1;
	io->ops->close(io);
	return r;
}

int
vhd_copy_src_image(struct vhd_copy_end **out, struct vhd *v, const char *name)
{
	struct vhd_copy_end *e;

	if (!out || !v)
		return vhd_err(EINVAL, "vhd_copy_src_image: no image");
	if (!(e = end_new(END_IMAGE, name ? name : v->path)))
		return -ENOMEM;
	e->v = v;
	e->size = v->size;
	/* A fixed VHD's data is the file's first size bytes: a raw view
	 * for copy_file_range and reflinks. */
	if (v->drv == &vhd_drv_vhd && v->type == VHD_TYPE_FIXED && !v->parent)
		e->fd = io_fd(v->io);
	*out = e;
	return 0;
}

int
vhd_copy_src_raw(struct vhd_copy_end **out, const char *path, const char *name)
{
	struct vhd_copy_end *e;
	int r;

	if (!out || !path)
		return vhd_err(EINVAL, "vhd_copy_src_raw: no path");
	if (!(e = end_new(END_RAW, name ? name : path)))
		return -ENOMEM;
	if ((r = vhd_vfs_open(NULL, &e->io, path, 0, VHD_LOCK_NONE)) < 0) {
		r = vhd_err(-r, "'%s': cannot open: %s", e->name, strerror(-r));
		vhd_copy_close(e);
		return r;
	}
	/* A regular file's size, or a device's (its end). */
	if ((r = e->io->ops->get_size(e->io, &e->size)) < 0) {
		r = vhd_err(-r, "'%s': cannot find its size: %s", e->name,
			    strerror(-r));
		vhd_copy_close(e);
		return r;
	}
	e->fd = io_fd(e->io);
	*out = e;
	return 0;
}

int
vhd_copy_src_stream(struct vhd_copy_end **out, const char *path, int fd,
		    const char *name)
{
	struct vhd_copy_end *e;
	int r;

	if (!out || (!path && fd < 0))
		return vhd_err(EINVAL, "vhd_copy_src_stream: no stream");
	if (!(e = end_new(END_STREAM, name ? name : path ? path :
			  "standard input")))
		return -ENOMEM;
	if (path) {
		if ((r = vhd_vfs_open(NULL, &e->io, path, 0, VHD_LOCK_NONE)) < 0) {
			r = vhd_err(-r, "'%s': cannot open: %s", e->name,
				    strerror(-r));
			vhd_copy_close(e);
			return r;
		}
		fd = io_fd(e->io);
	}
	/* gzread passes uncompressed input through unchanged. */
	int d = fd >= 0 ? dup(fd) : -1;
	e->gz = d >= 0 ? gzdopen(d, "rb") : NULL;
	if (!e->gz) {
		r = d < 0 ? errno : ENOMEM;
		if (d >= 0)
			close(d);
		r = vhd_err(r, "'%s': cannot open: %s", e->name, strerror(r));
		vhd_copy_close(e);
		return r;
	}
	gzbuffer(e->gz, 1u << 20);
	*out = e;
	return 0;
}

/* Reads up to n bytes of a stream; the count (0 at its end) or -errno. */
static ssize_t
stream_read(struct vhd_copy_end *s, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int r = gzread(s->gz, (char *)buf + got, (unsigned)(n - got));
		if (r < 0) {
			int e;
			const char *m = gzerror(s->gz, &e);
			return vhd_err(EIO, "'%s': read error: %s", s->name,
				       e == Z_ERRNO ? strerror(errno) : m);
		}
		if (r == 0) {
			/* A truncated gzip stream ends "normally" with
			 * Z_BUF_ERROR pending. */
			int e;
			const char *m = gzerror(s->gz, &e);
			if (e != Z_OK && e != Z_STREAM_END)
				return vhd_err(EIO, "'%s': read error: %s",
					       s->name, e == Z_BUF_ERROR ?
					       "compressed data ends early "
					       "(truncated?)" : m);
			break;
		}
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
vhd_copy_head(struct vhd_copy_end *s, void *buf, size_t n, size_t *got)
{
	if (!s || s->kind != END_STREAM || s->head_read || n > sizeof(s->head))
		return vhd_err(EINVAL, "vhd_copy_head: not a fresh stream, "
			       "or more than 512 bytes");
	ssize_t r = stream_read(s, s->head, n);
	if (r < 0)
		return (int)r;
	s->head_read = 1;
	s->headlen = (size_t)r;
	memcpy(buf, s->head, s->headlen);
	*got = s->headlen;
	return 0;
}

int
vhd_copy_extent(struct vhd_copy_end *s, uint64_t off, uint64_t *len)
{
	uint64_t left;

	if (!s || !len || s->kind == END_STREAM || off >= s->size)
		return vhd_err(EINVAL, "vhd_copy_extent: not a source, or "
			       "past its end");
	left = s->size - off;
	if (s->kind == END_IMAGE) {
		uint64_t run = 0;
		unsigned status = 0;
		int r = vhd_map(s->v, off, left, &run, &status, NULL);
		if (r < 0)
			return r;
		if (run == 0 || run > left)
			run = left;
		*len = run;
		return (status & VHD_MAP_DATA) ? 1 : 0;
	}
	/* Raw: ask the file system for holes; without support, all data. */
	if (s->fd < 0) {
		*len = left;
		return 1;
	}
	off_t d = lseek(s->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		*len = left;
		return errno == ENXIO ? 0 : 1;
	}
	if ((uint64_t)d > off) {
		*len = (uint64_t)d - off < left ? (uint64_t)d - off : left;
		return 0;
	}
	off_t h = lseek(s->fd, (off_t)off, SEEK_HOLE);
	if (h < 0 || (uint64_t)h <= off || (uint64_t)h - off > left)
		*len = left;
	else
		*len = (uint64_t)h - off;
	return 1;
}

int
vhd_copy_pread(struct vhd_copy_end *s, void *buf, size_t n, uint64_t off)
{
	int r;

	if (!s || s->kind == END_STREAM)
		return vhd_err(EINVAL, "vhd_copy_pread: not a source");
	if (s->kind == END_IMAGE)
		return vhd_pread(s->v, buf, n, off);
	if ((r = s->io->ops->pread(s->io, buf, n, off)) < 0)
		return vhd_err(-r, "'%s': read error at offset %llu: %s",
			       s->name, (unsigned long long)off, strerror(-r));
	return 0;
}

uint64_t
vhd_copy_size(const struct vhd_copy_end *e)
{
	return e ? e->size : 0;
}

struct vhd *
vhd_copy_image(struct vhd_copy_end *e)
{
	return e ? e->v : NULL;
}

int
vhd_copy_failed(const struct vhd_copy_end *e)
{
	return e ? e->failed : 0;
}

/* ---- destinations ----
 * dst_create picks the sink by format and type.  A dynamic VHD and any
 * VHDX are created, opened read-write and written through image_sink
 * (vhd_pwrite dispatches to the driver). */

static int
file_write(struct vhd_copy_end *d, const void *buf, size_t n, uint64_t off)
{
	int r = d->io->ops->pwrite(d->io, buf, n, off);

	return r < 0 ? vhd_err(-r, "'%s': write error: %s", d->name,
			       strerror(-r)) : 0;
}

static int
stream_write(struct vhd_copy_end *d, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		size_t k = n > (1u << 30) ? (1u << 30) : n;
		if (d->gz) {
			int w = gzwrite(d->gz, p, (unsigned)k);
			if (w <= 0) {
				int e;
				const char *m = gzerror(d->gz, &e);
				e = e == Z_ERRNO ? (errno ? errno : EIO) : EIO;
				return vhd_err(e, "'%s': write error: %s",
					       d->name, e == EIO && m ? m :
					       strerror(e));
			}
			k = (size_t)w;
		} else {
			ssize_t w = write(d->sfd, p, k);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return vhd_err(errno, "'%s': write error: %s",
					       d->name, strerror(errno));
			k = (size_t)w;
		}
		p += k;
		n -= k;
		d->written += k;
	}
	return 0;
}

static const char zeros[GRANULE * 16];

static int
stream_zeros(struct vhd_copy_end *d, uint64_t n)
{
	while (n) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
		int r = stream_write(d, zeros, k);
		if (r < 0)
			return r;
		n -= k;
	}
	return 0;
}

/* A fixed VHD's footer for the size written (nothing for raw). */
static int
footer(struct vhd_copy_end *d, uint8_t foot[512])
{
	return d->fixed ? vhd_fixed_footer(d->size, d->footer_flags, foot) : 0;
}

/* --sync (VHD_COPY_SYNC): the file's data durable. */
static int
sync_file(struct vhd_copy_end *d)
{
	int r = d->io && d->sync ? d->io->ops->flush(d->io) : 0;

	if (r < 0 && r != -EINVAL)
		return vhd_err(-r, "'%s': cannot sync: %s", d->name,
			       strerror(-r));
	return 0;
}

/* Raw files and fixed VHDs: the data at its offsets, then (fixed) the
 * footer after it. */
static int
raw_finish(struct vhd_copy_end *d)
{
	uint8_t foot[512];
	int r;

	if ((r = footer(d, foot)) < 0)
		return r;
	if (!d->dense && (r = d->io->ops->truncate(d->io, d->size)) < 0)
		return vhd_err(-r, "'%s': cannot set its size: %s", d->name,
			       strerror(-r));
	if (d->fixed && (r = file_write(d, foot, 512, d->size)) < 0)
		return r;
	return sync_file(d);
}

static const struct sink_ops raw_sink = { file_write, raw_finish };

/* Streams: written front to back, the gaps as zeros. */
static int
stream_put(struct vhd_copy_end *d, const void *buf, size_t n, uint64_t off)
{
	int r = stream_zeros(d, off - d->written);

	return r < 0 ? r : stream_write(d, buf, n);
}

static int
stream_finish(struct vhd_copy_end *d)
{
	uint8_t foot[512];
	int r;

	if ((r = footer(d, foot)) < 0 ||
	    (r = stream_zeros(d, d->size - d->written)) < 0 ||
	    (d->fixed && (r = stream_write(d, foot, 512)) < 0))
		return r;
	if (d->gz) {
		r = gzclose(d->gz);
		d->gz = NULL;
		if (r != Z_OK)
			return vhd_err(EIO, "'%s': write error while "
				       "compressing", d->name);
	}
	return sync_file(d);
}

static const struct sink_ops stream_sink = { stream_put, stream_finish };

/* An image opened read-write (a dynamic VHD): the library's writes. */
static int
image_write(struct vhd_copy_end *d, const void *buf, size_t n, uint64_t off)
{
	return vhd_pwrite(d->v, buf, n, off);
}

static int
image_finish(struct vhd_copy_end *d)
{
	int r = d->sync ? vhd_flush(d->v) : 0;

	return r;
}

static const struct sink_ops image_sink = { image_write, image_finish };

int
vhd_copy_dst_create(struct vhd_copy_end **out, const char *path,
		    const struct vhd_copy_dst_opts *opts)
{
	struct vhd_copy_dst_opts o;
	struct vhd_copy_end *d;
	int r, gz;

	if (!out)
		return vhd_err(EINVAL, "vhd_copy_dst_create: no handle");
	if ((r = vhd_struct_in(&o, sizeof(o), sizeof(o), opts,
			       "vhd_copy_dst_opts")) < 0)
		return r;
	if (!path && o.fd < 0)
		return vhd_err(EINVAL, "vhd_copy_dst_create: no path or fd");
	gz = !!(o.flags & VHD_COPY_GZIP);
	if (!(d = end_new(END_RAW, o.name ? o.name : path ? path :
			  "standard output")))
		return -ENOMEM;
	d->size = o.size;
	d->sync = !!(o.flags & VHD_COPY_SYNC);
	d->dense = !!(o.flags & VHD_COPY_DENSE);
	d->footer_flags = o.footer_flags;
	d->stream = gz || !path;
	if ((o.format == VHD_FORMAT_VHD && o.type != VHD_TYPE_FIXED) ||
	    o.format == VHD_FORMAT_VHDX) {
		/* A dynamic VHD or any VHDX: created by the library, written
		 * through the image's own writes (its driver's). */
		struct vhd_create_opts co = { .struct_size = sizeof co };
		int vhdx = o.format == VHD_FORMAT_VHDX;
		if (d->stream || d->dense) {
			r = vhd_err(EINVAL, "'%s': a %s needs a new seekable "
				    "file", d->name, vhdx ? "VHDX" :
				    "dynamic VHD");
			goto fail;
		}
		co.type = vhdx && o.type == VHD_TYPE_FIXED ? VHD_TYPE_FIXED :
			  VHD_TYPE_DYNAMIC;
		co.flags = vhdx ? VHD_CREATE_VHDX : 0;
		co.size = o.size;
		co.block_size = o.block_size;
		if ((r = vhd_create(path, &co)) < 0)
			goto fail;
		if (!(d->path = strdup(path))) {
			vhd_vfs_unlink(NULL, path);
			r = vhd_err(ENOMEM, "out of memory");
			goto fail;
		}
		d->created = 1;
		r = vhd_open(&d->v, path, VHD_OPEN_RDWR | VHD_OPEN_UNSAFE_NOSYNC);
		if (r < 0)
			goto fail;
		d->kind = END_IMAGE;
		d->sink = &image_sink;
		*out = d;
		return 0;
	}
	if (o.format != VHD_FORMAT_VHD && o.format != VHD_FORMAT_RAW) {
		r = vhd_err(ENOTSUP, "'%s': cannot write this format",
			    d->name);
		goto fail;
	}
	d->fixed = o.format == VHD_FORMAT_VHD;
	if (path) {
		r = vhd_vfs_open(NULL, &d->io, path, d->dense ? VHD_IO_RDWR :
				 VHD_IO_CREATE, VHD_LOCK_NONE);
		if (r < 0) {
			r = vhd_err(-r, "'%s': cannot create: %s", d->name,
				    strerror(-r));
			goto fail;
		}
		if (!d->dense) {
			if (!(d->path = strdup(path))) {
				r = vhd_err(ENOMEM, "out of memory");
				goto fail;
			}
			d->created = 1;
		}
		d->fd = io_fd(d->io);
		d->sfd = d->fd;
	} else {
		d->sfd = o.fd;
	}
	d->sink = &raw_sink;
	if (!d->stream) {
		*out = d;
		return 0;
	}
	d->sink = &stream_sink;
	d->fd = -1;             /* no kernel copies into a stream */
	if (gz) {
		int fd = dup(d->sfd);
		d->gz = fd >= 0 ? gzdopen(fd, "wb6") : NULL;
		if (!d->gz) {
			if (fd >= 0)
				close(fd);
			r = vhd_err(ENOMEM, "'%s': cannot start compressing",
				    d->name);
			goto fail;
		}
		gzbuffer(d->gz, 1u << 20);
	}
	*out = d;
	return 0;
fail:
	vhd_copy_close(d);
	return r;
}

int
vhd_copy_finish(struct vhd_copy_end *d, uint64_t size)
{
	int r;

	if (!d || !d->sink || d->finished)
		return vhd_err(EINVAL, "vhd_copy_finish: not an open "
			       "destination");
	if (size)
		d->size = size;
	if ((r = d->sink->finish(d)) < 0)
		return r;
	if (d->v) {
		struct vhd *v = d->v;
		d->v = NULL;
		vhd_close(v);
	}
	if (d->io) {
		d->io->ops->close(d->io);
		d->io = NULL;
	}
	d->finished = 1;
	return 0;
}

void
vhd_copy_close(struct vhd_copy_end *e)
{
	if (!e)
		return;
	vhd_close(e->v);
	if (e->gz)
		gzclose(e->gz);
	if (e->io)
		e->io->ops->close(e->io);
	if (e->created && !e->finished && e->path)
		vhd_vfs_unlink(NULL, e->path);
	if (e->spool)
		vhd_vfs_unlink(vhd_vfs_platform(), e->spool);
	free(e->spool);
	free(e->path);
	free(e->name);
	free(e);
}

/* ---- copying ---- */

struct ctx {
	const struct vhd_copy_opts *o;
	struct vhd_copy_end *s, *d;
};

static int
cancelled(struct ctx *c)
{
	if (!c->o->cancel || !c->o->cancel(c->o->cancel_arg))
		return 0;
	c->d->failed = 1;
	return vhd_err(EINTR, "'%s': interrupted", c->d->name);
}

static void
progress(struct ctx *c, uint64_t done, uint64_t total)
{
	if (c->o->progress)
		c->o->progress(c->o->progress_arg, done, total);
}

static int
put_run(void *arg, const char *p, size_t n, uint64_t at)
{
	struct vhd_copy_end *d = arg;

	return d->sink->write(d, p, n, at);
}

/* Write buf ([off, off+n)): the granules that are not all zero, one
 * write per run of them; a dense destination gets every byte, a stream
 * its data in order. */
static int
put_data(struct vhd_copy_end *d, const uint8_t *buf, size_t n, uint64_t off)
{
	if (d->dense || d->stream)
		return d->sink->write(d, buf, n, off);
	return vhd_nonzero_runs((const char *)buf, n, off, GRANULE, put_run, d);
}

#ifdef FICLONERANGE
/* Can the destination share the source's blocks (a reflink)?  Tried on
 * the first data extent; on success it is already copied. */
static int
try_reflink(struct vhd_copy_end *s, struct vhd_copy_end *d, uint64_t off,
	    uint64_t len)
{
	struct file_clone_range fcr;
	uint64_t al = len / GRANULE * GRANULE;

	if (al == 0 || off % GRANULE)
		return 0;
	fcr.src_fd = s->fd;
	fcr.src_offset = off;
	fcr.src_length = al;
	fcr.dest_offset = off;
	return ioctl(d->fd, FICLONERANGE, &fcr) == 0;
}
#endif

/* copy_file_range of [off, off+len) at the same offsets. */
static int
kernel_copy(struct ctx *c, uint64_t off, uint64_t len)
{
#ifdef __linux__
	while (len) {
		loff_t in = (loff_t)off, out = (loff_t)off;
		size_t k = len > (64u << 20) ? (64u << 20) : (size_t)len;
		ssize_t r = copy_file_range(c->s->fd, &in, c->d->fd, &out, k, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			c->d->failed = 1;
			return vhd_err(e, "'%s': write error: %s", c->d->name,
				       strerror(e));
		}
		off += (uint64_t)r;
		len -= (uint64_t)r;
		progress(c, off, c->s->size);
		if ((r = cancelled(c)) < 0)
			return (int)r;
	}
	return 0;
#else
	(void)off;
	(void)len;
	return vhd_err(ENOTSUP, "'%s': no kernel copy", c->d->name);
#endif
}

/* ---- the writer thread ----
 * Reading a chunk (a copy out of the page cache, or the library's read of
 * an image) and writing it (zero detection, then a copy into the page
 * cache) cost about the same, so they run on two threads: the caller's
 * thread reads into one of PIPE_BUFS buffers while the writer writes the
 * ones before it, strictly in order, so the destination sees exactly the
 * writes and order of a single-threaded copy.  qemu-img convert overlaps
 * its I/O the same way (several requests in flight). */
#define PIPE_BUFS 4

struct pipe {
	struct vhd_copy_end *d;
	uint8_t *buf[PIPE_BUFS];
	size_t len[PIPE_BUFS];
	uint64_t off[PIPE_BUFS];
	unsigned head, tail;    /* filled: [tail, head), modulo PIPE_BUFS */
	int err, stop;
	char msg[1024];         /* the writer's first error message */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int running;
};

static void *
pipe_writer(void *arg)
{
	struct pipe *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->tail == p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->tail == p->head)
			break;
		unsigned i = p->tail % PIPE_BUFS;
		pthread_mutex_unlock(&p->lock);
		int r = p->err ? 0 : put_data(p->d, p->buf[i], p->len[i],
					      p->off[i]);
		pthread_mutex_lock(&p->lock);
		if (r < 0 && !p->err) {
			/* The message is thread-local: keep it for the
			 * caller's thread. */
			p->err = r;
			snprintf(p->msg, sizeof(p->msg), "%s", vhd_errmsg());
		}
		p->tail++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The writer's error, its message restored on this thread. */
static int
pipe_err(struct pipe *p, int err)
{
	if (err < 0) {
		p->d->failed = 1;
		return vhd_err(-err, "%s", p->msg);
	}
	return 0;
}

static uint8_t *
pipe_buffer(struct pipe *p)
{
	uint8_t *b;

	if (!p->running)
		return p->buf[0];
	pthread_mutex_lock(&p->lock);
	while (p->head - p->tail == PIPE_BUFS)
		pthread_cond_wait(&p->cond, &p->lock);
	b = p->buf[p->head % PIPE_BUFS];
	pthread_mutex_unlock(&p->lock);
	return b;
}

static int
pipe_drain(struct pipe *p)
{
	int err;

	if (!p->running)
		return 0;
	pthread_mutex_lock(&p->lock);
	while (p->tail != p->head)
		pthread_cond_wait(&p->cond, &p->lock);
	err = p->err;
	pthread_mutex_unlock(&p->lock);
	return pipe_err(p, err);
}

/* Write [off, off+n) from the buffer pipe_buffer gave: queued for the
 * writer thread, or here if there is none.  0 or the first write error. */
static int
pipe_write(struct pipe *p, size_t n, uint64_t off)
{
	int err;

	if (!p->running) {
		if ((err = put_data(p->d, p->buf[0], n, off)) < 0)
			p->d->failed = 1;
		return err;
	}
	pthread_mutex_lock(&p->lock);
	p->len[p->head % PIPE_BUFS] = n;
	p->off[p->head % PIPE_BUFS] = off;
	p->head++;
	err = p->err;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return pipe_err(p, err);
}

static int
pipe_start(struct pipe *p, struct vhd_copy_end *d)
{
	memset(p, 0, sizeof(*p));
	p->d = d;
	for (int i = 0; i < PIPE_BUFS; i++) {
		void *mem;
		if (posix_memalign(&mem, CHUNK, CHUNK) != 0)
			return vhd_err(ENOMEM, "out of memory");
		p->buf[i] = mem;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* Without a thread, pipe_write writes inline. */
	p->running = pthread_create(&p->thread, NULL, pipe_writer, p) == 0;
	return 0;
}

/* Drain, stop the writer and free; the writer's first error. */
static int
pipe_end(struct pipe *p)
{
	int err = 0;

	if (p->running) {
		err = pipe_drain(p);
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
	}
	for (int i = 0; i < PIPE_BUFS; i++)
		free(p->buf[i]);
	return err;
}

/* Every byte of a random-access source. */
static int
copy_random(struct ctx *c)
{
	struct vhd_copy_end *s = c->s, *d = c->d;
	uint64_t off = 0;
	int r = 0, kernel = 0;
	struct pipe pipe;

	if ((r = pipe_start(&pipe, d)) < 0) {
		pipe_end(&pipe);
		return r;
	}
	while (off < s->size) {
		uint64_t len;
		if ((r = cancelled(c)) < 0)
			goto out;
		r = vhd_copy_extent(s, off, &len);
		if (r < 0) {
			s->failed = 1;
			goto out;
		}
		if (r == 0 && d->dense) {
			/* A device is not known to read zeros: write them,
			 * from a buffer the writer no longer holds. */
			if ((r = pipe_drain(&pipe)) < 0)
				goto out;
			uint8_t *buf = pipe.buf[0];
			memset(buf, 0, CHUNK);
			for (uint64_t o = off; o < off + len;) {
				size_t n = CHUNK - (size_t)(o % CHUNK);
				if (n > off + len - o)
					n = (size_t)(off + len - o);
				if ((r = d->sink->write(d, buf, n, o)) < 0) {
					d->failed = 1;
					goto out;
				}
				o += n;
			}
		}
#ifdef FICLONERANGE
		/* Queued writes may still be going on: they are to other
		 * ranges of the file. */
		if (r == 1 && !kernel && s->fd >= 0 && d->fd >= 0 &&
		    d->sink == &raw_sink && !d->dense &&
		    try_reflink(s, d, off, len))
			kernel = 1;
#endif
		if (r == 1 && kernel) {
			if ((r = kernel_copy(c, off, len)) < 0)
				goto out;
			off += len;
			continue;
		}
		for (uint64_t o = off; r == 1 && o < off + len;) {
			size_t n = CHUNK - (size_t)(o % CHUNK);
			if (n > off + len - o)
				n = (size_t)(off + len - o);
			uint8_t *buf = pipe_buffer(&pipe);
			if ((r = vhd_copy_pread(s, buf, n, o)) < 0) {
				s->failed = 1;
				goto out;
			}
			if ((r = pipe_write(&pipe, n, o)) < 0)
				goto out;
			r = 1;
			o += n;
			progress(c, o, s->size);
			if ((r = cancelled(c)) < 0)
				goto out;
			r = 1;
		}
		off += len;
		progress(c, off, s->size);
	}
	r = 0;
out:
	if (r < 0) {
		/* Keep this error's message over the writer's. */
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", vhd_errmsg());
		pipe_end(&pipe);
		return vhd_err(-r, "%s", msg);
	}
	return pipe_end(&pipe);
}

/* A stream source, front to back, holding the last 512 bytes back until
 * the end tells whether they are a fixed VHD's footer (from: 0 either, or
 * VHD_COPY_FROM_RAW / VHD_COPY_FROM_VHD).  Sets s->size. */
static int
copy_stream(struct ctx *c, unsigned from)
{
	struct vhd_copy_end *s = c->s, *d = c->d;
	uint8_t *buf = malloc(CHUNK + 512);
	size_t pend;
	uint64_t off = 0;
	int r;

	if (!buf)
		return vhd_err(ENOMEM, "out of memory");
	if (!s->head_read) {
		s->head_read = 1;
		s->headlen = 0;
	}
	memcpy(buf, s->head, s->headlen);
	pend = s->headlen;
	for (;;) {
		if ((r = cancelled(c)) < 0)
			goto out;
		ssize_t got = stream_read(s, buf + pend, CHUNK + 512 - pend);
		if (got < 0) {
			s->failed = 1;
			r = (int)got;
			goto out;
		}
		if (got == 0)
			break;
		pend += (size_t)got;
		if (pend > 512) {
			size_t n = pend - 512;
			if ((r = put_data(d, buf, n, off)) < 0) {
				d->failed = 1;
				goto out;
			}
			off += n;
			memmove(buf, buf + n, 512);
			pend = 512;
			progress(c, off, off);
		}
	}
	struct vhd_info in = { .struct_size = sizeof in };
	if (!(from & VHD_COPY_FROM_RAW) && pend == 512 &&
	    vhd_footer_parse(buf, &in) == 0 && in.type == VHD_TYPE_FIXED &&
	    in.virtual_size == off) {
		s->size = off;          /* a fixed VHD: the footer goes */
	} else if (from & VHD_COPY_FROM_VHD) {
		s->failed = 1;
		r = vhd_err(EBADMSG, "'%s': not a fixed VHD stream (no footer "
			    "of its size at its end); --from raw reads it as "
			    "raw", s->name);
		goto out;
	} else {
		if (pend && (r = put_data(d, buf, pend, off)) < 0) {
			d->failed = 1;
			goto out;
		}
		s->size = off + pend;
	}
	r = 0;
out:
	free(buf);
	return r;
}

int
vhd_copy(struct vhd_copy_end *src, struct vhd_copy_end *dst,
	 const struct vhd_copy_opts *opts)
{
	struct vhd_copy_opts o;
	struct ctx c;
	int r;

	if (!src || !dst || src->sink || !dst->sink || dst->finished)
		return vhd_err(EINVAL, "vhd_copy: needs a source and an open "
			       "destination");
	if (opts) {
		if ((r = vhd_struct_in(&o, sizeof(o), sizeof(o), opts,
				       "vhd_copy_opts")) < 0)
			return r;
	} else {
		memset(&o, 0, sizeof(o));
	}
	c.o = &o;
	c.s = src;
	c.d = dst;
	src->failed = dst->failed = 0;
	if (src->kind == END_STREAM) {
		if ((r = copy_stream(&c, o.flags)) < 0)
			return r;
		if (!dst->stream || dst->size == 0)
			dst->size = src->size;
		return 0;
	}
	return copy_random(&c);
}

int
vhd_copy_spool(struct vhd_copy_end *s, const struct vhd_copy_opts *opts,
	       const char **path)
{
	const char *dir = getenv("TMPDIR");
	struct vhd_copy_end *t = NULL;
	char *tmpl;
	int fd, r;

	if (!s || s->kind != END_STREAM || s->spool || !path)
		return vhd_err(EINVAL, "vhd_copy_spool: not a stream");
	if (!dir || !*dir)
		dir = "/tmp";
	if (!(tmpl = malloc(strlen(dir) + 32)))
		return vhd_err(ENOMEM, "out of memory");
	sprintf(tmpl, "%s/vhdtool-spool.XXXXXX", dir);
	fd = mkstemp(tmpl);
	if (fd < 0) {
		r = vhd_err(errno, "'%s': cannot create: %s", tmpl,
			    strerror(errno));
		free(tmpl);
		return r;
	}
	close(fd);
	s->spool = tmpl;
	/* Spooled verbatim (FROM_RAW: the footer stays in the file). */
	if (!(t = end_new(END_RAW, tmpl)))
		return -ENOMEM;
	/* The spool is a local temporary file (mkstemp), whatever the
	 * default storage layer. */
	if ((r = vhd_io_file_open(&t->io, tmpl, VHD_IO_RDWR)) < 0)
		goto out;
	t->sink = &raw_sink;
	struct vhd_copy_opts so = { .struct_size = sizeof so };
	if (opts) {
		so.progress = opts->progress;
		so.progress_arg = opts->progress_arg;
		so.cancel = opts->cancel;
		so.cancel_arg = opts->cancel_arg;
	}
	so.flags = VHD_COPY_FROM_RAW;
	if ((r = vhd_copy(s, t, &so)) < 0)
		goto out;
	if ((r = vhd_copy_finish(t, s->size)) < 0)
		goto out;
	gzclose(s->gz);
	s->gz = NULL;
	*path = s->spool;
out:
	vhd_copy_close(t);
	return r;
}

#endif /* !_WIN32 */
