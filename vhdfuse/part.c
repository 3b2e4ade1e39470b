/*
 * part.c - find the partitions of the disk (MBR with extended/logical
 * partitions, or GPT) so each can be shown as its own file.
 *
 * The table comes from the guest and is not trusted: signatures, CRCs,
 * sizes and ranges are all checked, partitions are clipped to the disk,
 * and the extended-partition chain is bounded.  Numbering follows Linux:
 * MBR primaries by slot (p1..p4), logicals from p5 in chain order, GPT
 * entries by slot (p1 for entry 0).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vhdfuse.h"

#define SECTOR 512u            /* what an MBR, EBR or GPT header occupies */
#define MAX_LOGICAL 128         /* bound on the EBR chain (loops, junk) */
#define GPT_MAX_ENTRIES_BYTES (4u * 1024 * 1024)

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* CRC-32 as used by GPT (IEEE 802.3, reflected, poly 0xEDB88320). */
static uint32_t
crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return ~c;
}

struct scan {
	struct vf_part *parts;
	int max, n;
	uint64_t disk_size;
	uint32_t ss;            /* logical sector size: LBAs count these */
};

/* Record a partition of nsect sectors at sector lba, clipped to the disk;
 * a partition starting at or past the end is dropped. */
static void
add(struct scan *sc, int number, uint64_t lba, uint64_t nsect)
{
	if (sc->n >= sc->max || nsect == 0 || lba >= sc->disk_size / sc->ss)
		return;
	uint64_t start = lba * sc->ss;
	uint64_t size = sc->disk_size - start;
	if (nsect < size / sc->ss)
		size = nsect * sc->ss;
	sc->parts[sc->n].number = number;
	sc->parts[sc->n].start = start;
	sc->parts[sc->n].size = size;
	sc->n++;
}

/* The first 512 bytes of logical sector lba (where a table lives). */
static int
read_sector(struct vhd *v, const struct scan *sc, uint64_t lba, uint8_t *buf)
{
	if (lba >= sc->disk_size / sc->ss)
		return -EINVAL;
	return vhd_pread(v, buf, SECTOR, lba * sc->ss);
}

static int
is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0F || type == 0x85;
}

/* Walk the EBR chain of the extended partition at sector base. */
static int
scan_logical(struct vhd *v, struct scan *sc, uint64_t base, uint64_t ext_sects,
	     int *next_number)
{
	uint8_t ebr[SECTOR];
	uint64_t rel = 0;       /* this EBR, relative to base */

	for (int i = 0; i < MAX_LOGICAL; i++) {
		if (read_sector(v, sc, base + rel, ebr) < 0)
			return 0;       /* chain leaves the disk: stop */
		if (ebr[510] != 0x55 || ebr[511] != 0xAA)
			return 0;
		const uint8_t *e0 = ebr + 446, *e1 = ebr + 446 + 16;
		uint32_t start0 = get_le32(e0 + 8), len0 = get_le32(e0 + 12);
		if (e0[4] != 0 && !is_extended(e0[4]) && len0 != 0 &&
		    rel + start0 < ext_sects) {
			uint64_t avail = ext_sects - (rel + start0);
			add(sc, (*next_number)++, base + rel + start0,
			    len0 < avail ? len0 : avail);
		}
		uint32_t next = get_le32(e1 + 8);
		/* The next EBR must lie further on inside the extended
		 * partition; anything else ends the chain (and so a loop can
		 * never form). */
		if (!is_extended(e1[4]) || next <= rel || next >= ext_sects)
			return 0;
		rel = next;
	}
	return 0;
}

