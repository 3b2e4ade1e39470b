/*
 * largefile.h - stops the build of a translation unit compiled without
 * the Makefile's LFS_CPPFLAGS: a 32-bit off_t (stat() fails with EOVERFLOW
 * on files over 2 GiB, readdir() on 64-bit directory cookies) or, on
 * glibc, a 32-bit time_t (timestamps end in 2038).  Included by the
 * library, the tools and the tests; not installed.
 */
#ifndef LIBVHD_LARGEFILE_H
#define LIBVHD_LARGEFILE_H

#include <sys/types.h>
#include <time.h>

_Static_assert(sizeof(off_t) == 8, "off_t is not 64 bits: compile with "
	       "-D_FILE_OFFSET_BITS=64 (the Makefile's LFS_CPPFLAGS)");
#if defined(__GLIBC__)
_Static_assert(sizeof(time_t) == 8, "time_t is not 64 bits: compile with "
	       "-D_TIME_BITS=64 (the Makefile's LFS_CPPFLAGS)");
#endif

#endif
