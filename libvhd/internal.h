/*
 * internal.h - what the library's files share: byte order helpers, the
 * decoded on-disk structures and the image handle.  Platform specifics
 * live only here and in io_file.c.
 */
#ifndef LIBVHD_INTERNAL_H
#define LIBVHD_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "largefile.h"
#include "vhd.h"
#include "vhd_test.h"
#include "locator.h"
#include "compat.h"

#ifndef EBADMSG
#define EBADMSG EINVAL
#endif

#define VHD_FOOTER_SIZE 512u
#define VHD_HEADER_SIZE 1024u
#define VHD_BAT_UNUSED  0xFFFFFFFFu
#define VHD_NO_OFFSET   UINT64_C(0xFFFFFFFFFFFFFFFF)
/* Our footer's creator application and version. */
#define VHD_CREATOR_APP "lvhd"
#define VHD_CREATOR_VER 0x00000001u
/* New blocks' data starts at a multiple of this (as Windows and blktap). */
#define VHD_DATA_ALIGN  4096u
/* Room a new differencing disk keeps between its header and its BAT for
 * parent locator data: the locators, and new ones set-parent writes
 * before it switches the header over. */
#define VHD_LOC_RESERVE 16384u
#define VHD_MAX_CHAIN   32

static inline uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t
align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Do the byte ranges [a0, a1) and [b0, b1) share a byte? */
static inline int
ranges_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

static inline int
vhd_is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---- err.c ---- */
/* A diagnostic record as the library keeps it (the thread's last error,
 * the first problem of a validation): struct vhd_diag's members, with the
 * strings they point to.  A message that names a file is written with the
 * format prefix "'%s': " and the file as its first argument: the record
 * keeps that argument as its file and what follows as its message. */
struct vhd_errrec {
	char text[1024];
	size_t msg_off;         /* the message: text + msg_off */
	int has_file;
	enum vhd_severity sev;
	enum vhd_code code;
	uint64_t offset;
	char file[512];
	char expected[96], found[96];
	int has_expected, has_found;
};
/* Formats the thread's message and returns -err; the code follows from err
 * (EBADMSG: VHD_CODE_DAMAGED, EBUSY: VHD_CODE_LOCKED, else none). */
int vhd_err(int err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 2, 3)))
#endif
	;
/* The same with its code. */
int vhd_err_code(int err, enum vhd_code code, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 3, 4)))
#endif
	;
/* The thread's record, kept while other calls run, then made the last
 * error again (returning err, a negative errno). */
void vhd_err_save(struct vhd_errrec *s);
int  vhd_err_restore(int err, const struct vhd_errrec *s);
/* Fills a record (severity, code, offset, expected and found may be
 * NULL) from a format as vhd_err's, and the public view d of it. */
void vhd_rec_vformat(struct vhd_errrec *r, enum vhd_severity sev,
		     enum vhd_code code, uint64_t off, const char *expected,
		     const char *found, const char *fmt, va_list ap);
/* The same for a message about file, the format without the file. */
void vhd_rec_vfile(struct vhd_errrec *r, enum vhd_severity sev,
		   enum vhd_code code, uint64_t off, const char *file,
		   const char *fmt, va_list ap);
void vhd_rec_view(const struct vhd_errrec *r, struct vhd_diag *d);

/* vhd_check's and vhd_repair's text reports: vhd_report_text is a
 * vhd_diag_fn (arg a struct vhd_text_report) passing each record's text to
 * fn, after the prefix its severity is given (NULL: the text alone). */
struct vhd_text_report {
	vhd_report_fn fn;
	void *arg;
	const char *prefix[VHD_SEV_REPAIRED + 1];       /* by severity */
};
void vhd_report_text(void *arg, const struct vhd_diag *d);

/* Validators report through this: with fn NULL only the first problem is
 * kept (and becomes the error); with fn every problem is passed on
 * (check). */
typedef void (*vhd_problem_fn)(void *arg, const struct vhd_diag *d);
struct vhd_problems {
	vhd_problem_fn fn;
	void *arg;
	int count;
	struct vhd_errrec first;        /* the first problem */
};
/* One problem of severity error: its code, the offset it is at
 * (VHD_DIAG_NO_OFFSET if none), the expected and found values (or NULL)
 * and its text. */
void vhd_problem(struct vhd_problems *p, enum vhd_code code, uint64_t off,
		 const char *expected, const char *found, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 6, 7)))
