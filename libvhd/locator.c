/*
 * locator.c - parent names and parent locators of differencing disks.
 *
 * A differencing disk finds its parent through the header's parent
 * locator entries (VHD specification, "Dynamic Disk Header Format") and
 * the header's parent unicode name.  Producers disagree on what goes in
 * them (REFERENCE.md 2.13): Hyper-V writes "C:\..." into W2ku and ".\name"
 * into W2ru, blktap writes "./name" into W2ku, W2ru and MacX alike, qemu
 * writes no locators at all and libvhdi only looks at the parent name.  So
 * we gather every plausible path, in a fixed order, and let the caller
 * pick the first one whose unique id matches.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "locator.h"
#include "compat.h"      /* strndup on Windows */
#include "internal.h"    /* the VFS */

/* Locator data longer than this is not a path: skip it. */
#define LOC_MAX_DATA (64u * 1024)

static uint32_t
ld_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
st_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void
vhd_locator_decode(const uint8_t raw[24], struct vhd_locator *l)
{
	l->code = ld_be32(raw);
	l->space = ld_be32(raw + 4);
	l->length = ld_be32(raw + 8);
	/* raw + 12: reserved */
	l->offset = (uint64_t)ld_be32(raw + 16) << 32 | ld_be32(raw + 20);
}

void
vhd_locator_encode(const struct vhd_locator *l, uint8_t raw[24])
{
	memset(raw, 0, 24);
	st_be32(raw, l->code);
	st_be32(raw + 4, l->space);
	st_be32(raw + 8, l->length);
	st_be32(raw + 16, (uint32_t)(l->offset >> 32));
	st_be32(raw + 20, (uint32_t)l->offset);
}

uint64_t
vhd_locator_extent(const struct vhd_locator *l)
{
	uint64_t ext;

	if (l->code == VHD_PLAT_NONE)
		return 0;
	/* The specification says the data space counts sectors; Hyper-V,
	 * VirtualBox and blktap write bytes (blktap's MICROSOFT_COMPAT note).
	 * A space at least as large as the data can only be bytes. */
	if (l->space >= l->length)
		ext = l->space;
	else
		ext = (uint64_t)l->space * VHD_SECTOR_SIZE;
	/* A damaged entry whose space is smaller than its data still
	 * occupies the data: never report less. */
	if (ext < l->length)
		ext = l->length;
	return ext;
}

/* ---- UTF-16 <-> UTF-8 --------------------------------------------------- */

static int
put_utf8(uint32_t cp, char *out, size_t out_size, size_t *pos)
{
	uint8_t b[4];
	size_t n, i;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xC0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xE0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xF0 | cp >> 18);
		b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		b[3] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 4;
	}
	/* keep room for the terminating NUL */
	if (*pos + n + 1 > out_size)
		return -ENAMETOOLONG;
	for (i = 0; i < n; i++)
		out[(*pos)++] = (char)b[i];
	return 0;
}

int
vhd_utf16_to_utf8(const uint8_t *in, size_t in_bytes, int big_endian,
		  char *out, size_t out_size)
{
	size_t i, pos = 0;
	int r;

	if (out_size == 0)
		return -ENAMETOOLONG;
	for (i = 0; i + 1 < in_bytes; i += 2) {
		uint32_t u = big_endian ? (uint32_t)in[i] << 8 | in[i + 1]
					: (uint32_t)in[i + 1] << 8 | in[i];
		if (u == 0)
			break;
		if (u >= 0xDC00 && u <= 0xDFFF)
			return -EBADMSG;        /* low surrogate first */
		if (u >= 0xD800 && u <= 0xDBFF) {
			uint32_t lo;

			if (i + 3 >= in_bytes)
				return -EBADMSG;
			lo = big_endian ? (uint32_t)in[i + 2] << 8 | in[i + 3]
					: (uint32_t)in[i + 3] << 8 | in[i + 2];
			if (lo < 0xDC00 || lo > 0xDFFF)
				return -EBADMSG;
			u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			i += 2;
		}
		r = put_utf8(u, out, out_size, &pos);
		if (r < 0)
			return r;
	}
	out[pos] = '\0';
	return (int)pos;
}

/* Decodes one UTF-8 sequence at s (NUL-terminated); returns its length
 * and the code point, or -EINVAL (overlong, surrogate, out of range,
 * truncated). */
