/*
 * compat.h - the few things the library's portable files need that differ
 * between platforms.  Everything else platform-specific lives in the I/O
 * backends: io_file.c (POSIX) or io_win32.c (Windows); the format code
 * has no platform #ifdef.
 */
#ifndef LIBVHD_COMPAT_H
#define LIBVHD_COMPAT_H

#include <stdlib.h>
#include <string.h>

/* The format archetype of our printf-like functions.  On mingw-w64 GCC's
 * "printf" means msvcrt's printf, which lacks %zu and %llu;
 * __MINGW_PRINTF_FORMAT is gnu_printf when __USE_MINGW_ANSI_STDIO selects
 * the C99 stdio (as our Windows build does), so -Wformat checks what
 * actually runs. */
#ifdef __MINGW_PRINTF_FORMAT
#define VHD_FMT_PRINTF __MINGW_PRINTF_FORMAT
#else
#define VHD_FMT_PRINTF printf
#endif

/* Are "C:\dir\f" and "\\host\share\f" paths of this system (locator.c)? */
#ifdef _WIN32
#define VHD_DRIVE_PATHS 1
#else
#define VHD_DRIVE_PATHS 0
#endif

#ifdef _WIN32
/* POSIX functions the Windows C runtime lacks.  realpath: an absolute
 * path of an existing file, with '/' separators (io_win32.c). */
char *vhd_compat_realpath(const char *path, char *resolved);
#define realpath(p, r) vhd_compat_realpath((p), (r))

static inline char *
vhd_compat_strndup(const char *s, size_t n)
{
	size_t len = 0;
	char *d;

	while (len < n && s[len])
		len++;
	d = malloc(len + 1);
	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}
#define strndup(s, n) vhd_compat_strndup((s), (n))
#endif

#endif