#endif
	;
/* 0 if no problem; else the count (fn set) or -EBADMSG (record set). */
int vhd_problems_result(struct vhd_problems *p);

/* ---- create.c: the rules every format's creation shares ---- */
/* The disk type o asks for (VHD_TYPE_NONE: differencing when o names a
 * parent, else dynamic) in *type; refused (-EINVAL, naming the file name)
 * if unknown, or if a parent is given without a differencing type or a
 * differencing type without one. */
int vhd_create_type(const struct vhd_create_opts *o, const char *name,
		    enum vhd_type *type);
/* A child's size: 0 (none asked) or its parent's, else -EINVAL. */
int vhd_create_child_size(const char *name, uint64_t size,
			  uint64_t parent_size);

/* ---- setparent.c: the parent checks every format's set-parent shares ---- */
struct vhd_reparent {
	struct vhd *child;      /* read-write, without its parent */
	struct vhd *parent;     /* the new parent, read-only, unlocked */
	struct vhd_io *plock;   /* a reader's lock on the new parent */
};
/* Opens child and new_parent (format: VHD_OPEN_FORMAT_VHD or _VHDX) into
 * rp and takes the read lock; refused when the child is not differencing
 * or new_parent is the child itself.  rp is set (vhd_reparent_close it)
 * whatever the result. */
int  vhd_reparent_open(struct vhd_reparent *rp, struct vhd_vfs *vfs,
		       const char *child, const char *new_parent,
		       unsigned format);
/* -EINVAL (VHD_CODE_PARENT_SIZE) when the sizes differ, unless flags
 * holds VHD_SET_PARENT_FORCE. */
int  vhd_reparent_size(const struct vhd_reparent *rp, const char *child,
		       const char *new_parent, unsigned flags);
/* -EINVAL (VHD_CODE_CHAIN_LOOP) when new_parent's chain holds the child. */
int  vhd_reparent_loop(const struct vhd_reparent *rp, const char *child,
		       const char *new_parent, unsigned format);
void vhd_reparent_close(struct vhd_reparent *rp);

/* ---- quirks.c ---- */
/* The quirk whose tolerance sets VHD_WARN_* bit warn, or NULL. */
const struct vhd_quirk *vhd_quirk_by_warn(unsigned warn);

/* ---- abi.c ---- */
/* The size a caller of the first release passes: the end of the struct's
 * last member then.  New members only ever go after these. */
#define VHD_OPEN_OPTS_V1   (offsetof(struct vhd_open_opts, parent_path) + \
			    sizeof(const char *))
#define VHD_CREATE_OPTS_V1 (offsetof(struct vhd_create_opts, unique_id) + \
			    sizeof(const uint8_t *))
#define VHD_INFO_V1        (offsetof(struct vhd_info, warnings) + \
			    sizeof(unsigned))
/* Copies a caller's input struct (its size member first) into dst, a
 * struct of this library's size known, zero-filling what the caller's
 * older struct lacks; -EINVAL (message naming what) when the size is
 * below min or members this library does not know are set. */
int  vhd_struct_in(void *dst, size_t known, size_t min, const void *src,
		   const char *what);
/* An output struct: 0 if its size member is at least min, else -EINVAL.
 * vhd_struct_out then copies the members both sides know from src (a
 * struct of this library's size known) and zeroes the caller's rest,
 * keeping the caller's size member. */
int  vhd_struct_out_ok(const void *dst, size_t min, const char *what);
void vhd_struct_out(void *dst, const void *src, size_t known);
/* 0 if io has ops of a version this library knows with every required
 * member set; else -EINVAL naming fn and the backend. */
int  vhd_io_check(const struct vhd_io *io, const char *fn);

/* ---- footer.c ---- */
struct vhd_footer {
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	uint8_t  creator_app[4];
	uint32_t creator_version;
	uint8_t  creator_os[4];
	uint64_t orig_size;
	uint64_t cur_size;
	uint16_t cylinders;
	uint8_t  heads;
	uint8_t  spt;
	uint32_t type;
	uint32_t checksum;
	uint8_t  uuid[16];
	uint8_t  saved_state;
	uint8_t  hidden;        /* byte 85: tapdisk's "hidden" flag */
};

