/*
 * locator.h - parent names and parent locators of differencing disks
 * (internal to libvhd).
 */
#ifndef LIBVHD_LOCATOR_H
#define LIBVHD_LOCATOR_H

#include <stddef.h>
#include <stdint.h>
#include "vhd.h"

#define VHD_MAX_PARENT_CANDIDATES 16

/* Platform codes of parent locator entries. */
#define VHD_PLAT_NONE 0x00000000u
#define VHD_PLAT_WI2R 0x57693272u   /* "Wi2r" relative, ANSI (deprecated) */
#define VHD_PLAT_WI2K 0x5769326Bu   /* "Wi2k" absolute, ANSI (deprecated) */
#define VHD_PLAT_W2RU 0x57327275u   /* "W2ru" relative, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326B75u   /* "W2ku" absolute, UTF-16LE */
#define VHD_PLAT_MAC  0x4D616320u   /* "Mac " alias blob */
#define VHD_PLAT_MACX 0x4D616358u   /* "MacX" file:// URL, UTF-8 */

struct vhd_locator {
	uint32_t code;          /* VHD_PLAT_* */
	uint32_t space;         /* data space as stored (bytes or sectors) */
	uint32_t length;        /* data length in bytes */
	uint64_t offset;        /* absolute file offset of the data */
};

void vhd_locator_decode(const uint8_t raw[24], struct vhd_locator *l);
void vhd_locator_encode(const struct vhd_locator *l, uint8_t raw[24]);
/* Bytes the locator's data occupies in the file: the data space read as
 * bytes when it is >= length, else as sectors (blktap's rule). */
uint64_t vhd_locator_extent(const struct vhd_locator *l);

/* UTF-16 (big or little endian) to UTF-8; stops at the first NUL or at
 * in_bytes.  Returns the UTF-8 length (NUL-terminated in out) or -EBADMSG
 * for invalid UTF-16 (lone surrogates), -ENAMETOOLONG if out is short. */
int vhd_utf16_to_utf8(const uint8_t *in, size_t in_bytes, int big_endian,
		      char *out, size_t out_size);
/* UTF-8 to UTF-16 without terminator; returns bytes written or -EINVAL /
 * -ENAMETOOLONG. */
int vhd_utf8_to_utf16(const char *in, int big_endian, uint8_t *out,
		      size_t out_size);

/* Candidate paths of the parent of the child at child_path, in lookup
 * order: W2ru, Wi2r, W2ku, Wi2k, MacX, Mac (relative ones resolved against
 * the child's directory, Windows separators turned into '/'; a Windows
 * absolute path like C:\dir\p.vhd also yields p.vhd in the child's
 * directory), then the header's parent name (UTF-16BE; the part after the
 * last '\' or '/') in the child's directory.  hdr is the child's raw
 * 1024-byte dynamic header; locator data is read through io and must lie
 * inside file_size (bad locators are skipped).  Duplicates are dropped.
 * Returns the count (>= 0) and fills out[] with malloc'd strings, or
 * -errno. */
int vhd_parent_candidates(struct vhd_io *io, uint64_t file_size,
			  const uint8_t hdr[1024], const char *child_path,
			  char *out[VHD_MAX_PARENT_CANDIDATES]);

/* Candidates from paths already decoded (UTF-8, Windows or POSIX form),
 * by the same rules; appended to out[0..n), the new count returned (or
 * -ENOMEM). */
int vhd_parent_candidates_from(const char *child_path,
			       const char *const *paths, int npaths,
			       char *out[VHD_MAX_PARENT_CANDIDATES], int n);

/* Fill in a child's header (raw, 1024 bytes) for the parent at
 * parent_path: the parent unicode name (UTF-16BE, the parent's file name)
 * and two locators, W2ku (the absolute path) and W2ru (the path relative
 * to the child's directory, written with '\' separators and a leading
 * ".\" as Windows does), both UTF-16LE, their data placed one after the
 * other from data_off (512-aligned), each data space a multiple of 512
 * recorded in bytes (what Hyper-V does).  *blob (malloc'd) receives the
 * locator data to write at data_off; *blob_len is its length.  Locator
 * entries not used are zeroed.  Returns 0 or -errno. */
int vhd_locators_build(const char *child_path, const char *parent_path,
		       uint8_t hdr[1024], uint64_t data_off,
		       uint8_t **blob, size_t *blob_len);
/* The same with the absolute names from vfs's realpath (NULL: the default
 * VFS). */
int vhd_locators_build_vfs(struct vhd_vfs *vfs, const char *child_path,
			   const char *parent_path, uint8_t hdr[1024],
			   uint64_t data_off, uint8_t **blob, size_t *blob_len);

#endif
