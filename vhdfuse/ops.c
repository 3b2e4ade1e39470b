/*
 * ops.c - the fuse_operations adapters: map each FUSE request onto the
 * libvhd handle.  Errors from the library go back to the kernel unchanged
 * (-errno), as libnbd's nbdfuse does.
 *
 * The mount shows either one file (MOUNTPOINT was a regular file: the
 * root is the disk) or a directory holding "disk" and one file per
 * partition.  Every write has reached the image file when it returns (the
 * library guarantees that), so the daemon never holds dirty data.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <linux/falloc.h>
#include "vhdfuse.h"

static struct vf_state *
state(void)
{
	return fuse_get_context()->private_data;
}

static struct vf_file *
lookup(struct vf_state *s, const char *path)
{
	if (s->file_mode)
		return strcmp(path, "/") == 0 ? &s->files[0] : NULL;
	for (int i = 0; i < s->nfiles; i++)
		if (strcmp(path, s->files[i].path) == 0)
			return &s->files[i];
	return NULL;
}

/* The file of a request: from the open handle when there is one. */
static struct vf_file *
file_of(struct vf_state *s, const char *path, struct fuse_file_info *fi)
{
	if (fi && fi->fh < (uint64_t)s->nfiles)
		return &s->files[fi->fh];
	return path ? lookup(s, path) : NULL;
}

/* Bytes of [start, start+size) stored in some image of the chain.  On a
 * map failure everything counts as stored (never under-report). */
static uint64_t
stored_bytes(struct vhd *v, uint64_t start, uint64_t size)
{
	uint64_t pos = 0, total = 0;

	while (pos < size) {
		uint64_t run = 0;
		unsigned status = 0;
		if (vhd_map(v, start + pos, size - pos, &run, &status, NULL) < 0 ||
		    run == 0)
			return total + (size - pos);
		if (status & VHD_MAP_DATA)
			total += run;
		pos += run;
	}
	return total;
}

/* st_blocks: recomputed only after a change (write_gen moved). */
static uint64_t
file_blocks(struct vf_state *s, struct vf_file *f)
{
	uint64_t gen = atomic_load(&s->write_gen);

	pthread_mutex_lock(&f->blocks_lock);
	if (f->blocks_gen != gen + 1) {
		f->blocks = (stored_bytes(s->v, f->start, f->size) + 511) / 512;
		f->blocks_gen = gen + 1;        /* 0 means "never computed" */
	}
	uint64_t b = f->blocks;
	pthread_mutex_unlock(&f->blocks_lock);
	return b;
}

/* After a change to disk bytes [off, off+len) made through file `from`:
 * every other open file showing some of those bytes has stale pages. */
static void
changed(struct vf_state *s, const struct vf_file *from, uint64_t off,
	uint64_t len)
{
	atomic_fetch_add(&s->write_gen, 1);
	if (!s->inval_running)
		return;
	int wake = 0;
	for (int i = 0; i < s->nfiles; i++) {
		struct vf_file *f = &s->files[i];
		if (f == from || atomic_load(&f->opens) == 0)
			continue;
		if (off >= f->start + f->size || f->start >= off + len)
			continue;
		if (atomic_exchange(&f->inval, 1) == 0)
			wake = 1;
	}
	if (wake) {
		pthread_mutex_lock(&s->inval_lock);
		pthread_cond_signal(&s->inval_cond);
		pthread_mutex_unlock(&s->inval_lock);
	}
}

static void *
inval_main(void *arg)
{
	struct vf_state *s = arg;

	pthread_mutex_lock(&s->inval_lock);
	while (!s->inval_stop) {
		int any = 0;
		for (int i = 0; i < s->nfiles; i++) {
			if (atomic_exchange(&s->files[i].inval, 0) == 0)
				continue;
			any = 1;
			pthread_mutex_unlock(&s->inval_lock);
			/* -ENOENT when the kernel has forgotten the inode:
			 * then there is nothing cached either. */
			fuse_invalidate_path(s->fuse, s->files[i].path);
			pthread_mutex_lock(&s->inval_lock);
		}
		if (!any && !s->inval_stop)
			pthread_cond_wait(&s->inval_cond, &s->inval_lock);
	}
	pthread_mutex_unlock(&s->inval_lock);
	return NULL;
}

int
vf_inval_start(struct vf_state *s)
{
	if (s->nfiles < 2)
		return 0;       /* one file: nothing aliases */
	pthread_mutex_init(&s->inval_lock, NULL);
	pthread_cond_init(&s->inval_cond, NULL);
	int r = pthread_create(&s->inval_thread, NULL, inval_main, s);
	if (r != 0)
		return -r;
	s->inval_running = 1;
	return 0;
}