/* Ones' complement of the byte sum, bytes [skip, skip+4) taken as zero. */
uint32_t vhd_checksum(const uint8_t *p, size_t n, size_t skip);
void vhd_footer_decode(const uint8_t raw[512], struct vhd_footer *f);
/* The disk type field of a raw footer. */
uint32_t vhd_footer_type(const uint8_t raw[512]);
/* Encodes f (checksum recomputed, stored in f too). */
void vhd_footer_encode(struct vhd_footer *f, uint8_t raw[512]);
/* Are two footers the same but for byte 85 (tapdisk's hidden flag, which
 * a trailing footer and its copy may differ in)? */
int vhd_footer_same(const uint8_t a[512], const uint8_t b[512]);
/* Validates a raw footer read at off (for messages), adding each problem
 * to p; returns the number added.  *warn gets VHD_WARN_* bits for accepted
 * quirks (checksum accepted under VHD_OPEN_IGNORE_CHECKSUM, hidden byte). */
int vhd_footer_check(const uint8_t raw[512], const char *name, uint64_t off,
		     unsigned flags, unsigned *warn, struct vhd_problems *p);
/* Printable form of n bytes (\xNN for the rest); out holds 4 * n + 1. */
void vhd_show_bytes(char *out, const uint8_t *p, size_t n);
/* The seconds since 2000-01-01 UTC of a time_t-like value. */
uint32_t vhd_time_now(void);
uint32_t vhd_time_from_unix(int64_t t);

/* ---- header.c ---- */
struct vhd_header {
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t  parent_id[16];
	uint32_t parent_ts;
	struct vhd_locator loc[8];
};
void vhd_header_decode(const uint8_t raw[1024], struct vhd_header *h);
/* Encodes h's fields (cookie to parent time stamp) over raw and the
 * checksum (stored in h too).  The parent name and the locator entries
 * are left as raw has them: vhd_locators_build (locator.c) writes them. */
void vhd_header_encode(struct vhd_header *h, uint8_t raw[1024]);
/* Validates the header against the footer's size and the file size. */
int vhd_header_check(const uint8_t raw[1024], const char *name, uint64_t off,
		     uint64_t disk_size, uint64_t file_size, unsigned flags,
		     unsigned *warn, struct vhd_problems *p);
/* Bitmap bytes in front of each block's data (a multiple of 512). */
static inline uint32_t
vhd_bitmap_size(uint32_t block_size)
{
	return (uint32_t)align_up(((uint64_t)block_size / 512 + 7) / 8, 512);
}

/* ---- bat.c / blktap batmap ---- */
struct vhd_batmap {
	int present;
	uint64_t hdr_off;       /* the "tdbatmap" header */
	int cut;                /* header cut short by the end of the file:
				 * unused, kept clear of (a grown file shows it) */
	uint64_t map_off;
	uint32_t map_sectors;
	uint32_t version;
	uint32_t checksum;
	uint8_t *map;           /* map_sectors * 512 bytes */
};

/* ---- image-format drivers (driver.c) ----
 * The handle dispatches everything that depends on the format through
 * its driver: open (decode and validate the metadata), read of this
 * level, the allocation map of this level, the format's part of
 * vhd_get_info, and freeing the format's state.  The public calls
 * (vhd_pread, vhd_map, vhd_get_info, vhd_close, ...) do the argument
 * checks, locking and chain walk once for every format.  A format with
 * write and zero (VHDX) writes through them; the path-based operations
 * (check's repair, resize, compact, merge, set-parent) are VHD only for
 * now and refuse other formats (VHD_OPEN_FORMAT_VHD). */
