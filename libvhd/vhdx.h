/* vhdx.h - what the VHDX driver's files share (vhdx.c, vhdx_log.c,
 * crc32c.c).  MS-VHDX v1.0; all integers little-endian; GUIDs in
 * Microsoft's mixed-endian byte order. */
#ifndef LIBVHD_VHDX_H
#define LIBVHD_VHDX_H

#include "internal.h"

#define VHDX_MIB          (UINT64_C(1) << 20)
#define VHDX_HEADER1_OFF  (64u * 1024)
#define VHDX_HEADER2_OFF  (128u * 1024)
#define VHDX_REGION1_OFF  (192u * 1024)
#define VHDX_REGION2_OFF  (256u * 1024)
#define VHDX_MAX_SIZE     (UINT64_C(64) << 40)      /* 64 TiB */
#define VHDX_LOG_SECTOR   4096u
/* No VHDX file reaches this (64 TiB of data plus its metadata): a log
 * entry writing past it is damaged. */
#define VHDX_FILE_MAX     (UINT64_C(1) << 47)
/* A log held in memory for replay is refused above this (Hyper-V and
 * QEMU write 1 MiB logs). */
#define VHDX_LOG_MAX      (UINT64_C(256) << 20)

static inline uint16_t
get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t
get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static inline void
put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* A range of the file the replayed log rewrites (data NULL: zeros),
 * applied in log order over what the file holds. */
struct vhdx_patch {
	uint64_t off, len;
	uint8_t *data;
};

struct vhdx {
	uint8_t  log_guid[16], data_guid[16], file_guid[16], disk_id[16];
	uint64_t seq;
	int      header;                /* 1 or 2: the current header */
	uint64_t log_off;
	uint32_t log_len;
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
	uint32_t block_size, lss, pss;
	int      leave_allocated, has_parent;
	uint64_t chunk_ratio;
	uint64_t blocks;                /* payload blocks */
	uint64_t bat_entries;
	uint64_t *bat;
	uint64_t eof;                   /* the file's size after replay */
	struct vhdx_patch *patch;       /* the replayed log */
	size_t   npatch;
	unsigned log_entries;           /* entries replayed */
	/* parent locator (UTF-8): relative_path, volume_path,
	 * absolute_win32_path; parent_linkage(2): the parent's DataWriteGuid */
	char     parent_path[3][1024];
	uint8_t  linkage[2][16];        /* [0] parent_linkage, [1] ..2 */
	int      has_linkage[2];
	/* the parent locator item: its metadata table entry and its place
	 * (offsets inside the metadata region) */
	uint32_t loc_entry, loc_off, loc_len;
	/* writing (vhdx_write.c) */
	int      live;                  /* the header names our log (a clean
					   close clears it) */
	int      broken;                /* a metadata update failed midway */
	uint64_t log_seq;               /* the next entry's sequence number */
	uint32_t log_head;              /* where the next entry goes */
	uint64_t file_end;              /* the file's size (new blocks here) */
	uint64_t flushed_end;           /* its size at the last flush */
	int      data_live;             /* this session's DataWriteGuid is
					   in the header (metadata-only
					   changes keep the old one) */
	uint8_t  next_data_guid[16];    /* the DataWriteGuid the session's
					   first data change takes, when
					   has_next_data_guid (a merge's) */
	int      has_next_data_guid;
};

/* Payload block states (MS-VHDX 2.5.1.1) and the sector bitmap's. */
enum {
	PB_NOT_PRESENT = 0, PB_UNDEFINED = 1, PB_ZERO = 2, PB_UNMAPPED = 3,
	PB_FULLY_PRESENT = 6, PB_PARTIALLY_PRESENT = 7,
};
#define SB_PRESENT 6
#define BAT_STATE(e)  ((unsigned)((e) & 7))
#define BAT_OFF(e)    (((e) >> 20) * VHDX_MIB)

/* vhdx_meta.c: the GUIDs of the regions, metadata items and locator type
 * (16 bytes as on disk). */
extern const uint8_t vhdx_guid_bat[16], vhdx_guid_meta[16],
	vhdx_guid_file_params[16], vhdx_guid_disk_size[16],
	vhdx_guid_page83[16], vhdx_guid_lss[16], vhdx_guid_pss[16],
	vhdx_guid_parent_loc[16], vhdx_guid_vhdx_locator[16];

/* vhdx_meta.c: the open's steps, in order, each validating what it reads
 * (see vhdx.c for the order and why). */
int  vhdx_read_headers(struct vhd *v, struct vhdx *x);
int  vhdx_read_regions(struct vhd *v, struct vhdx *x);
int  vhdx_read_metadata(struct vhd *v, struct vhdx *x);
int  vhdx_read_bat(struct vhd *v, struct vhdx *x);
/* "{XXXXXXXX-XXXX-...}" of a GUID's 16 bytes on disk. */
void vhdx_fmt_guid(char out[39], const uint8_t g[16]);