static int
get_utf8(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	int n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		n = 2; c &= 0x1F; min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3; c &= 0x0F; min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4; c &= 0x07; min = 0x10000;
	} else {
		return -EINVAL;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -EINVAL;         /* also catches the NUL */
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -EINVAL;
	*cp = c;
	return n;
}

static void
put16(uint8_t *p, uint32_t u, int big_endian)
{
	if (big_endian) {
		p[0] = (uint8_t)(u >> 8);
		p[1] = (uint8_t)u;
	} else {
		p[0] = (uint8_t)u;
		p[1] = (uint8_t)(u >> 8);
	}
}

int
vhd_utf8_to_utf16(const char *in, int big_endian, uint8_t *out,
		  size_t out_size)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pos = 0;

	while (*s) {
		uint32_t cp;
		int n = get_utf8(s, &cp);

		if (n < 0)
			return n;
		s += n;
		if (cp >= 0x10000) {
			if (pos + 4 > out_size)
				return -ENAMETOOLONG;
			cp -= 0x10000;
			put16(out + pos, 0xD800 | cp >> 10, big_endian);
			put16(out + pos + 2, 0xDC00 | (cp & 0x3FF), big_endian);
			pos += 4;
		} else {
			if (pos + 2 > out_size)
				return -ENAMETOOLONG;
			put16(out + pos, cp, big_endian);
			pos += 2;
		}
		if (pos > INT_MAX - 4)
			return -ENAMETOOLONG;
	}
	return (int)pos;
}

/* ---- Parent candidates -------------------------------------------------- */

struct cands {
	char **out;
	int n;
	int err;                /* first allocation failure */
};

/* Lexically cleans a path in place: '\' -> '/', repeated '/' and "."
 * components removed.  ".." is kept: resolving it is the kernel's job
 * (symbolic links). */
static void
clean_path(char *p)
{
	char *r = p, *w = p;
	int abs = (*p == '/');

	for (char *q = p; *q; q++)
		if (*q == '\\')
			*q = '/';
	if (abs)
		*w++ = *r++;
	while (*r) {
		char *end = strchr(r, '/');
		size_t len = end ? (size_t)(end - r) : strlen(r);

		if (len == 0 || (len == 1 && r[0] == '.')) {
			r += len + (end != NULL);
			continue;
		}
		if (w > p && w[-1] != '/')
			*w++ = '/';
		memmove(w, r, len);
		w += len;
		r += len + (end != NULL);
	}
	if (w == p)
		*w++ = '.';
	*w = '\0';
}

static void
add_cand(struct cands *c, char *path)   /* takes ownership of path */
{
	int i;

	if (path == NULL) {
		c->err = -ENOMEM;
		return;
	}
	clean_path(path);
	for (i = 0; i < c->n; i++)
		if (strcmp(c->out[i], path) == 0)
			break;
	if (i < c->n || c->n >= VHD_MAX_PARENT_CANDIDATES || path[0] == '\0') {
		free(path);
		return;
	}
	c->out[c->n++] = path;
}

static char *
join(const char *dir, size_t dir_len, const char *name)
{
	size_t nlen = strlen(name);
	char *p = malloc(dir_len + nlen + 2);

	if (p == NULL)
		return NULL;
	memcpy(p, dir, dir_len);
	p[dir_len] = '/';
	memcpy(p + dir_len + 1, name, nlen + 1);
	return p;
}

/* The child's directory: everything before the last '/' of its path. */
static void
child_dir(const char *child_path, const char **dir, size_t *len)
{
	const char *slash = child_path ? strrchr(child_path, '/') : NULL;

	if (slash == NULL) {
		*dir = ".";
		*len = 1;
	} else if (slash == child_path) {
		*dir = "/";
		*len = 1;
	} else {
		*dir = child_path;
		*len = (size_t)(slash - child_path);
	}
}

static const char *
base_name(const char *p)
{
	const char *b = p;

	for (; *p; p++)
		if (*p == '/' || *p == '\\')
			b = p + 1;
	return b;
}

