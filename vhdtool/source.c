/* source.c - a disk to read from, for commands that send a disk elsewhere
 * (upload): a VHD of any type (a differencing chain flattened) or a raw
 * image, detected as convert detects it, read extent by extent so that
 * unallocated ranges (vhd_map) and holes (SEEK_DATA/SEEK_HOLE) are never
 * read. */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

uint64_t
tool_azure_size(uint64_t n)
{
	n = (n + MIB - 1) / MIB * MIB;
	return n < 20 * MIB ? 20 * MIB : n;
}

int
tool_src_open(struct tool_src *s, const char *path, int from)
{
	int r = from >= 0 ? from : vhd_probe(path);
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->path = path;
	s->fd = -1;
	if (r < 0)
		return tool_lib_err(path, r);
	if (r == 0 && from < 0 && tool_name_is_vhd(path)) {
		tool_err(path, "not a VHD image (no VHD footer at its end or "
			 "at offset 0); --from raw reads it as a raw disk");
		return EXIT_DAMAGED;
	}
	if (r == 1) {
		struct vhd_info in = { .struct_size = sizeof in };
		if ((r = vhd_open(&s->v, path, VHD_OPEN_RDONLY)) < 0)
			return tool_lib_err(path, r);
		if ((r = vhd_get_info(s->v, &in)) < 0)
			return tool_lib_err(path, r);
		s->size = in.virtual_size;
		return EXIT_OK;
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) < 0) {
		tool_err(path, "cannot open: %s", strerror(errno));
		return EXIT_ERROR;
	}
	if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
	} else {
		off_t end = lseek(s->fd, 0, SEEK_END);
		if (end < 0) {
			tool_err(path, "cannot find its size: %s", strerror(errno));
			return EXIT_ERROR;
		}
		s->size = (uint64_t)end;
	}
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
	char *p = buf;

	if (s->v)
		return vhd_pread(s->v, buf, n, off);
	while (n) {
		ssize_t r = pread(s->fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}