struct vhd;
struct vhd_driver {
	const char *name;               /* "VHD", "VHDX", "raw" */
	unsigned format;                /* VHD_FORMAT_* */
	/* Does the file hold this format?  1 yes, 0 no (-errno on I/O). */
	int  (*probe)(struct vhd_io *io, uint64_t file_size);
	/* Fills v->type, v->size and the format's state, or -errno. */
	int  (*open)(struct vhd *v, unsigned flags);
	/* Reads [off, off+n) at this level, inside the disk; what this
	 * level does not store comes from vhd_read_level(v->parent) or is
	 * zeros. */
	int  (*read)(struct vhd *v, uint8_t *buf, size_t n, uint64_t off);
	/* One run at this level, off < v->size, len <= v->size - off. */
	int  (*map)(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
		    unsigned *status, int *depth);
	void (*info)(struct vhd *v, struct vhd_info *info);
	void (*free)(struct vhd *v);
	/* Differencing images: the paths where the parent may be (malloc'd,
	 * in lookup order; the count or -errno), whether p is v's parent (0,
	 * or -EBADMSG with the reason in why, which the
	 * caller prefixes with the child's name), and the VHD_OPEN_FORMAT_* flag
	 * a parent is opened with. */
	int  (*parent_candidates)(struct vhd *v,
				  char *out[VHD_MAX_PARENT_CANDIDATES]);
	int  (*parent_check)(struct vhd *v, struct vhd *p, char *why,
			     size_t n);
	unsigned parent_flags;
	/* Formats that write through their driver (NULL: VHD's own code in
	 * rw.c).  Called under the exclusive lock, after the range checks;
	 * zero takes VHD_ZERO_* flags, discard set for vhd_discard. */
	int  (*write)(struct vhd *v, const uint8_t *buf, size_t n,
		      uint64_t off);
	int  (*zero)(struct vhd *v, uint64_t off, uint64_t len,
		     unsigned flags, int discard);
	/* Ends a read-write session durably before vhd_close, which cannot
	 * report it: 0 or the error (NULL: nothing to end; merge.c). */
	int  (*finish)(struct vhd *v);
	/* vhd_merge, before the first write into target: above, the image
	 * directly above it, is open read-write without its parent (NULL:
	 * nothing to do; VHDX records target's next DataWriteGuid there). */
	int  (*merge_prepare)(struct vhd *above, struct vhd *target);
};
extern const struct vhd_driver vhd_drv_vhd, vhd_drv_vhdx, vhd_drv_raw;
/* The driver whose probe claims the file: VHDX by its file type
 * identifier, else VHD (which then gives its own refusal for a file that
 * is neither). */
int vhd_driver_detect(struct vhd_io *io, uint64_t file_size,
		      const struct vhd_driver **out);
/* 1 if the file at path is a VHDX (by its identifier), 0 if not. */
int vhd_path_is_vhdx(const char *path);
/* Internal open flag: refuse any format but VHD (-ENOTSUP), for the
 * operations that know only VHD's layout. */
#define VHD_OPEN_FORMAT_VHD 0x40000000u
#define VHD_OPEN_FORMAT_VHDX 0x20000000u

/* ---- the handle ---- */
enum { VHD_KIND_VHD, VHD_KIND_RAW, VHD_KIND_OTHER };
/* BM_DIRTY: bits changed since the last commit, held in bm_dirty (the
 * authoritative copy; the disk's is older). */
enum { BM_UNKNOWN = 0, BM_FULL = 1, BM_PARTIAL = 2, BM_DIRTY = 3 };

struct bm_entry {
	uint32_t block;         /* VHD_BAT_UNUSED: empty slot */
	uint8_t *bits;
};

struct bm_dirty {
	uint32_t block;
	uint32_t lo, hi;        /* bitmap sectors changed, lo..hi */
	uint8_t *bits;
};

struct vhd {
	const struct vhd_driver *drv;
	void *fmt;              /* the driver's state (formats other than VHD) */
	struct vhd_io *io;
	char *path;
	unsigned flags;         /* VHD_OPEN_* */
	int kind;
	int rdwr;
	uint32_t type;
	uint64_t size;          /* the disk size (footer current size) */
	uint64_t file_size;
	unsigned warnings;
	uint8_t footer_raw[512];
	struct vhd_footer ft;
	uint8_t header_raw[1024];
	struct vhd_header hdr;
	uint64_t footer_off;    /* where the trailing footer is (fixed: size) */

	/* dynamic and differencing */
	uint32_t *bat;          /* host order */
	uint32_t bat_entries;
	uint32_t blocks;        /* blocks the disk size needs */
	uint32_t block_size;
	uint32_t bitmap_size;
	uint32_t spb;           /* sectors per block */
	uint64_t next_free;     /* first offset new blocks may use */
	uint64_t zero_eof;      /* the file reads zeros from here (extension) */
	struct vhd_batmap batmap;
	/* Group commit of allocations (SPEC.md 8.1): blocks allocated since
	 * the last commit are mapped in v->bat but their BAT entries are not
	 * on disk yet.  pend lists them (pend_n of pend_cap), pend_map has a
	 * bit per pending block (what the BAT writes outside a commit mask
	 * out), pend_bytes counts the space they took.  Guarded by the
	 * exclusive lock.  batch: merge commits itself (vhd_alloc_batch),
	 * without the VHD_PEND_MAX bound. */
	int batch;
	uint32_t *pend;
	uint32_t pend_n, pend_cap;
	uint8_t *pend_map;
	uint64_t pend_bytes;