void
vf_inval_stop(struct vf_state *s)
{
	if (!s->inval_running)
		return;
	pthread_mutex_lock(&s->inval_lock);
	s->inval_stop = 1;
	pthread_cond_signal(&s->inval_cond);
	pthread_mutex_unlock(&s->inval_lock);
	pthread_join(s->inval_thread, NULL);
	s->inval_running = 0;
}

static void *
vf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct vf_state *s = state();

	/* Large requests: libfuse 3.14 already offers 1 MiB writes
	 * (max_pages = 256) and reads follow max_pages; nothing to ask. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	cfg->use_ino = 0;
	cfg->nullpath_ok = 0;
	cfg->direct_io = s->direct_io;
	return s;
}

static int
vf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct vf_state *s = state();

	memset(st, 0, sizeof(*st));
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_atim = s->atime;
	st->st_mtim = s->mtime;
	st->st_ctim = s->ctime;
	st->st_blksize = 4096;
	if (!s->file_mode && strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	struct vf_file *f = file_of(s, path, fi);
	if (!f)
		return -ENOENT;
	st->st_mode = S_IFREG | s->mode;
	st->st_nlink = 1;
	st->st_size = (off_t)f->size;
	st->st_blocks = (blkcnt_t)file_blocks(s, f);
	return 0;
}

static int
vf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
	   struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct vf_state *s = state();

	(void)off; (void)fi; (void)flags;
	if (s->file_mode || strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (int i = 0; i < s->nfiles; i++)
		if (fill(buf, s->files[i].name, NULL, 0, 0))
			break;
	return 0;
}

static int
vf_open(const char *path, struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = lookup(s, path);

	if (!f)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && s->readonly)
		return -EROFS;
	fi->fh = (uint64_t)(f - s->files);
	fi->direct_io = s->direct_io;
	/* With one file nobody else changes its bytes: cached pages stay
	 * valid across opens.  With partitions, a write through another
	 * file may have happened while this one was closed. */
	fi->keep_cache = s->nfiles == 1;
	atomic_fetch_add(&f->opens, 1);
	return 0;
}

static int
vf_release(const char *path, struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = file_of(s, path, fi);

	if (f)
		atomic_fetch_sub(&f->opens, 1);
	return 0;
}

static int
vf_read(const char *path, char *buf, size_t n, off_t off,
	struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = file_of(s, path, fi);

	if (!f)
		return -ENOENT;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->size || n == 0)
		return 0;
	if (n > f->size - (uint64_t)off)
		n = (size_t)(f->size - (uint64_t)off);
	if (n > INT_MAX)
		n = INT_MAX & ~(size_t)4095;
	int r = vhd_pread(s->v, buf, n, f->start + (uint64_t)off);
	return r < 0 ? r : (int)n;
}

static int
vf_write(const char *path, const char *buf, size_t n, off_t off,
	 struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = file_of(s, path, fi);

	if (!f)
		return -ENOENT;
	if (s->readonly)
		return -EROFS;
	if (off < 0)
		return -EINVAL;
	if (n == 0)
		return 0;
	/* A disk does not grow: like a block device, write what fits and
	 * report ENOSPC only when nothing does. */
	if ((uint64_t)off >= f->size)
		return -ENOSPC;
	if (n > f->size - (uint64_t)off)
		n = (size_t)(f->size - (uint64_t)off);
	if (n > INT_MAX)
		n = INT_MAX & ~(size_t)4095;
	int r = vhd_pwrite(s->v, buf, n, f->start + (uint64_t)off);
	if (r < 0)
		return r;
	changed(s, f, f->start + (uint64_t)off, n);
	return (int)n;
}

static int
vf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path; (void)datasync; (void)fi;
	return vhd_flush(state()->v);
}

static int
vf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = file_of(s, path, fi);

	if (!f)
		return -ENOENT;
	if (size >= 0 && (uint64_t)size == f->size)
		return 0;       /* O_TRUNC-free tools sometimes set the size */
	/* open(O_TRUNC) arrives as a size-0 setattr without a file handle
	 * (the kernel does not forward ATTR_OPEN).  A block device ignores
	 * O_TRUNC, so does the disk file: dd and cp onto it work, and the
	 * reply's attributes keep its size.  ftruncate() has a handle and
	 * is refused below. */
	if (size == 0 && !fi)
		return 0;
	if (s->readonly)
		return -EROFS;
	return -EINVAL;         /* the disk's size is fixed */
}

/* The set of files is fixed (the disk, or its partitions): creating,
 * removing or renaming is not permitted (read-only file system with
 * -r), never "not implemented". */
