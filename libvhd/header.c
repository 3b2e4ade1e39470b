/* header.c - the dynamic disk header: decode, encode, validate. */
#include <stdio.h>
#include "internal.h"

void
vhd_header_decode(const uint8_t raw[1024], struct vhd_header *h)
{
	h->data_offset = get_be64(raw + 8);
	h->table_offset = get_be64(raw + 16);
	h->version = get_be32(raw + 24);
	h->max_entries = get_be32(raw + 28);
	h->block_size = get_be32(raw + 32);
	h->checksum = get_be32(raw + 36);
	memcpy(h->parent_id, raw + 40, 16);
	h->parent_ts = get_be32(raw + 56);
	for (int i = 0; i < 8; i++)
		vhd_locator_decode(raw + 576 + 24 * i, &h->loc[i]);
}

void
vhd_header_encode(struct vhd_header *h, uint8_t raw[1024])
{
	memcpy(raw, "cxsparse", 8);
	put_be64(raw + 8, h->data_offset);
	put_be64(raw + 16, h->table_offset);
	put_be32(raw + 24, h->version);
	put_be32(raw + 28, h->max_entries);
	put_be32(raw + 32, h->block_size);
	memcpy(raw + 40, h->parent_id, 16);
	put_be32(raw + 56, h->parent_ts);
	h->checksum = vhd_checksum(raw, 1024, 36);
	put_be32(raw + 36, h->checksum);
}

int
vhd_header_check(const uint8_t raw[1024], const char *name, uint64_t off,
		 uint64_t disk_size, uint64_t file_size, unsigned flags,
		 unsigned *warn, struct vhd_problems *p)
{
	struct vhd_header h;
	int before = p->count;
	unsigned long long o = (unsigned long long)off;

	if (memcmp(raw, "cxsparse", 8) != 0) {
		char found[33];

		vhd_show_bytes(found, raw, 8);
		vhd_problem(p, VHD_CODE_HEADER_COOKIE, off, "cxsparse", found,
			    "'%s': dynamic header at offset %llu: cookie: "
			    "expected 'cxsparse', found '%s'", name, o, found);
		return p->count - before;
	}
	vhd_header_decode(raw, &h);
	uint32_t sum = vhd_checksum(raw, 1024, 36);
	char e[24], g[24];

	snprintf(e, sizeof(e), "0x%08x", sum);
	snprintf(g, sizeof(g), "0x%08x", h.checksum);
	if (sum != h.checksum) {
		if (flags & VHD_OPEN_IGNORE_CHECKSUM)
			*warn |= VHD_WARN_HEADER_CHECKSUM;
		else
			vhd_problem(p, VHD_CODE_HEADER_CHECKSUM, off + 36, e, g,
			    "'%s': dynamic header at offset %llu: "
				    "checksum: expected 0x%08x, found 0x%08x",
				    name, o, sum, h.checksum);
	}
	snprintf(g, sizeof(g), "0x%08x", h.version);
	if (h.version >> 16 != 1)
		vhd_problem(p, VHD_CODE_HEADER_VERSION, off + 24, "0x00010000", g,
			    "'%s': dynamic header at offset %llu: header "
			    "version: expected 0x00010000, found 0x%08x", name,
			    o, h.version);
	/* Block size: any power of two from 512 B to 1 GiB is valid VHD. */
	if (h.block_size < 512 || h.block_size > (1u << 30) ||
	    (h.block_size & (h.block_size - 1)) != 0) {
		vhd_problem(p, VHD_CODE_HEADER_BLOCK_SIZE, off + 32, NULL, NULL,
			    "'%s': dynamic header at offset %llu: block "
			    "size: expected a power of two from 512 to 2^30, "
			    "found %u", name, o, h.block_size);
		return p->count - before;
	}
	uint64_t need = (disk_size + h.block_size - 1) / h.block_size;
	if (h.max_entries < need)
		vhd_problem(p, VHD_CODE_HEADER_TABLE_ENTRIES, off + 28, NULL, NULL,
			    "'%s': dynamic header at offset %llu: max table "
			    "entries: expected at least %llu for a disk of %llu "
			    "bytes, found %u", name, o,
			    (unsigned long long)need,
			    (unsigned long long)disk_size, h.max_entries);
	uint64_t bat_len = align_up((uint64_t)h.max_entries * 4, 512);
	if (h.table_offset > file_size || bat_len > file_size - h.table_offset)
		vhd_problem(p, VHD_CODE_HEADER_TABLE_OFFSET, off + 16, NULL, NULL,
			    "'%s': dynamic header at offset %llu: table "
			    "offset: expected the BAT (%llu bytes) inside the "
			    "file of %llu bytes, found offset %llu", name, o,
			    (unsigned long long)bat_len,
			    (unsigned long long)file_size,
			    (unsigned long long)h.table_offset);
	else if (h.table_offset < 512 ||
		 (h.table_offset < off + 1024 &&
		  off < h.table_offset + bat_len))
		vhd_problem(p, VHD_CODE_HEADER_TABLE_OFFSET, off + 16, NULL, NULL,
			    "'%s': dynamic header at offset %llu: table "
			    "offset: expected the BAT clear of the footer copy "
			    "and the header, found offset %llu", name, o,
			    (unsigned long long)h.table_offset);
	return p->count - before;
}