	/* bitmap state and cache, guarded by bm_lock */
	pthread_mutex_t bm_lock;
	_Atomic uint8_t *bm_state; /* per block: BM_* (read without bm_lock) */
	struct bm_entry *bm_cache;
	uint32_t bm_slots;
	struct bm_dirty *bm_dirty;      /* bm_ndirty of bm_dirty_cap */
	uint32_t bm_ndirty, bm_dirty_cap;
	uint32_t *bm_dirty_idx;         /* per block: its bm_dirty index */

	pthread_rwlock_t lock;
	struct vhd *parent;
	int depth;              /* 0 for the top */
	struct vhd_vfs *vfs;    /* where io and the parents come from */
};

/* vhd.c */
/* check.c sets this (thread-local) around its opens: BAT problems are then
 * reported one by one instead of failing the open. */
void vhd_set_check_reporter(vhd_problem_fn fn, void *arg);
int vhd_open_internal(struct vhd **out, struct vhd_io *io, const char *path,
		      unsigned flags, const char *parent_path, int depth);
/* vhd_open_internal with the VFS io came from (parents are looked up
 * through it; NULL: the default). */
int vhd_open_internal_vfs(struct vhd **out, struct vhd_vfs *vfs,
			  struct vhd_io *io, const char *path, unsigned flags,
			  const char *parent_path);
/* The backend's pread, pwrite and flush on v's own file, a failure
 * reported as "'FILE': cannot read at offset N: reason" and so on. */
int vhd_file_read(struct vhd *v, void *buf, size_t n, uint64_t off);
int vhd_file_write(struct vhd *v, const void *buf, size_t n, uint64_t off);
int vhd_file_sync(struct vhd *v);
/* Rewrites the dynamic header at its offset: v->hdr encoded over
 * header_raw (vhd_header_encode), then decoded back. */
int vhd_write_header(struct vhd *v);

/* bat.c */
int vhd_bat_load(struct vhd *v);
int vhd_bat_write_entry(struct vhd *v, uint32_t blk);
/* Entries [first, end) of bat as big-endian bytes into out, the rest of
 * its len bytes 0xFF (the padding of the last sector). */
void vhd_bat_encode(const uint32_t *bat, uint32_t first, uint32_t end,
		    uint8_t *out, size_t len);
int vhd_batmap_load(struct vhd *v);
int vhd_batmap_set(struct vhd *v, uint32_t blk, int full);
/* Encodes b's map offset, map size and checksum into its header h (the
 * cookie and version as h has them). */
void vhd_batmap_header_put(uint8_t h[512], const struct vhd_batmap *b);
/* Clears blk's "full" bit before its BAT entry may be cleared: when a bit
 * was set, it is synced (unless UNSAFE_NOSYNC), or a crash could leave a
 * block marked full that the BAT no longer holds. */
int vhd_batmap_clear_durable(struct vhd *v, uint32_t blk);
/* Checks the BAT entries against the file and each other; report is
 * called per problem when non-NULL (else the first problem fails).
 * *next_free gets the end of the last metadata or block in the file. */
int vhd_bat_validate(struct vhd *v, vhd_problem_fn fn, void *arg,
		     uint64_t *next_free);

/* ---- layout.c: the map of the file ----
 * The one place that knows where things lie in a VHD file and where new
 * things may go; the operations (rw, resize, compact, set-parent, check,
 * repair) put its steps in order.  It alone changes footer_off,
 * file_size, next_free and zero_eof after the open. */
struct vhd_ext {
	uint64_t start, end;
	uint32_t blk;           /* VHD_BAT_UNUSED: metadata */
};
/* The largest blktap batmap map taken (a bound, also for one the open
 * ignored but a grown file would show). */
#define VHD_BATMAP_MAX   (64u << 20)
/* Room vhd_meta_extents needs: footer copy, header, BAT, batmap header
 * and map, 8 locators. */
