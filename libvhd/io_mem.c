/* io_mem.c - a growable in-memory file (tests, fuzzing), and an
 * in-memory namespace of them: the "mem" VFS (vhd_vfs_mem_new). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "internal.h"

/* Both kinds of memory io start with io and kind. */
enum { MEM_FILE, MEM_HANDLE };

struct io_mem {
	struct vhd_io io;
	int kind;               /* MEM_FILE */
	uint8_t *data;
	size_t size, cap;
	pthread_mutex_t lock;
	/* In a namespace (guarded by the namespace's lock): */
	char *name;             /* NULL once unlinked */
	uint64_t id;
	int refs;               /* open handles */
	int held[4];            /* handles holding each VHD_LOCK_* */
	int64_t mtime;
};

/* A handle of the "mem" VFS on a shared file. */
struct mem_vfs;
struct mem_handle {
	struct vhd_io io;
	int kind;               /* MEM_HANDLE */
	struct mem_vfs *ns;
	struct io_mem *f;
	int rdwr, lock;
	char *name;
};

static void h_close(struct mem_handle *h);

/* The file behind io: an io_mem itself, or a "mem" VFS handle's file
 * (NULL when a write comes through a read-only handle). */
static struct io_mem *
mem_file(struct vhd_io *io, int write)
{
	struct mem_handle *h = (struct mem_handle *)io;

	if (((struct io_mem *)io)->kind == MEM_FILE)
		return (struct io_mem *)io;
	return write && !h->rdwr ? NULL : h->f;
}

static int
m_reserve(struct io_mem *m, uint64_t size)
{
	if (size > SIZE_MAX / 2)
		return -ENOSPC;
	if (size <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap < size)
		cap *= 2;
	uint8_t *d = realloc(m->data, cap);
	if (!d)
		return -ENOMEM;
	memset(d + m->cap, 0, cap - m->cap);
	m->data = d;
	m->cap = cap;
	return 0;
}

static int
m_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct io_mem *m = mem_file(io, 0);
	int r = 0;

	pthread_mutex_lock(&m->lock);
	if (off > m->size || n > m->size - off)
		r = -EIO;
	else
		memcpy(buf, m->data + off, n);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int
