/*
 * win_posix.h - the POSIX calls some unit tests make, for their Windows
 * (mingw-w64) build only: force-included with -include by
 * scripts/portability.sh.  Test code only; the library has its own
 * Windows backend (libvhd/io_win32.c).
 */
#ifndef VHD_WIN_POSIX_H
#define VHD_WIN_POSIX_H
#ifdef _WIN32
#ifndef _CRT_RAND_S
#define _CRT_RAND_S             /* rand_s() */
#endif
#include <direct.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* The library's own realpath for Windows (libvhd/io_win32.c). */
char *vhd_compat_realpath(const char *path, char *resolved);
#define realpath(p, r) vhd_compat_realpath((p), (r))

/* POSIX rename replaces an existing target; Windows' refuses. */
int __stdcall MoveFileExA(const char *from, const char *to, unsigned long fl);
static inline int
win_posix_rename(const char *from, const char *to)
{
	if (MoveFileExA(from, to, 0x1 /* MOVEFILE_REPLACE_EXISTING */))
		return 0;
	errno = EACCES;
	return -1;
}
#define rename(a, b) win_posix_rename((a), (b))

/* Windows' mkdir takes no mode. */
#define mkdir(p, m) _mkdir(p)

/* Binary mode, or every '\n' written becomes "\r\n". */
#define open(...) win_posix_open(__VA_ARGS__)
static inline int
win_posix_open(const char *path, int flags, ...)
{
	return _open(path, flags | _O_BINARY, 0644);
}

static inline char *
mkdtemp(char *tmpl)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t len = strlen(tmpl);
	int tries;

	if (len < 6 || strcmp(tmpl + len - 6, "XXXXXX") != 0) {
		errno = EINVAL;
		return NULL;
	}
	for (tries = 0; tries < 100; tries++) {
		unsigned int r;
		int i;

		for (i = 0; i < 6; i++) {
			if (rand_s(&r) != 0)
				r = (unsigned)rand();
			tmpl[len - 6 + i] = set[r % (sizeof(set) - 1)];
		}
		if (_mkdir(tmpl) == 0)
			return tmpl;
		if (errno != EEXIST)
			return NULL;
	}
	return NULL;
}

/* Not atomic like POSIX pread (the file position moves): enough for
 * single-threaded test code. */
static inline ssize_t
pread(int fd, void *buf, size_t n, int64_t off)
{
	if (_lseeki64(fd, off, SEEK_SET) < 0)
		return -1;
	return _read(fd, buf, (unsigned)n);
}

static inline ssize_t
pwrite(int fd, const void *buf, size_t n, int64_t off)
{
	if (_lseeki64(fd, off, SEEK_SET) < 0)
		return -1;
	return _write(fd, buf, (unsigned)n);
}

/* The shell commands the tests run through system() ("rm -rf 'D'",
 * "cp 'A' 'B'", "rmdir 'D'", "cmp -s 'A' 'B'"), done in C: Windows has no
 * such commands.  Anything else goes to the real system(). */
static inline int
win_posix_rmrf(const char *path)
{
	struct _finddata_t fd;
	char pat[4200], sub[4200];
	intptr_t h;
	int r = 0;

	if (_rmdir(path) == 0 || remove(path) == 0)
		return 0;
	snprintf(pat, sizeof(pat), "%s/*", path);
	h = _findfirst(pat, &fd);
	if (h != -1) {
		do {
			if (strcmp(fd.name, ".") == 0 ||
			    strcmp(fd.name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, fd.name);
			if (fd.attrib & _A_SUBDIR)
				r |= win_posix_rmrf(sub);
			else
				r |= remove(sub);
		} while (_findnext(h, &fd) == 0);
		_findclose(h);
	}
	return _rmdir(path) == 0 ? r : -1;
}

static inline int
win_posix_copy_or_cmp(const char *a, const char *b, int cmp)
{
	FILE *in = fopen(a, "rb"), *out = fopen(b, cmp ? "rb" : "wb");
	char buf[65536], buf2[65536];
	size_t n;
	int r = 0;

	if (!in || !out) {
		r = 2;
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (cmp ? fread(buf2, 1, n, out) != n || memcmp(buf, buf2, n)
			: fwrite(buf, 1, n, out) != n) {
			r = 1;
			goto out;
		}
	}
	if (cmp && fread(buf2, 1, 1, out) != 0)
		r = 1;
out:
	if (in)
		fclose(in);
	if (out && fclose(out) != 0 && !cmp)
		r = 2;
	return r;
}

/* Splits "'a' 'b'" (single-quoted, no embedded quotes) into a and b. */
static inline int
win_posix_args(const char *s, char *a, char *b, size_t n)
{
	char *out[2] = { a, b };
	int i;

	for (i = 0; i < 2 && out[i]; i++) {
		const char *q;
		while (*s == ' ')
			s++;
		if (*s != '\'' || !(q = strchr(s + 1, '\'')) ||
		    (size_t)(q - s - 1) >= n)
			return i;
		memcpy(out[i], s + 1, (size_t)(q - s - 1));
		out[i][q - s - 1] = '\0';
		s = q + 1;
	}
	return i;
}

static inline int
win_posix_system(const char *cmd)
{
	char a[4200], b[4200];

	if (strncmp(cmd, "rm -rf ", 7) == 0 &&
	    win_posix_args(cmd + 7, a, NULL, sizeof(a)) == 1) {
		if (win_posix_rmrf(a) == 0)
			return 0;
		/* Windows cannot remove the current directory (a test may
		 * have chdir'ed into it): leave it and retry. */
		return _chdir("/") == 0 && win_posix_rmrf(a) == 0 ? 0 : 1;
	}
	if (strncmp(cmd, "rmdir ", 6) == 0 &&
	    win_posix_args(cmd + 6, a, NULL, sizeof(a)) == 1)
		return _rmdir(a) == 0 ? 0 : 1;
	if (strncmp(cmd, "cp ", 3) == 0 &&
	    win_posix_args(cmd + 3, a, b, sizeof(a)) == 2)
		return win_posix_copy_or_cmp(a, b, 0);
	if (strncmp(cmd, "cmp -s ", 7) == 0 &&
	    win_posix_args(cmd + 7, a, b, sizeof(a)) == 2)
		return win_posix_copy_or_cmp(a, b, 1);
	return system(cmd);
}
#define system(cmd) win_posix_system(cmd)
#endif
#endif