#define VHD_META_EXTENTS 16
/* Bytes of the BAT on disk (whole sectors). */
uint64_t vhd_bat_bytes(const struct vhd *v);
/* The metadata extents into x: footer copy, header, BAT, batmap, locator
 * data.  in_file (what the open validates against): locator data not
 * wholly inside the file is left out, as the open ignores it, and the
 * batmap counts only when present.  Else everything that would count
 * once the file grew over it.  Returns the count (<= VHD_META_EXTENTS). */
size_t vhd_meta_extents(const struct vhd *v, struct vhd_ext *x, int in_file);
void vhd_ext_sort(struct vhd_ext *x, size_t n);
/* Every piece of the file that must stay: footer copy, header, BAT,
 * batmap, locator data (past the end of the file included), blocks;
 * sorted by start, in a malloc'd array. */
int vhd_extents(struct vhd *v, struct vhd_ext **out, size_t *count);
/* The first block start at or after pos whose data is 4 KiB aligned. */
uint64_t vhd_block_slot(const struct vhd *v, uint64_t pos);
/* Whether the data of the block at BAT entry entry is so aligned. */
int vhd_block_aligned(const struct vhd *v, uint32_t entry);
/* The first start at or after from (block: vhd_block_slot, else 512-byte
 * aligned) where [start, start + len) overlaps no metadata extent, those
 * past the end of the file included.  A result of 2 TiB or more is no
 * place for a block: the caller refuses it. */
uint64_t vhd_layout_place(const struct vhd *v, uint64_t from, uint64_t len,
			  int block);
/* A 512-aligned place for len bytes between the header and the BAT,
 * clear of every extent, or 0 (set-parent's new locator data). */
uint64_t vhd_layout_room_before_bat(struct vhd *v, uint64_t len);
/* The open's end: next_free as vhd_bat_validate found it. */
void vhd_layout_init(struct vhd *v, uint64_t next_free);
/* Nothing new goes below end (space a growing BAT takes). */
void vhd_layout_reserve(struct vhd *v, uint64_t end);
/* New data (a block, a BAT, locators) ends at end: the trailing footer
 * goes right behind it (unless end lies before the current footer, in
 * space a crash leaked), and next_free becomes end.  No barrier: the
 * caller's comes before anything points at the new data. */
int vhd_layout_grow(struct vhd *v, uint64_t end);
/* The trailing footer moves to off: written there, barrier, and when
 * off is below the old place, the file is cut at off + 512, barrier. */
int vhd_layout_footer_to(struct vhd *v, uint64_t off);
/* The same on a bare backend (repair, whose image has no usable
 * trailing footer): raw at off, barrier, cut at off + 512 when the file
 * (fs bytes) is longer, barrier.  -errno, *failed naming the step. */
int vhd_footer_place_io(struct vhd_io *io, const uint8_t raw[512],
			uint64_t off, uint64_t fs, const char **failed);
/* Rewrites the trailing footer in place, or the copy at offset 0, from
 * v->ft (footer_raw follows). */
int vhd_write_footer(struct vhd *v);
int vhd_write_footer_copy(struct vhd *v);
/* Points blk's BAT entry at the block starting at start (restored when
 * the write fails), then the bitmap state: fresh, a new block whose
 * bitmap is bits (NULL: all set); else a moved block, re-read when
 * needed.  The caller's barrier before makes the block's data durable
 * first; the batmap "full" bit is left clear. */
int vhd_layout_map_block(struct vhd *v, uint32_t blk, uint64_t start,
			 const uint8_t *bits, int fresh);
/* Batched allocation: blk mapped in memory, its BAT entry written (one
 * write per BAT sector) by commit_deferred after the caller's barrier. */
void vhd_layout_map_deferred(struct vhd *v, uint32_t blk, uint64_t start,
			     const uint8_t *bits);
int vhd_layout_commit_deferred(struct vhd *v);
void vhd_layout_deferred_none(struct vhd *v);   /* forget any pending */
/* The bound on pending allocations: a commit runs when either is reached
 * (what a power loss can undo of unflushed writes, and the memory held).
 * Not in batch mode (merge commits each copied range itself). */
#define VHD_PEND_MAX        4096u
#define VHD_PEND_MAX_BYTES  (UINT64_C(8) << 30)
/* Drops blk: its batmap bit cleared (durably), the BAT entry cleared
 * (restored when the write fails), the bitmap forgotten.  The caller
 * puts the barrier after (one for many blocks). */