uint32_t vhdx_crc32c_update(uint32_t crc, const uint8_t *p, size_t n);
/* CRC-32C of n bytes with the 4 bytes at skip taken as zero. */
uint32_t vhdx_crc32c_skip(const uint8_t *p, size_t n, size_t skip);

/* Reads the file as the replayed log leaves it (zeros between the file's
 * end and x->eof); "'FILE': cannot read ..." on failure. */
int  vhdx_file_read(struct vhd *v, void *buf, size_t n, uint64_t off);
/* Finds the log's active sequence (MS-VHDX 2.3.3) and records its writes
 * as patches, touching nothing in the file.  0 when there is nothing to
 * replay too; -EBADMSG naming the problem. */
int  vhdx_log_replay(struct vhd *v, struct vhdx *x);
void vhdx_log_free(struct vhdx *x);
/* vhdx_log.c: the sectors a log entry of n data sectors starts with. */
uint32_t vhdx_log_desc_sectors(uint32_t ndesc);

/* vhdx_write.c: a read-write open's first step after the in-memory
 * replay (writes the replayed log back, clears it from the header);
 * writes, zeroing, the clean close. */
int  vhdx_rdwr_open(struct vhd *v, struct vhdx *x);
int  vhdx_write(struct vhd *v, const uint8_t *buf, size_t n, uint64_t off);
int  vhdx_zero(struct vhd *v, uint64_t off, uint64_t len, unsigned flags,
	       int discard);
/* 0, or the error that left the log live (a later open replays it;
 * vhd_close ignores it, vhd_merge reports it). */
int  vhdx_rdwr_close(struct vhd *v, struct vhdx *x);
void vhdx_encode_header(uint8_t h[4096], const struct vhdx *x, uint64_t seq);
/* A random (version 4) GUID. */
int  vhdx_new_guid(uint8_t g[16]);
/* Writes header slot (1 or 2) from x's fields with sequence seq. */
int  vhdx_write_header(struct vhd *v, struct vhdx *x, int slot, uint64_t seq);
/* Rewrites the parent locator item (item, len bytes) through the log, in
 * place or in the metadata region's free space (-ENOSPC naming the room
 * when it does not fit); the header's FileWriteGuid changes, its
 * DataWriteGuid does not (the disk's content is the same). */
int  vhdx_write_locator(struct vhd *v, struct vhdx *x, const uint8_t *item,
			uint32_t len);
/* vhdx_parent.c: the parent locator item (MS-VHDX 2.6.2.6), one
 * builder for creation, set-parent and merge.  A key/value pair: key in
 * UTF-8, value in UTF-16LE. */
struct vhdx_kv {
	const char *key;
	const uint8_t *val;
	size_t len;
};
/* "{xxxxxxxx-...}" of g in UTF-16LE, lower case.  Its length in bytes. */
size_t vhdx_guid_utf16(uint8_t out[80], const uint8_t g[16]);
/* The locator item of n pairs (malloc'd into *out, its length in *len);
 * -ENAMETOOLONG (naming name and the key) for a value not of 2..65534
 * bytes. */
int  vhdx_locator_item(const char *name, const struct vhdx_kv *kv, int n,
		       uint8_t **out, uint32_t *len);
/* The pairs a child at child_path records for its parent at parent_path
 * (whose DataWriteGuid is data_guid): parent_linkage (in g),
 * relative_path and absolute_win32_path ('\' separators; in *blob,
 * malloc'd, which the caller frees even on error).  Errors name name. */
int  vhdx_parent_kv(struct vhd_vfs *vfs, const char *child_path,
		    const char *name, const char *parent_path,
		    const uint8_t data_guid[16], uint8_t g[80], uint8_t **blob,
		    struct vhdx_kv kv[3]);
/* vhdx_parent.c: vhd_set_parent_vfs for a VHDX child, and the merge's
 * parent_linkage2 (SPEC.md 20, "merge"). */
int  vhdx_set_parent(struct vhd_vfs *vfs, const char *child,
		     const char *new_parent, unsigned flags);
/* Makes the merge target's next DataWriteGuid one that the image above
 * it (above, opened read-write without its parent) accepts, durably,
 * before the target's first write: that GUID becomes above's
 * parent_linkage, the target's current one its parent_linkage2. */
int  vhdx_merge_prepare(struct vhd *above, struct vhd *target);
/* vhdx_create.c */
int  vhdx_create_io(struct vhd_vfs *vfs, struct vhd_io *io,
		     const struct vhd_create_opts *o,
		    const char *path);

#endif