/* Adds the candidates for one decoded path (UTF-8, any separators). */
static void
add_path(struct cands *c, const char *child_path, const char *path)
{
	const char *dir;
	size_t dlen;

	child_dir(child_path, &dir, &dlen);
	if (path[0] == '\0')
		return;
	if ((((path[0] | 0x20) >= 'a' && (path[0] | 0x20) <= 'z') &&
	     path[1] == ':') ||
	    (path[0] == '\\' && path[1] == '\\')) {
		/* Windows absolute (C:\dir\p.vhd) or UNC (\\host\share\p.vhd):
		 * meaningless here, but the parent often travelled along
		 * with the child, so look for its name next to the child.
		 * On Windows it is a real path: try it first. */
		const char *b = base_name(path);

		if (VHD_DRIVE_PATHS)
			add_cand(c, strdup(path));
		if (*b)
			add_cand(c, join(dir, dlen, b));
		return;
	}
	if (path[0] == '/' || path[0] == '\\')
		add_cand(c, strdup(path));
	else
		add_cand(c, join(dir, dlen, path));
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)(ch | 0x20);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* MacX: a UTF-8 file:// URL, percent-encoded.  blktap writes
 * "file://./name" (relative), Virtual PC for Mac "file://localhost/path"
 * or "file:///path". */