int vhd_layout_unmap_block(struct vhd *v, uint32_t blk);
/* The footer search: the last 512 bytes, the last 511 (a pre-2004
 * footer, zero padded) and the first 512 (the copy) of a file of size
 * bytes (at least 512).  -errno when the last 512 cannot be read; a
 * failed read of the others leaves zeros there, its -errno in err. */
struct vhd_footer_scan {
	uint8_t tail[512], tail511[512], copy[512];
	uint64_t size;
	int err;
};
int vhd_footer_scan(struct vhd_io *io, uint64_t size,
		    struct vhd_footer_scan *s);
/* 1 if any of the three places holds the cookie "conectix". */
int vhd_footer_cookie(const struct vhd_footer_scan *s);
enum { VHD_FOOTER_AT_END = 1, VHD_FOOTER_AT_511 = 2, VHD_FOOTER_AT_COPY = 4 };
/* The footer an image has, from the places in where, in this order: the
 * trailing 512 bytes (its problems go to p), an old 511-byte footer, the
 * copy at offset 0 of a dynamic or differencing disk.  The one taken is
 * returned (0: none) with its bytes in raw, its offset in *off (the file
 * size for the copy: where the trailing footer belongs) and its VHD_WARN_*
 * bits in *warn (VHD_WARN_FOOTER_511, VHD_WARN_FOOTER_FROM_COPY too). */
unsigned vhd_footer_pick(const struct vhd_footer_scan *s, const char *name,
			 unsigned where, unsigned flags, uint8_t raw[512],
			 uint64_t *off, unsigned *warn, struct vhd_problems *p);
/* The open takes the footer found. */
void vhd_layout_set_footer(struct vhd *v, const uint8_t raw[512],
			   uint64_t off);

/* bitmap.c */
int vhd_bm_init(struct vhd *v);
void vhd_bm_free(struct vhd *v);
/* Status of sector sec (in block blk, allocated) and the number of
 * sectors from sec (< limit) with the same status.  *set = 1 if stored. */
int vhd_bm_run(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t limit,
	       int *set, uint32_t *run);
/* Marks sectors [sec, sec+n) of blk set and writes the changed bitmap
 * sectors; defer: keeps them dirty in memory instead (BM_DIRTY), for
 * vhd_bm_commit (vhd_bm_dirty_full says when no room is left).  Caller
 * holds the exclusive lock. */
int vhd_bm_set(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t n,
	       int defer);
int vhd_bm_dirty_full(const struct vhd *v, uint32_t blk);
/* vhd_bm_set(defer) for a writer holding only the shared lock (whose
 * data is written): 1 when the bits are set, 0 when there is no room for
 * another changed bitmap (nothing changed: take the exclusive lock, which
 * may commit), or -errno. */
int vhd_bm_set_shared(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t n);
/* Writes the dirty bitmap sectors (after the caller's barrier). */
int vhd_bm_commit(struct vhd *v);
/* A freshly allocated block's bitmap (bits = NULL: all set). */
void vhd_bm_new_block(struct vhd *v, uint32_t blk, const uint8_t *bits);
void vhd_bm_forget(struct vhd *v, uint32_t blk);
static inline int
bit_test(const uint8_t *map, uint32_t i)
{
	return map[i >> 3] >> (7 - (i & 7)) & 1;
}
static inline void
bit_set(uint8_t *map, uint32_t i)
{
	map[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
}
static inline void
bit_clear(uint8_t *map, uint32_t i)
{
	map[i >> 3] &= (uint8_t)~(0x80u >> (i & 7));
}

/* Is block blk's BAT entry pending (mapped in memory only)? */
static inline int
vhd_layout_pending(const struct vhd *v, uint32_t blk)
{
	return v->pend_n > 0 && bit_test(v->pend_map, blk);
}

/* rw.c */
/* VHD's own read and map of one level (the VHD driver's). */
int vhd_vhd_read(struct vhd *v, uint8_t *buf, size_t n, uint64_t off);
int vhd_vhd_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
		unsigned *status, int *depth);
int vhd_read_level(struct vhd *v, uint8_t *buf, size_t n, uint64_t off);
/* Group commit of allocations (SPEC.md 8.1): new blocks get their bitmap
 * and data written and their BAT entry set in memory only; a commit
 * (vhd_flush, a FUA write, vhd_close, the VHD_PEND_MAX bound, or
 * vhd_alloc_commit) makes them durable with one barrier for all (sync,
 * BAT entries; vhd_alloc_commit and vhd_flush sync again).  A crash
 * before the commit leaks their space, never points the BAT at unwritten
 * blocks.  An UNSAFE_NOSYNC handle writes each entry at once unless batch
 * is on (merge copies many blocks so).  Caller holds no lock. */
