/*
 * internal.h - what the library's files share: byte order helpers, the
 * decoded on-disk structures and the image handle.  Platform specifics
 * live only here and in io_file.c.
 */
#ifndef LIBVHD_INTERNAL_H
#define LIBVHD_INTERNAL_H

#include <errno.h>
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

/* ---- err.c ---- */
/* Formats the thread's message and returns -err. */
int vhd_err(int err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 2, 3)))
#endif
	;
/* Validators report through this: with fn NULL only the first problem is
 * kept (and becomes the error message); with fn every problem is passed on
 * (check). */
typedef void (*vhd_problem_fn)(void *arg, const char *msg);
struct vhd_problems {
	vhd_problem_fn fn;
	void *arg;
	int count;
	char first[1024];
};
void vhd_problem(struct vhd_problems *p, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(VHD_FMT_PRINTF, 2, 3)))
#endif
	;
/* 0 if no problem; else the count (fn set) or -EBADMSG (message set). */
int vhd_problems_result(struct vhd_problems *p);

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
/* Encodes f (checksum recomputed, stored in f too). */
void vhd_footer_encode(struct vhd_footer *f, uint8_t raw[512]);
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
 * checks, locking and chain walk once for every format.  Writes, and the
 * path-based operations (check, repair, resize, compact, merge,
 * set-parent), are VHD only for now: other formats open read-only and
 * those operations refuse them (VHD_OPEN_FORMAT_VHD). */
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
	 * or -EBADMSG with the reason in why), and the VHD_OPEN_FORMAT_* flag
	 * a parent is opened with. */
	int  (*parent_candidates)(struct vhd *v,
				  char *out[VHD_MAX_PARENT_CANDIDATES]);
	int  (*parent_check)(struct vhd *v, struct vhd *p, char *why,
			     size_t n);
	unsigned parent_flags;
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
enum { BM_UNKNOWN = 0, BM_FULL = 1, BM_PARTIAL = 2 };

struct bm_entry {
	uint32_t block;         /* VHD_BAT_UNUSED: empty slot */
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

	/* bitmap state and cache, guarded by bm_lock */
	pthread_mutex_t bm_lock;
	_Atomic uint8_t *bm_state; /* per block: BM_* (read without bm_lock) */
	struct bm_entry *bm_cache;
	uint32_t bm_slots;

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
int vhd_write_footer_at(struct vhd *v, uint64_t off);
/* The backend's pread, pwrite and flush on v's own file, a failure
 * reported as "'FILE': cannot read at offset N: reason" and so on. */
int vhd_file_read(struct vhd *v, void *buf, size_t n, uint64_t off);
int vhd_file_write(struct vhd *v, const void *buf, size_t n, uint64_t off);
int vhd_file_sync(struct vhd *v);
/* Rewrites the dynamic header (checksum recomputed) at its offset. */
int vhd_write_header(struct vhd *v);

/* bat.c */
int vhd_bat_load(struct vhd *v);
int vhd_bat_write_entry(struct vhd *v, uint32_t blk);
int vhd_batmap_load(struct vhd *v);
int vhd_batmap_set(struct vhd *v, uint32_t blk, int full);
/* Clears blk's "full" bit before its BAT entry may be cleared: when a bit
 * was set, it is synced (unless UNSAFE_NOSYNC), or a crash could leave a
 * block marked full that the BAT no longer holds. */
int vhd_batmap_clear_durable(struct vhd *v, uint32_t blk);
/* Checks the BAT entries against the file and each other; report is
 * called per problem when non-NULL (else the first problem fails). */
int vhd_bat_validate(struct vhd *v, vhd_problem_fn fn, void *arg);
/* Every piece of the file that must stay: footer copy, header, BAT,
 * batmap, locator data, blocks; sorted by start, in a malloc'd array. */
struct vhd_ext {
	uint64_t start, end;
	uint32_t blk;           /* VHD_BAT_UNUSED: metadata */
};
int vhd_extents(struct vhd *v, struct vhd_ext **out, size_t *count);

/* bitmap.c */
int vhd_bm_init(struct vhd *v);
void vhd_bm_free(struct vhd *v);
/* Status of sector sec (in block blk, allocated) and the number of
 * sectors from sec (< limit) with the same status.  *set = 1 if stored. */
int vhd_bm_run(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t limit,
	       int *set, uint32_t *run);
/* Marks sectors [sec, sec+n) of blk set and writes the changed bitmap
 * sectors.  Caller holds the exclusive lock. */
int vhd_bm_set(struct vhd *v, uint32_t blk, uint32_t sec, uint32_t n);
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

/* rw.c */
/* VHD's own read and map of one level (the VHD driver's). */
int vhd_vhd_read(struct vhd *v, uint8_t *buf, size_t n, uint64_t off);
int vhd_vhd_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
		unsigned *status, int *depth);
int vhd_read_level(struct vhd *v, uint8_t *buf, size_t n, uint64_t off);
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
/* err.c: empty the thread's message; has one been set since? */
void vhd_err_clear(void);
int vhd_err_is_set(void);

/* Write zeros to [off, off+n) of the file. */
int vhd_io_zero(struct vhd_io *io, uint64_t off, uint64_t n);

#endif