/* GPT header at lba; 1 if valid (entries then loaded), 0 if not. */
static int
scan_gpt_at(struct vhd *v, struct scan *sc, uint64_t lba)
{
	uint8_t hdr[SECTOR];
	uint64_t nsect = sc->disk_size / sc->ss;

	if (read_sector(v, sc, lba, hdr) < 0)
		return 0;
	if (memcmp(hdr, "EFI PART", 8) != 0)
		return 0;
	uint32_t hsize = get_le32(hdr + 12);
	if (hsize < 92 || hsize > SECTOR)
		return 0;
	uint32_t want = get_le32(hdr + 16);
	memset(hdr + 16, 0, 4);
	if (crc32(hdr, hsize) != want)
		return 0;
	if (get_le64(hdr + 24) != lba)
		return 0;
	uint64_t first_usable = get_le64(hdr + 40);
	uint64_t last_usable = get_le64(hdr + 48);
	uint64_t ent_lba = get_le64(hdr + 72);
	uint32_t nent = get_le32(hdr + 80);
	uint32_t esize = get_le32(hdr + 84);
	uint32_t ecrc = get_le32(hdr + 88);
	if (esize < 128 || esize % 128 != 0 || nent == 0 ||
	    (uint64_t)nent * esize > GPT_MAX_ENTRIES_BYTES)
		return 0;
	size_t bytes = (size_t)nent * esize;
	if (ent_lba >= nsect || (bytes + sc->ss - 1) / sc->ss > nsect - ent_lba)
		return 0;
	uint8_t *ents = malloc(bytes);
	if (!ents)
		return 0;
	if (vhd_pread(v, ents, bytes, ent_lba * sc->ss) < 0 ||
	    crc32(ents, bytes) != ecrc) {
		free(ents);
		return 0;
	}
	for (uint32_t i = 0; i < nent; i++) {
		const uint8_t *e = ents + (size_t)i * esize;
		static const uint8_t zero[16];
		if (memcmp(e, zero, 16) == 0)
			continue;       /* unused entry */
		uint64_t first = get_le64(e + 32), last = get_le64(e + 40);
		if (last < first || first < first_usable || last > last_usable)
			continue;
		if (i + 1 > INT32_MAX - 1)
			break;
		add(sc, (int)i + 1, first, last - first + 1);
	}
	free(ents);
	return 1;
}

int
vf_read_partitions(struct vhd *v, uint64_t disk_size, struct vf_part *parts,
		   int max)
{
	struct vhd_info in = { .struct_size = sizeof in };
	uint8_t mbr[SECTOR];
	struct scan sc = { parts, max, 0, disk_size, SECTOR };

	/* A disk of 4 KiB logical sectors (a VHDX can be one) counts its
	 * LBAs in 4 KiB; an older library leaves the member 0. */
	if (vhd_get_info(v, &in) == 0 && in.logical_sector_size == 4096)
		sc.ss = 4096;
	if (disk_size < 2 * (uint64_t)sc.ss)
		return 0;
	int r = vhd_pread(v, mbr, SECTOR, 0);
	if (r < 0)
		return r;
	if (mbr[510] != 0x55 || mbr[511] != 0xAA)
		return 0;
	/* Boot indicators other than 0x00/0x80 mean this is not a partition
	 * table (a FAT or other boot sector also ends in 55 AA). */
	for (int i = 0; i < 4; i++) {
		uint8_t boot = mbr[446 + 16 * i];
		if (boot != 0x00 && boot != 0x80)
			return 0;
	}
	for (int i = 0; i < 4; i++) {
		if (mbr[446 + 16 * i + 4] == 0xEE) {
			/* Protective MBR: primary GPT, else the backup at the
			 * last sector. */
			if (!scan_gpt_at(v, &sc, 1))
				scan_gpt_at(v, &sc, disk_size / sc.ss - 1);
			return sc.n;
		}
	}
	int next_logical = 5;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;
		uint32_t lba = get_le32(e + 8), len = get_le32(e + 12);
		if (e[4] == 0 || len == 0)
			continue;
		if (is_extended(e[4]))
			scan_logical(v, &sc, lba, len, &next_logical);
		else
			add(&sc, i + 1, lba, len);
	}
	/* Logical partitions were found in between the primaries: keep the
	 * list in number order. */
	for (int i = 1; i < sc.n; i++)
		for (int j = i; j > 0 && parts[j - 1].number > parts[j].number; j--) {
			struct vf_part t = parts[j];
			parts[j] = parts[j - 1];
			parts[j - 1] = t;
		}
	return sc.n;
}
