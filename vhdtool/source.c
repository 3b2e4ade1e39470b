/* source.c - a disk to read from, for commands that send a disk elsewhere
 * (upload): a VHD of any type (a differencing chain flattened) or a raw
 * image, detected as convert detects it.  The reading is the library's
 * copy engine (vhd_copy_extent, vhd_copy_pread): unallocated ranges and
 * holes are never read; here are only the choices and the messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tool.h"

#define MIB (UINT64_C(1) << 20)

int
tool_name_is_vhd(const char *p)
{
	size_t n = strlen(p);
	return n >= 4 && (strcasecmp(p + n - 4, ".vhd") == 0 ||
			  strcasecmp(p + n - 4, ".vpc") == 0);
}

int
tool_name_is_vhdx(const char *p)
{
	size_t n = strlen(p);
	return (n >= 5 && strcasecmp(p + n - 5, ".vhdx") == 0) ||
	       (n >= 6 && strcasecmp(p + n - 6, ".avhdx") == 0);
}

uint64_t
tool_azure_size(uint64_t n)
{
	n = (n + MIB - 1) / MIB * MIB;
	return n < 20 * MIB ? 20 * MIB : n;
}

/* A failed library call about the source, named as the user gave it
 * (not the spool file it may have gone to). */
static int
src_lib_err(const struct tool_src *s, int r)
{
	struct tool_msg m;

	tool_msg_save(&m);
	return tool_msg_err(s->path, s->file, &m, NULL, r);
}

/* A bad checksum, with the option that reads the image anyway. */
static int
checksum_err(const struct tool_src *s, int r)
{
	struct tool_msg m;

	tool_msg_save(&m);
	return tool_msg_err(s->path, s->file, &m,
			    "--ignore-checksum reads it anyway", r);
}

int
tool_src_open_file(struct tool_src *s, int from, unsigned vhd_flags,
		   unsigned how)
{
	int r = from >= 0 ? from : vhd_probe(s->file);
	const char *fmt;

	s->e = NULL;
	s->size = 0;
	if (r < 0)
		return src_lib_err(s, r);
	if (r == 0 && from < 0 && (how & TOOL_SRC_FOREIGN) &&
	    (fmt = foreign_format_file(s->file)))
		return tool_foreign_err(s->path, s->file == s->path ?
					s->path : NULL, fmt);
	if (r == 0 && from < 0 && tool_name_is_vhd(s->path)) {
		/* A damaged VHD must not be read as if it were a raw disk. */
		tool_err(s->path, "not a VHD image (no VHD footer at its end "
			 "or at offset 0); --from raw reads it as a raw disk");
		return EXIT_DAMAGED;
	}
	if (r == 0 && from < 0 && tool_name_is_vhdx(s->path)) {
		tool_err(s->path, "not a VHDX image (no 'vhdxfile' identifier "
			 "at offset 0); --from raw reads it as a raw disk");
		return EXIT_DAMAGED;
	}
	if (r == 1) {
		struct vhd *v;
		r = vhd_open(&v, s->file, VHD_OPEN_RDONLY | vhd_flags);
		if (r < 0) {
			if (r == -EBADMSG && (how & TOOL_SRC_CHECKSUM_HINT) &&
			    !(vhd_flags & VHD_OPEN_IGNORE_CHECKSUM) &&
			    (vhd_last_error()->code == VHD_CODE_FOOTER_CHECKSUM ||
			     vhd_last_error()->code == VHD_CODE_HEADER_CHECKSUM))
				return checksum_err(s, r);
			return src_lib_err(s, r);
		}
		/* The end owns v from here; a fixed VHD's data is read
		 * through the file directly (copy_file_range). */
		if ((r = vhd_copy_src_image(&s->e, v, s->path)) < 0) {
			vhd_close(v);
			return src_lib_err(s, r);
		}
	} else if ((r = vhd_copy_src_raw(&s->e, s->file, s->path)) < 0) {
		return src_lib_err(s, r);
	}
	s->size = vhd_copy_size(s->e);
	return EXIT_OK;
}

int
tool_src_open(struct tool_src *s, const char *path, int from)
{
	int rc;

	s->path = s->file = path;
	if ((rc = tool_src_open_file(s, from, 0, TOOL_SRC_FOREIGN)) != EXIT_OK ||
	    vhd_copy_image(s->e))
		return rc;
	if (s->size % VHD_SECTOR_SIZE) {
		tool_err(path, "size %llu is not a multiple of 512 bytes (pad "
			 "it, e.g. truncate -s %llu)",
			 (unsigned long long)s->size,
			 (unsigned long long)((s->size / 512 + 1) * 512));
		return EXIT_ERROR;
	}
	if (s->size == 0) {
		tool_err(path, "is empty");
		return EXIT_ERROR;
	}
	if (s->size > VHD_MAX_DISK_SIZE) {
		tool_err(path, "size %llu is larger than the VHD limit of 2040 GiB",
			 (unsigned long long)s->size);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

void
tool_src_close(struct tool_src *s)
{
	vhd_copy_close(s->e);
	s->e = NULL;
}

int
tool_src_extent(struct tool_src *s, uint64_t off, uint64_t *len)
{
	return vhd_copy_extent(s->e, off, len);
}

int
tool_src_read(struct tool_src *s, void *buf, size_t n, uint64_t off)
{
	return vhd_copy_pread(s->e, buf, n, off);
}