void vhd_alloc_batch(struct vhd *v, int on);
int vhd_alloc_commit(struct vhd *v);
/* Anything for a commit (BAT entries, bitmap sectors)?  Caller holds the
 * lock. */
static inline int
vhd_alloc_pending(const struct vhd *v)
{
	return v->pend_n > 0 || v->bm_ndirty > 0;
}
/* The commit of vhd_close (no lock: the caller holds the last reference). */
int vhd_alloc_close(struct vhd *v);
/* map.c */
int vhd_map_level(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
		  unsigned *status, int *depth);

/* io_file.c: image locks (SPEC.md "Locking"), QEMU's permissions:
 * READ   a consistent reader: keeps writers out (qemu-img info, -r opens)
 * WRITE  a writer: keeps writers and consistent readers out
 * PEEK   a reader that shares everything (qemu-img -U, force-share)
 * (VHD_LOCK_NONE .. VHD_LOCK_PEEK, in vhd.h) */
/* How long a file backend's open waits for a conflicting lock, and whom
 * it tells (vhd_set_lock_wait, in vhd.c; read by io_file.c and
 * io_win32.c). */
struct vhd_lock_wait {
	unsigned ms;
	void (*waiting)(void *arg, const char *msg, unsigned ms);
	void *arg;
};
extern struct vhd_lock_wait vhd_lock_wait;
/* A lock still held after this long is worth telling the user about
 * (a vhdfuse daemon closing the image lets go within milliseconds). */
#define VHD_LOCK_QUIET_MS 200u
/* The descriptor of a file backend, for the copy engine's kernel copies
 * and hole search (copy.c); -1 for any other backend. */
int vhd_io_file_fd(struct vhd_io *io);

/* ---- vfs.c: the storage layer (struct vhd_vfs in vhd.h) ----
 * Every file the library opens by name is opened here, through a VFS;
 * vfs NULL is the default one (vhd_vfs_default).  Failures come back as
 * -errno with a message naming the file. */
int vhd_vfs_open(struct vhd_vfs *vfs, struct vhd_io **out, const char *name,
		 unsigned flags, int lock);
/* Locks io (opened by vfs with VHD_LOCK_NONE); VHD_LOCK_NONE does nothing. */
int vhd_vfs_lock(struct vhd_vfs *vfs, struct vhd_io *io, int lock);
/* 1 and id[] when the VFS knows who io is, else 0. */
int vhd_vfs_identity(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2]);
/* Are a and b the same file (both known)? */
int vhd_vfs_same(struct vhd_vfs *vfs, struct vhd_io *a, struct vhd_io *b);
int vhd_vfs_realpath(struct vhd_vfs *vfs, const char *name, char **out);
/* Modification time of name in VHD time (seconds since 2000), or 0. */
uint32_t vhd_vfs_mtime(struct vhd_vfs *vfs, const char *name);
int vhd_vfs_random(struct vhd_vfs *vfs, void *buf, size_t n);
int vhd_vfs_unlink(struct vhd_vfs *vfs, const char *name);
int vhd_vfs_rename(struct vhd_vfs *vfs, const char *from, const char *to);
/* A public call's VFS argument: NULL becomes the default, others are
 * checked (version, members); 0 or -EINVAL. */
int vhd_vfs_use(struct vhd_vfs **vfs, const char *fn);
/* Random bytes from the default VFS. */
int vhd_random_bytes(uint8_t *buf, size_t n);
/* Write n bytes at off and make them durable (O_DSYNC semantics: the data
 * and what is needed to read it back, not the rest of the file).  -ENOTSUP
 * (nothing written) if io is not a file backend that can. */
int vhd_io_file_pwrite_sync(struct vhd_io *io, const void *buf, size_t n,
			    uint64_t off);
/* err.c: empty the thread's message; has one been set since? */
void vhd_err_clear(void);
int vhd_err_is_set(void);

/* Write zeros to [off, off+n) of the file. */
int vhd_io_zero(struct vhd_io *io, uint64_t off, uint64_t n);

#endif
