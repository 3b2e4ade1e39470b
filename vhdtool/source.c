/* source.c - a disk to read from, for commands that send a disk elsewhere
 * (upload): a VHD of any type (a differencing chain flattened) or a raw
 * image, detected as convert detects it, read extent by extent so that
 * unallocated ranges (vhd_map) and holes (SEEK_DATA/SEEK_HOLE) are never
 * read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
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
	struct stat st;

	s->v = NULL;
	s->fd = -1;
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
		struct vhd_info in = { .struct_size = sizeof in };
		r = vhd_open(&s->v, s->file, VHD_OPEN_RDONLY | vhd_flags);
		if (r < 0) {
			if (r == -EBADMSG && (how & TOOL_SRC_CHECKSUM_HINT) &&
			    !(vhd_flags & VHD_OPEN_IGNORE_CHECKSUM) &&
			    (vhd_last_error()->code == VHD_CODE_FOOTER_CHECKSUM ||
			     vhd_last_error()->code == VHD_CODE_HEADER_CHECKSUM))
				return checksum_err(s, r);
			return src_lib_err(s, r);
		}
		if ((r = vhd_get_info(s->v, &in)) < 0)
			return src_lib_err(s, r);
		s->size = in.virtual_size;
		if ((how & TOOL_SRC_RAW_VIEW) && in.type == VHD_TYPE_FIXED) {
			/* Its data is the file's first size bytes: a raw
			 * view for copy_file_range. */
			s->fd = open(s->file, O_RDONLY | O_CLOEXEC);
		}
		return EXIT_OK;
	}
	s->fd = open(s->file, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) < 0) {
		tool_err(s->path, "cannot open: %s", strerror(errno));
		return EXIT_ERROR;
	}
	if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
	} else {
		off_t end = lseek(s->fd, 0, SEEK_END);
		if (end < 0) {
			tool_err(s->path, "cannot find its size: %s",
				 strerror(errno));
			return EXIT_ERROR;
		}
		s->size = (uint64_t)end;
	}
	return EXIT_OK;
}

int
tool_src_open(struct tool_src *s, const char *path, int from)
{
	int rc;

	s->path = s->file = path;
	if ((rc = tool_src_open_file(s, from, 0, TOOL_SRC_FOREIGN)) != EXIT_OK || s->v)
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
	vhd_close(s->v);
	s->v = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

int
tool_src_extent(struct tool_src *s, uint64_t off, uint64_t *len)
{
	uint64_t left = s->size - off;

	if (s->v) {
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
	/* Raw: ask the filesystem for holes; without support, all data. */
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
tool_src_read(struct tool_src *s, void *buf, size_t n, uint64_t off)
{
	if (s->v)
		return vhd_pread(s->v, buf, n, off);
	return tool_pread_full(s->fd, buf, n, off);
}

int
tool_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;    /* the file shrank under us */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}