static void
add_macx(struct cands *c, const char *child_path, char *s)
{
	char *r, *w;

	if (strncmp(s, "file://", 7) == 0) {
		char *slash;

		s += 7;
		/* "file://host/path": the path is absolute on that host (we
		 * can only hope it is this one); blktap's "file://./name" and
		 * a bare "file://name" are relative. */
		slash = strchr(s, '/');
		if (slash && slash != s && strncmp(s, "./", 2) != 0 &&
		    strncmp(s, "../", 3) != 0)
			s = slash;
	}
	for (r = w = s; *r; r++) {
		int hi, lo;

		if (*r == '%' && (hi = hexval(r[1])) >= 0 &&
		    (lo = hexval(r[2])) >= 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	if (strlen(s) != (size_t)(w - s))
		return;                 /* %00 inside: not a path */
	add_path(c, child_path, s);
}

/* Wi2r/Wi2k: "ANSI" bytes.  Valid UTF-8 is taken as it is; anything
 * else is read as Latin-1 (the code page is unknown). */
static void
add_ansi(struct cands *c, const char *child_path, const uint8_t *data,
	 size_t len)
{
	size_t n = 0, i;
	char *s;
	const unsigned char *p;
	int utf8 = 1;

	while (n < len && data[n])
		n++;
	s = malloc(2 * n + 1);
	if (s == NULL) {
		c->err = -ENOMEM;
		return;
	}
	memcpy(s, data, n);
	s[n] = '\0';
	for (p = (const unsigned char *)s; *p;) {
		uint32_t cp;
		int k = get_utf8(p, &cp);

		if (k < 0) {
			utf8 = 0;
			break;
		}
		p += k;
	}
	if (!utf8) {
		size_t pos = 0;

		for (i = 0; i < n; i++) {
			if (data[i] < 0x80) {
				s[pos++] = (char)data[i];
			} else {
				s[pos++] = (char)(0xC0 | data[i] >> 6);
				s[pos++] = (char)(0x80 | (data[i] & 0x3F));
			}
		}
		s[pos] = '\0';
	}
	add_path(c, child_path, s);
	free(s);
}

/* "Mac " entries hold a classic Mac OS alias record (Virtual PC for Mac).
 * We take the target's file name (a Pascal string at offset 50 of a
 * version 2 record) and look for it next to the child; the rest of the
 * record (volume and folder ids) cannot be resolved here. */
static void
add_mac_alias(struct cands *c, const char *child_path, const uint8_t *data,
	      size_t len)
{
	char name[64];
	size_t n;
	const char *dir;
	size_t dlen;

	if (len < 50 + 64 || (data[6] << 8 | data[7]) != 2)
		return;
	n = data[50];
	if (n == 0 || n > 63)
		return;
	memcpy(name, data + 51, n);
	name[n] = '\0';
	if (strlen(name) != n || strchr(name, '/') || strcmp(name, "..") == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] >= 0x80)
			return;         /* MacRoman: leave it */
	child_dir(child_path, &dir, &dlen);
	add_cand(c, join(dir, dlen, name));
}

static void
add_locator(struct cands *c, struct vhd_io *io, uint64_t file_size,
	    const struct vhd_locator *l, const char *child_path)
{
	uint8_t *data;
	char *s;
	size_t s_size;

	if (l->length == 0 || l->length > LOC_MAX_DATA ||
	    l->offset > file_size || l->length > file_size - l->offset)
		return;
	data = malloc(l->length);
	if (data == NULL) {
		c->err = -ENOMEM;
		return;
	}
	if (io->ops->pread(io, data, l->length, l->offset) < 0) {
		free(data);
		return;
	}
	switch (l->code) {
	case VHD_PLAT_W2RU:
	case VHD_PLAT_W2KU:
		/* each UTF-16 unit yields at most 3 UTF-8 bytes */
		s_size = (size_t)l->length / 2 * 3 + 1;
		s = malloc(s_size);
		if (s == NULL) {
			c->err = -ENOMEM;
			break;
		}
		if (vhd_utf16_to_utf8(data, l->length, 0, s, s_size) >= 0)
			add_path(c, child_path, s);
		free(s);
		break;
	case VHD_PLAT_WI2R:
	case VHD_PLAT_WI2K:
		add_ansi(c, child_path, data, l->length);
		break;
	case VHD_PLAT_MACX:
		s = malloc((size_t)l->length + 1);
		if (s == NULL) {
			c->err = -ENOMEM;
			break;
		}
		memcpy(s, data, l->length);
		s[l->length] = '\0';
		add_macx(c, child_path, s);
		free(s);
		break;
	case VHD_PLAT_MAC:
		add_mac_alias(c, child_path, data, l->length);
		break;
	}
	free(data);
}

int
vhd_parent_candidates(struct vhd_io *io, uint64_t file_size,
		      const uint8_t hdr[1024], const char *child_path,
		      char *out[VHD_MAX_PARENT_CANDIDATES])
{
	static const uint32_t order[] = {
		VHD_PLAT_W2RU, VHD_PLAT_WI2R, VHD_PLAT_W2KU, VHD_PLAT_WI2K,
		VHD_PLAT_MACX, VHD_PLAT_MAC,
	};
	struct cands c = { out, 0, 0 };
	char name[256 * 3 + 1];
	size_t k;
	int i;

	for (k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		for (i = 0; i < 8 && !c.err; i++) {
			struct vhd_locator l;

			vhd_locator_decode(hdr + 576 + 24 * i, &l);
			if (l.code == order[k])
				add_locator(&c, io, file_size, &l, child_path);
		}
	}
	/* Last, the header's parent name (UTF-16BE): its last component in
	 * the child's directory, which is all libvhdi looks at. */
	if (!c.err && vhd_utf16_to_utf8(hdr + 64, 512, 1, name, sizeof(name)) > 0) {
		const char *b = base_name(name);
		const char *dir;
		size_t dlen;

		child_dir(child_path, &dir, &dlen);
		if (*b && strcmp(b, ".") != 0 && strcmp(b, "..") != 0)
			add_cand(&c, join(dir, dlen, b));
	}
	if (c.err) {
		for (i = 0; i < c.n; i++) {
			free(out[i]);
			out[i] = NULL;
		}
		return c.err;
	}
	return c.n;
}

int
vhd_parent_candidates_from(const char *child_path, const char *const *paths,
			   int npaths, char *out[VHD_MAX_PARENT_CANDIDATES],
			   int n)
{
	struct cands c = { out, n, 0 };

	for (int i = 0; i < npaths && !c.err; i++)
		if (paths[i] && paths[i][0])
			add_path(&c, child_path, paths[i]);
	if (c.err) {
		for (int i = n; i < c.n; i++) {
			free(out[i]);
			out[i] = NULL;
		}
		return c.err;
	}
	return c.n;
}

/* ---- Building locators for a new child ----------------------------------- */

/* An absolute, lexically clean version of path (which may not exist yet):
 * the VFS's realpath of it, else of its directory plus its last component.
 * NULL with errno set on failure. */
static char *
abs_path(struct vhd_vfs *vfs, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real, *res;
	const char *base;
	int r;

	if (vhd_vfs_realpath(vfs, path, &real) == 0)
		return real;
	if (slash == NULL) {
		dir = strdup(".");
		base = path;
	} else if (slash == path) {
		dir = strdup("/");
		base = slash + 1;
	} else {
		dir = strndup(path, (size_t)(slash - path));
		base = slash + 1;
	}
	if (dir == NULL)
		return NULL;
	r = vhd_vfs_realpath(vfs, dir, &real);
	free(dir);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	res = join(real, strlen(real), base);
	free(real);
	if (res)
		clean_path(res);
	return res;
}

/* The path of target relative to directory dir (both absolute and clean),
 * with '\' separators and a leading ".\". */
static char *
rel_path(const char *dir, const char *target)
{
	size_t i = 0, common, ups = 0, len;
	const char *rest, *q;
	char *res, *w;

	if (strcmp(dir, "/") == 0) {
		common = 1;
	} else {
		while (dir[i] && dir[i] == target[i])
			i++;
		if (dir[i] == '\0' && target[i] == '/') {
			common = i + 1;         /* target lies below dir */
		} else {
			while (i > 0 && dir[i - 1] != '/')
				i--;            /* back to a component start */
			common = i;
		}
	}
	if (common <= strlen(dir) && dir[common] != '\0') {
		ups = 1;
		for (q = dir + common; *q; q++)
			ups += (*q == '/');
	}
	rest = target + common;
	len = 2 + 3 * ups + strlen(rest) + 1;
	res = malloc(len);
	if (res == NULL)
		return NULL;
	w = res;
	*w++ = '.';
	*w++ = '\\';
	for (i = 0; i < ups; i++) {
		memcpy(w, "..\\", 3);
		w += 3;
	}
	for (; *rest; rest++)
		*w++ = *rest == '/' ? '\\' : *rest;
	*w = '\0';
	return res;
}

int
vhd_locators_build(const char *child_path, const char *parent_path,
		   uint8_t hdr[1024], uint64_t data_off,
		   uint8_t **blob, size_t *blob_len)
{
	return vhd_locators_build_vfs(NULL, child_path, parent_path, hdr,
				      data_off, blob, blob_len);
}

int
vhd_locators_build_vfs(struct vhd_vfs *vfs, const char *child_path,
		       const char *parent_path, uint8_t hdr[1024],
		       uint64_t data_off, uint8_t **blob, size_t *blob_len)
{
	char *pabs = NULL, *cabs = NULL, *rel = NULL;
	uint8_t *buf = NULL, *u_abs = NULL, *u_rel = NULL;
	const char *name;
	int n_abs, n_rel, n_name, r;
	size_t sz_abs, sz_rel, u_size;
	struct vhd_locator l;
	char *slash;

	if (child_path == NULL || parent_path == NULL || data_off % 512)
		return -EINVAL;
	errno = 0;
	pabs = abs_path(vfs, parent_path);
	cabs = abs_path(vfs, child_path);
	if (pabs == NULL || cabs == NULL) {
		r = errno ? -errno : -ENOMEM;
		goto fail;
	}
	slash = strrchr(cabs, '/');
	if (slash == cabs)
		slash[1] = '\0';        /* child in "/" */
	else
		*slash = '\0';
	rel = rel_path(cabs, pabs);
	u_size = 2 * 2 * (strlen(pabs) + 1);    /* generous */
	u_abs = malloc(u_size);
	u_rel = malloc(2 * 2 * (strlen(rel ? rel : "") + 1));
	if (rel == NULL || u_abs == NULL || u_rel == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	n_abs = vhd_utf8_to_utf16(pabs, 0, u_abs, u_size);
	n_rel = vhd_utf8_to_utf16(rel, 0, u_rel, 2 * 2 * (strlen(rel) + 1));
	if (n_abs < 0 || n_rel < 0) {
		r = n_abs < 0 ? n_abs : n_rel;
		goto fail;
	}
	if ((size_t)n_abs > LOC_MAX_DATA || (size_t)n_rel > LOC_MAX_DATA) {
		r = -ENAMETOOLONG;
		goto fail;
	}

	/* parent unicode name: the file name, UTF-16BE, NUL-padded */
	name = base_name(pabs);
	memset(hdr + 64, 0, 512);
	n_name = vhd_utf8_to_utf16(name, 1, hdr + 64, 512);
	if (n_name < 0) {
		r = n_name;
		goto fail;
	}

	sz_abs = ((size_t)n_abs + 511) / 512 * 512;
	sz_rel = ((size_t)n_rel + 511) / 512 * 512;
	buf = calloc(1, sz_abs + sz_rel);
	if (buf == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(buf, u_abs, (size_t)n_abs);
	memcpy(buf + sz_abs, u_rel, (size_t)n_rel);

	memset(hdr + 576, 0, 8 * 24);
	l.code = VHD_PLAT_W2KU;
	l.space = (uint32_t)sz_abs;
	l.length = (uint32_t)n_abs;
	l.offset = data_off;
	vhd_locator_encode(&l, hdr + 576);
	l.code = VHD_PLAT_W2RU;
	l.space = (uint32_t)sz_rel;
	l.length = (uint32_t)n_rel;
	l.offset = data_off + sz_abs;
	vhd_locator_encode(&l, hdr + 576 + 24);

	*blob = buf;
	*blob_len = sz_abs + sz_rel;
	buf = NULL;
	r = 0;
fail:
	free(pabs);
	free(cabs);
	free(rel);
	free(u_abs);
	free(u_rel);
	free(buf);
	return r;
}