m_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct io_mem *m = mem_file(io, 1);
	int r;

	if (!m)
		return -EBADF;
	if (off > SIZE_MAX / 2 || n > SIZE_MAX / 2 - off)
		return -ENOSPC;     /* off + n would wrap */
	pthread_mutex_lock(&m->lock);
	r = m_reserve(m, off + n);
	if (r == 0) {
		memcpy(m->data + off, buf, n);
		if (off + n > m->size)
			m->size = (size_t)(off + n);
		m->mtime = (int64_t)time(NULL);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int
m_flush(struct vhd_io *io)
{
	(void)io;
	return 0;
}

static int
m_get_size(struct vhd_io *io, uint64_t *size)
{
	struct io_mem *m = mem_file(io, 0);

	pthread_mutex_lock(&m->lock);
	*size = m->size;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
m_truncate(struct vhd_io *io, uint64_t size)
{
	struct io_mem *m = mem_file(io, 1);
	int r;

	if (!m)
		return -EBADF;
	pthread_mutex_lock(&m->lock);
	r = m_reserve(m, size);
	if (r == 0) {
		if (size < m->size)
			memset(m->data + size, 0, m->size - size);
		m->size = (size_t)size;
		m->mtime = (int64_t)time(NULL);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int
m_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
	struct io_mem *m = mem_file(io, 1);

	if (!m)
		return -EBADF;
	pthread_mutex_lock(&m->lock);
	if (off < m->size) {
		if (n > m->size - off)
			n = m->size - off;
		memset(m->data + off, 0, (size_t)n);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void
m_close(struct vhd_io *io)
{
	struct io_mem *m = (struct io_mem *)io;

	if (!m)
		return;
	if (m->kind == MEM_HANDLE) {
		h_close((struct mem_handle *)io);
		return;
	}
	pthread_mutex_destroy(&m->lock);
	free(m->data);
	free(m);
}

static const struct vhd_io_ops mem_ops = {
	.version = VHD_IO_OPS_VERSION,
	.pread = m_pread,
	.pwrite = m_pwrite,
	.flush = m_flush,
	.get_size = m_get_size,
	.truncate = m_truncate,
	.punch = m_punch,
	.close = m_close,
};

int
vhd_io_mem_open(struct vhd_io **out, const void *data, size_t n)
{
	struct io_mem *m = calloc(1, sizeof(*m));

	if (!m)
		return vhd_err(ENOMEM, "no memory");
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return vhd_err(ENOMEM, "no memory");
	}
	if (n && (m_reserve(m, n) < 0)) {
		m_close(&m->io);
		return vhd_err(ENOMEM, "no memory");
	}
	if (n)
		memcpy(m->data, data, n);
	m->size = n;
	m->io.ops = &mem_ops;
	m->io.name = "memory";
	*out = &m->io;
	return 0;
}

/* ---- The "mem" VFS: named files in memory ---------------------------------
 * Each open gives a handle of its own (struct mem_handle) on the shared
 * file; locks follow QEMU's permissions as on disk (io_file.c), without
 * waiting: a conflict fails at once with -EBUSY. */
struct mem_vfs {
	struct vhd_vfs vfs;
	pthread_mutex_t lock;
	struct io_mem **files;
	size_t n, cap;
	uint64_t next_id;
};

/* What each lock mode holds and keeps others from holding (io_file.c's
 * lock_modes: bit 0 consistent read, 1 write, 3 resize). */
static const struct { unsigned perm, unshared; } mem_modes[4] = {
	[VHD_LOCK_READ]  = { 0x1, 0xa },
	[VHD_LOCK_WRITE] = { 0xb, 0xa },
	[VHD_LOCK_PEEK]  = { 0x1, 0x0 },
};

/* "/a/./b//c/../d" -> "a/b/d" (malloc'd), or NULL. */
static char *
mem_clean(const char *name)
{
	size_t len = strlen(name);
	char *out = malloc(len + 1), *w = out;
	const char *p = name;

	if (!out)
		return NULL;
	while (*p) {
		const char *e = p;
		while (*e && *e != '/' && *e != '\\')
			e++;
		size_t k = (size_t)(e - p);
		if (k == 0 || (k == 1 && p[0] == '.')) {
			/* nothing */
		} else if (k == 2 && p[0] == '.' && p[1] == '.') {
			while (w > out && w[-1] != '/')
				w--;
			if (w > out)
				w--;
		} else {
			if (w > out)
				*w++ = '/';
			memcpy(w, p, k);
			w += k;
		}
		p = *e ? e + 1 : e;
	}
	*w = 0;
	return out;
}

/* The file named clean, or NULL; ns->lock held. */
static struct io_mem *
mem_find(struct mem_vfs *ns, const char *clean, size_t *at)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->files[i]->name, clean) == 0) {
			if (at)
				*at = i;
			return ns->files[i];
		}
	return NULL;
}

static void
mem_free_file(struct io_mem *m)
{
	pthread_mutex_destroy(&m->lock);
	free(m->data);
	free(m->name);
	free(m);
}

static int
mem_conflict(const struct io_mem *m, int lock)
{
	for (int k = 1; k < 4; k++)
		if (m->held[k] &&
		    ((mem_modes[lock].perm & mem_modes[k].unshared) ||
		     (mem_modes[k].perm & mem_modes[lock].unshared)))
			return 1;
	return 0;
}

static void
h_close(struct mem_handle *h)
{
	struct mem_vfs *ns = h->ns;

	pthread_mutex_lock(&ns->lock);
	h->f->held[h->lock]--;
	if (--h->f->refs == 0 && !h->f->name)
		mem_free_file(h->f);
	pthread_mutex_unlock(&ns->lock);
	free(h->name);
	free(h);
}

/* A handle of this namespace? */
static struct mem_handle *
handle_of(struct mem_vfs *ns, struct vhd_io *io)
{
	struct mem_handle *h = (struct mem_handle *)io;

	if (!io || io->ops != &mem_ops || h->kind != MEM_HANDLE || h->ns != ns)
		return NULL;
	return h;
}

static int
mv_open(struct vhd_vfs *vfs, const char *name, unsigned flags, int lock,
	struct vhd_io **out)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;
	struct mem_handle *h = calloc(1, sizeof(*h));
	char *clean = mem_clean(name);
	struct io_mem *m;
	int r = 0;

	if (lock < 0 || lock > VHD_LOCK_PEEK)
		lock = VHD_LOCK_NONE;
	if (!h || !clean || !(h->name = strdup(name))) {
		r = vhd_err(ENOMEM, "'%s': no memory", name);
		goto fail;
	}
	pthread_mutex_lock(&ns->lock);
	m = *clean ? mem_find(ns, clean, NULL) : NULL;
	if (m && (flags & VHD_IO_CREATE)) {
		r = vhd_err(EEXIST, "'%s': %s", name, strerror(EEXIST));
	} else if (!m && !(flags & VHD_IO_CREATE)) {
		r = vhd_err(ENOENT, "'%s': %s", name, strerror(ENOENT));
	} else if (!*clean) {
		r = vhd_err(EISDIR, "'%s': %s", name, strerror(EISDIR));
	} else if (m && lock && mem_conflict(m, lock)) {
		r = vhd_err(EBUSY, "'%s': in use by another user of the "
			    "memory VFS", name);
	} else if (!m) {
		if (ns->n == ns->cap) {
			size_t cap = ns->cap ? 2 * ns->cap : 16;
			struct io_mem **f = realloc(ns->files,
						    cap * sizeof(*f));
			if (!f)
				r = vhd_err(ENOMEM, "'%s': no memory", name);
			else {
				ns->files = f;
				ns->cap = cap;
			}
		}
		if (r == 0 && (m = calloc(1, sizeof(*m))) &&
		    pthread_mutex_init(&m->lock, NULL) != 0) {
			free(m);
			m = NULL;
		}
		if (r == 0 && !m)
			r = vhd_err(ENOMEM, "'%s': no memory", name);
		if (r == 0) {
			m->io.ops = &mem_ops;
			m->io.name = "memory";
			m->name = clean;
			clean = NULL;
			m->id = ++ns->next_id;
			m->mtime = (int64_t)time(NULL);
			ns->files[ns->n++] = m;
		}
	}
	if (r == 0) {
		m->refs++;
		m->held[lock]++;
		h->f = m;
	}
	pthread_mutex_unlock(&ns->lock);
	if (r < 0)
		goto fail;
	free(clean);
	h->io.ops = &mem_ops;
	h->kind = MEM_HANDLE;
	h->io.name = h->name;
	h->ns = ns;
	h->lock = lock;
	h->rdwr = (flags & (VHD_IO_RDWR | VHD_IO_CREATE)) != 0;
	*out = &h->io;
	return 0;
fail:
	free(clean);
	if (h)
		free(h->name);
	free(h);
	return r;
}