static int
fixed_set(void)
{
	return state()->readonly ? -EROFS : -EPERM;
}

static int
vf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path; (void)mode; (void)fi;
	return fixed_set();
}

static int
vf_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)path; (void)mode; (void)dev;
	return fixed_set();
}

static int
vf_mkdir(const char *path, mode_t mode)
{
	(void)path; (void)mode;
	return fixed_set();
}

static int
vf_unlink(const char *path)
{
	(void)path;
	return fixed_set();
}

static int
vf_rename(const char *from, const char *to, unsigned flags)
{
	(void)from; (void)to; (void)flags;
	return fixed_set();
}

static int
vf_symlink(const char *target, const char *path)
{
	(void)target; (void)path;
	return fixed_set();
}

static int
vf_link(const char *from, const char *to)
{
	(void)from; (void)to;
	return fixed_set();
}

static int
vf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path; (void)mode; (void)fi;
	return -EPERM;
}

static int
vf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path; (void)uid; (void)gid; (void)fi;
	return -EPERM;
}

static int
vf_utimens(const char *path, const struct timespec tv[2],
	   struct fuse_file_info *fi)
{
	/* Accepted and forgotten: the times shown are the image file's. */
	(void)path; (void)tv; (void)fi;
	return 0;
}

static int
vf_statfs(const char *path, struct statvfs *sv)
{
	struct vf_state *s = state();
	uint64_t used = file_blocks(s, &s->files[0]);
	uint64_t total = s->disk_size / 512;

	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 512;
	sv->f_blocks = total;
	sv->f_bfree = sv->f_bavail = used < total ? total - used : 0;
	sv->f_files = (fsfilcnt_t)s->nfiles + 1;
	sv->f_namemax = 255;
	if (s->readonly)
		sv->f_flag |= ST_RDONLY;
	return 0;
}

/* SEEK_DATA / SEEK_HOLE from the image's allocation map; a hole is a
 * range no image of the chain stores. */
static off_t
vf_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = file_of(s, path, fi);

	if (!f)
		return -ENOENT;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL; /* the kernel handles SET/CUR/END itself */
	if (off < 0 || (uint64_t)off >= f->size)
		return -ENXIO;
	uint64_t pos = (uint64_t)off;
	while (pos < f->size) {
		uint64_t run = 0;
		unsigned status = 0;
		int r = vhd_map(s->v, f->start + pos, f->size - pos, &run,
				&status, NULL);
		if (r < 0)
			return r;
		if (run == 0)
			return -EIO;
		int data = (status & VHD_MAP_DATA) != 0;
		if (data == (whence == SEEK_DATA))
			return (off_t)pos;
		pos += run;
	}
	return whence == SEEK_DATA ? -ENXIO : (off_t)f->size;
}

static int
vf_fallocate(const char *path, int mode, off_t off, off_t len,
	     struct fuse_file_info *fi)
{
	struct vf_state *s = state();
	struct vf_file *f = file_of(s, path, fi);
	int r;

	if (!f)
		return -ENOENT;
	if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) &&
	    mode != FALLOC_FL_ZERO_RANGE &&
	    mode != (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (s->readonly)
		return -EROFS;
	if (off < 0 || len <= 0)
		return -EINVAL;
	uint64_t o = (uint64_t)off, n = (uint64_t)len;
	if (o >= f->size || n > f->size - o) {
		/* The file cannot grow; with KEEP_SIZE the part past the
		 * end simply does not exist. */
		if (!(mode & FALLOC_FL_KEEP_SIZE))
			return -ENOSPC;
		if (o >= f->size)
			return 0;
		n = f->size - o;
	}
	if (mode & FALLOC_FL_PUNCH_HOLE)
		r = vhd_discard(s->v, f->start + o, n);
	else
		r = vhd_write_zeroes(s->v, f->start + o, n, 0);
	if (r < 0)
		return r;
	changed(s, f, f->start + o, n);
	return 0;
}

const struct fuse_operations vf_ops = {
	.init = vf_init,
	.getattr = vf_getattr,
	.readdir = vf_readdir,
	.open = vf_open,
	.release = vf_release,
	.read = vf_read,
	.write = vf_write,
	.fsync = vf_fsync,
	.truncate = vf_truncate,
	.create = vf_create,
	.mknod = vf_mknod,
	.mkdir = vf_mkdir,
	.unlink = vf_unlink,
	.rmdir = vf_unlink,
	.rename = vf_rename,
	.symlink = vf_symlink,
	.link = vf_link,
	.chmod = vf_chmod,
	.chown = vf_chown,
	.utimens = vf_utimens,
	.statfs = vf_statfs,
	.lseek = vf_lseek,
	.fallocate = vf_fallocate,
};