static int
mv_lock(struct vhd_vfs *vfs, struct vhd_io *io, int lock)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;
	struct mem_handle *h = handle_of(ns, io);
	int r = 0;

	if (!h)
		return vhd_err(EINVAL, "'%s': not a file of this VFS",
			       io && io->name ? io->name : "?");
	if (lock < VHD_LOCK_NONE || lock > VHD_LOCK_PEEK)
		return vhd_err(EINVAL, "'%s': no lock mode %d", io->name, lock);
	pthread_mutex_lock(&ns->lock);
	if (h->lock)
		r = vhd_err(EINVAL, "'%s': already locked", io->name);
	else if (lock && mem_conflict(h->f, lock))
		r = vhd_err(EBUSY, "'%s': in use by another user of the "
			    "memory VFS", io->name);
	else {
		h->f->held[h->lock]--;
		h->f->held[lock]++;
		h->lock = lock;
	}
	pthread_mutex_unlock(&ns->lock);
	return r;
}

static int
mv_identity(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2])
{
	struct mem_handle *h = handle_of((struct mem_vfs *)vfs, io);

	if (!h)
		return 0;
	id[0] = (uint64_t)(uintptr_t)vfs;
	id[1] = h->f->id;
	return 1;
}

/* "/" and the clean name of an existing file. */
static int
mv_realpath(struct vhd_vfs *vfs, const char *name, char **out)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;
	char *clean = mem_clean(name);
	int found;

	if (!clean)
		return -ENOMEM;
	pthread_mutex_lock(&ns->lock);
	found = *clean && mem_find(ns, clean, NULL);
	pthread_mutex_unlock(&ns->lock);
	/* A name may be a directory of others: "a" for "a/b". */
	if (!found && *clean) {
		size_t k = strlen(clean);
		pthread_mutex_lock(&ns->lock);
		for (size_t i = 0; i < ns->n && !found; i++)
			found = strncmp(ns->files[i]->name, clean, k) == 0 &&
				ns->files[i]->name[k] == '/';
		pthread_mutex_unlock(&ns->lock);
	}
	if (!found && *clean) {
		free(clean);
		return -ENOENT;
	}
	*out = malloc(strlen(clean) + 2);
	if (*out)
		sprintf(*out, "/%s", clean);
	free(clean);
	return *out ? 0 : -ENOMEM;
}

static int
mv_mtime(struct vhd_vfs *vfs, const char *name, int64_t *secs)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;
	char *clean = mem_clean(name);
	struct io_mem *m;

	if (!clean)
		return -ENOMEM;
	pthread_mutex_lock(&ns->lock);
	if ((m = mem_find(ns, clean, NULL)))
		*secs = m->mtime;
	pthread_mutex_unlock(&ns->lock);
	free(clean);
	return m ? 0 : -ENOENT;
}

static int
mv_random(struct vhd_vfs *vfs, void *buf, size_t n)
{
	struct vhd_vfs *p = vhd_vfs_platform();

	(void)vfs;
	return p->randomness(p, buf, n);
}

static int
mv_unlink(struct vhd_vfs *vfs, const char *name)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;
	char *clean = mem_clean(name);
	struct io_mem *m;
	size_t at;

	if (!clean)
		return -ENOMEM;
	pthread_mutex_lock(&ns->lock);
	if ((m = mem_find(ns, clean, &at))) {
		ns->files[at] = ns->files[--ns->n];
		free(m->name);
		m->name = NULL;
		if (m->refs == 0)
			mem_free_file(m);
	}
	pthread_mutex_unlock(&ns->lock);
	free(clean);
	return m ? 0 : -ENOENT;
}

static int
mv_rename(struct vhd_vfs *vfs, const char *from, const char *to)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;
	char *cf = mem_clean(from), *ct = mem_clean(to);
	struct io_mem *m;
	int r = 0;

	if (!cf || !ct) {
		free(cf);
		free(ct);
		return -ENOMEM;
	}
	if (!*ct) {
		free(cf);
		free(ct);
		return -EISDIR;
	}
	pthread_mutex_lock(&ns->lock);
	if (!(m = mem_find(ns, cf, NULL))) {
		r = -ENOENT;
	} else if (strcmp(cf, ct) != 0) {
		struct io_mem *old;
		size_t at;
		if ((old = mem_find(ns, ct, &at))) {    /* replaced */
			ns->files[at] = ns->files[--ns->n];
			free(old->name);
			old->name = NULL;
			if (old->refs == 0)
				mem_free_file(old);
		}
		free(m->name);
		m->name = ct;
		ct = NULL;
	}
	pthread_mutex_unlock(&ns->lock);
	free(cf);
	free(ct);
	return r;
}

int
vhd_vfs_mem_new(struct vhd_vfs **out)
{
	struct mem_vfs *ns;

	if (!out)
		return vhd_err(EINVAL, "vhd_vfs_mem_new: bad arguments");
	if (!(ns = calloc(1, sizeof(*ns))))
		return vhd_err(ENOMEM, "no memory");
	if (pthread_mutex_init(&ns->lock, NULL) != 0) {
		free(ns);
		return vhd_err(ENOMEM, "no memory");
	}
	ns->vfs.version = VHD_VFS_VERSION;
	ns->vfs.name = "mem";
	ns->vfs.data = ns;
	ns->vfs.open_name = mv_open;
	ns->vfs.lock = mv_lock;
	ns->vfs.identity = mv_identity;
	ns->vfs.full_name = mv_realpath;
	ns->vfs.mtime = mv_mtime;
	ns->vfs.randomness = mv_random;
	ns->vfs.rename_name = mv_rename;
	ns->vfs.delete_name = mv_unlink;
	*out = &ns->vfs;
	return 0;
}

void
vhd_vfs_mem_free(struct vhd_vfs *vfs)
{
	struct mem_vfs *ns = (struct mem_vfs *)vfs;

	if (!vfs || vfs->open_name != mv_open)
		return;
	for (size_t i = 0; i < ns->n; i++)
		if (ns->files[i]->refs)
			return;         /* files open: kept (caller's error) */
	for (size_t i = 0; i < ns->n; i++) {
		struct io_mem *m = ns->files[i];
		free(m->name);
		m->name = NULL;
		if (m->refs == 0)
			mem_free_file(m);
	}
	free(ns->files);
	pthread_mutex_destroy(&ns->lock);
	free(ns);
}

const uint8_t *
vhd_io_mem_data(struct vhd_io *io, size_t *n)
{
	struct io_mem *m;

	if (!io || io->ops != &mem_ops) {
		if (n)
			*n = 0;
		return NULL;
	}
	m = mem_file(io, 0);    /* its own, or a "mem" VFS file's */
	if (n)
		*n = m->size;
	return m->data;
}
