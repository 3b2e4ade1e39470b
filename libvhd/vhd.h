/*
 * vhd.h - libvhd, the public interface.
 *
 * Reads and writes Microsoft VHD images (Virtual Hard Disk Image Format
 * Specification v1.0, 2006): fixed, dynamic and differencing disks.
 *
 * Conventions:
 *  - Every function that can fail returns 0 (or a count) on success and a
 *    negative errno on failure.  vhd_errmsg() then describes the failure
 *    for humans (thread-local; valid until the next libvhd call on this
 *    thread).  The library never prints and never exits.
 *  - Errno meanings: EINVAL bad argument, EBADMSG the image fails
 *    validation (damaged), ENOTSUP valid but unsupported, EROFS write to a
 *    read-only handle, EBUSY the image is locked by another writer, ENOENT
 *    a file (or a differencing disk's parent) is missing, EIO, ENOMEM,
 *    ENOSPC.
 *  - A failed call leaves ownership unchanged.
 *
 * Thread model: one struct vhd may be used by many threads at once
 * (concurrent reads run in parallel; writes and metadata updates are
 * serialised internally).  Different handles on the same file are not
 * coordinated, which is why every open takes a lock: QEMU's image locks
 * (vhd_set_lock_wait below; SPEC.md "Locking").
 */
#ifndef LIBVHD_VHD_H
#define LIBVHD_VHD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version and symbol export ----------------------------------------- *
 * The one place the version is written: the Makefile reads these three
 * lines.  VHD_VERSION_NUMBER is MAJOR*10000 + MINOR*100 + PATCH, the
 * value vhd_version() returns for the library actually loaded. */
#define VHD_VERSION_MAJOR 0
#define VHD_VERSION_MINOR 1
#define VHD_VERSION_PATCH 0
#define VHD_VERSION_NUMBER (VHD_VERSION_MAJOR * 10000 + \
			    VHD_VERSION_MINOR * 100 + VHD_VERSION_PATCH)
#define VHD_STR_(x) #x
#define VHD_STR(x) VHD_STR_(x)
#define VHD_VERSION_STRING VHD_STR(VHD_VERSION_MAJOR) "." \
	VHD_STR(VHD_VERSION_MINOR) "." VHD_STR(VHD_VERSION_PATCH)

/* The library is built with -fvisibility=hidden; what this header declares
 * is marked for export (and listed in libvhd.map, version node LIBVHD_1.0),
 * everything else stays inside libmsvhd. */
#if defined(__GNUC__) && __GNUC__ >= 4 && !defined(_WIN32)
#define VHD_EXPORT __attribute__((visibility("default")))
#else
#define VHD_EXPORT
#endif

/* VHD_VERSION_NUMBER and VHD_VERSION_STRING of the library in use (which
 * may be newer than the header a program was built with). */
VHD_EXPORT unsigned    vhd_version(void);
VHD_EXPORT const char *vhd_version_string(void);

#define VHD_SECTOR_SIZE       512u
#define VHD_DEFAULT_BLOCK_SIZE (2u * 1024 * 1024)
/* Largest disk Virtual PC, Hyper-V and QEMU accept: 0xFF000000 sectors. */
#define VHD_MAX_DISK_SIZE     (UINT64_C(0xFF000000) * 512)

enum vhd_type {
	VHD_TYPE_NONE = 0,
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFF = 4,
};

/* Image formats the library reads (vhd_info.format).  VHDX (Hyper-V's
 * format, MS-VHDX) is read-only: vhd_open with VHD_OPEN_RDWR and the
 * path-based operations that change an image refuse it (-ENOTSUP). */
enum vhd_format {
	VHD_FORMAT_UNKNOWN = 0,     /* (a library older than the member) */
	VHD_FORMAT_VHD = 1,
	VHD_FORMAT_VHDX = 2,
	VHD_FORMAT_RAW = 3,         /* a raw parent at the bottom of a chain */
};

struct vhd;                 /* opaque image handle (a chain for children) */

/* ---- I/O backend ------------------------------------------------------ *
 * All file access of the library goes through this table, so tests can
 * substitute memory or fault-injecting backends and other platforms can
 * supply their own.  New members are only ever added at the end; version
 * says which members the backend fills in (1: those below; any other value
 * is refused with -EINVAL). */
struct vhd_io;
struct vhd_vfs;             /* the storage layer: see "Storage layer" below */
#define VHD_IO_OPS_VERSION 1u
struct vhd_io_ops {
	unsigned version;       /* VHD_IO_OPS_VERSION */
	/* Transfer exactly n bytes or fail with -errno.  pread past the end
	 * of the file returns -EIO (short reads are never silent). */
	int (*pread)(struct vhd_io *io, void *buf, size_t n, uint64_t off);
	int (*pwrite)(struct vhd_io *io, const void *buf, size_t n, uint64_t off);
	int (*flush)(struct vhd_io *io);                /* data durable */
	int (*get_size)(struct vhd_io *io, uint64_t *size);
	int (*truncate)(struct vhd_io *io, uint64_t size);
	/* Optional (may be NULL): release the space of a range (punch a
	 * hole); the range then reads as zeros. */
	int (*punch)(struct vhd_io *io, uint64_t off, uint64_t n);
	void (*close)(struct vhd_io *io);
};
struct vhd_io {
	const struct vhd_io_ops *ops;
	const char *name;       /* for messages: usually the path */
};

/* Structs that may grow (vhd_open_opts, vhd_create_opts, vhd_info) start
 * with a struct_size member that the caller sets to sizeof the struct it
 * was compiled with, e.g. struct vhd_info in = { .struct_size = sizeof in };
 * the library refuses (-EINVAL) a struct_size smaller than the first release's,
 * reads or fills only what both sides know, and refuses input structs
 * whose members unknown to it are not zero.  New members are only ever
 * added at the end. */

/* Open flags. */
#define VHD_OPEN_RDONLY          0x0000u
#define VHD_OPEN_RDWR            0x0001u
/* Recovery: accept bad footer/header checksums (still reported by check). */
#define VHD_OPEN_IGNORE_CHECKSUM 0x0002u
/* Open a differencing disk without its parent: metadata only (info,
 * check, set-parent); reads of sectors that would come from the parent
 * fail with -ENOTSUP. */
#define VHD_OPEN_NO_PARENT       0x0004u
/* Take no lock at all (tests; internal opens under a lock already held). */
#define VHD_OPEN_NOLOCK          0x0008u
/* Skip the barrier (fdatasync) between writing a new block and pointing
 * the BAT at it, and the sync in vhd_close().  For freshly created output
 * files only (convert), where a crash loses the whole output anyway;
 * vhd_flush() still syncs. */
#define VHD_OPEN_UNSAFE_NOSYNC   0x0010u
/* Read-only: read the image even while another program writes it (what
 * qemu-img calls -U / force-share); what is read may be inconsistent.
 * Without it a read-only open keeps writers out while it is open, and
 * fails with -EBUSY while a writer has the image (SPEC.md "Locking"). */
#define VHD_OPEN_FORCE_SHARE     0x0020u
/* Read-write: start writing bulk data back to the disk while it still
 * arrives (file images on Linux: every 8 MiB of writes of 128 KiB or more,
 * from a helper thread), so that a flush after a long copy does not
 * write it all at once.  For callers that flush or close soon after bulk
 * writes (vhdfuse: dd, cp, mkfs through the mounted disk); durability
 * and write order are unchanged.  Costs a caller that never flushes the
 * disk bandwidth it would not have used. */
#define VHD_OPEN_PACE_WRITES     0x0040u

struct vhd_open_opts {
	size_t struct_size;         /* sizeof(struct vhd_open_opts) */
	unsigned flags;             /* VHD_OPEN_* */
	const char *parent_path;    /* NULL, or the parent of the top image,
				       overriding its parent locators */
};

VHD_EXPORT int  vhd_open(struct vhd **out, const char *path, unsigned flags);
VHD_EXPORT int  vhd_open_opts(struct vhd **out, const char *path,
			      const struct vhd_open_opts *opts);
/* vhd_open_opts on a VFS (struct vhd_vfs below; NULL: the default):
 * the image and its parents are opened through it.  opts may be NULL. */
VHD_EXPORT int  vhd_open_vfs(struct vhd **out, struct vhd_vfs *vfs,
			     const char *name,
			     const struct vhd_open_opts *opts);
/* Open an image on a caller-supplied backend.  On success the handle owns
 * io (closed with it); on failure the caller still owns it.  Parents of a
 * differencing disk are looked up through opts->vfs (NULL: the default
 * VFS), relative names against io->name. */
VHD_EXPORT int  vhd_open_io(struct vhd **out, struct vhd_io *io,
			    const struct vhd_open_opts *opts);
/* v may be NULL; flushes if RDWR. */
VHD_EXPORT void vhd_close(struct vhd *v);

/* Locks.  Every open locks the image and its parents the way QEMU does
 * (SPEC.md "Locking"), so QEMU's tools and ours refuse each other.  An
 * open that finds a conflicting lock retries for up to ms milliseconds
 * (default 5000; 0 fails at once), calling waiting(arg, msg, ms) once
 * if the lock is still held after 0.2 s, msg naming the holder ("'a.vhd': in use by
 * qemu-nbd (pid 42), which is writing it"); then it fails with -EBUSY
 * and the same message.  Process-wide: set it before opening images. */
VHD_EXPORT void vhd_set_lock_wait(unsigned ms,
				  void (*waiting)(void *arg, const char *msg, unsigned ms),
		       void *arg);

/* Built-in backends. */
#define VHD_IO_RDWR   0x1u
#define VHD_IO_CREATE 0x2u              /* create; fail if it exists */
#define VHD_IO_PACE   0x4u              /* VHD_OPEN_PACE_WRITES: a hint,
					   backends may ignore it */
/* ---- Storage layer (VFS) ------------------------------------------------ *
 * Every name the library is given or finds (an image, its parents, a new
 * file) is resolved through a struct vhd_vfs, in the manner of SQLite's
 * sqlite3_vfs: opening and creating by name with a lock mode, the
 * identity of an open file, the canonical name, modification time, random
 * bytes for unique ids, rename and unlink.  A parent is looked up by the
 * names its child's locators give (relative ones joined to the directory
 * part of the child's name, '/' separated), each opened through the
 * child's VFS, so a chain can be served from anywhere a VFS reaches.
 * The platform's VFS (POSIX files, or Win32 on Windows) is the default;
 * vhd_vfs_mem_new gives an in-memory namespace.  New members are only
 * ever added at the end; version says which members the VFS fills in
 * (1: those below; others are refused with -EINVAL).  Every member is
 * required.  Lock modes (QEMU's permissions, SPEC.md "Locking"): */
#define VHD_LOCK_NONE  0    /* no lock */
#define VHD_LOCK_READ  1    /* a consistent reader: keeps writers out */
#define VHD_LOCK_WRITE 2    /* a writer: keeps writers and readers out */
#define VHD_LOCK_PEEK  3    /* a reader sharing everything (force-share) */
#define VHD_VFS_VERSION 1u
struct vhd_vfs {
	unsigned version;       /* VHD_VFS_VERSION */
	const char *name;       /* "unix", "win32", "mem", ... */
	void *data;             /* the implementation's */
	/* Opens name (VHD_IO_RDWR, VHD_IO_CREATE: create, fail if it
	 * exists) and takes lock (VHD_LOCK_*) on it, failing with -EBUSY
	 * when another user holds a conflicting one.  io->name names the
	 * file in messages. */
	int (*open_name)(struct vhd_vfs *vfs, const char *name,
			 unsigned flags, int lock, struct vhd_io **out);
	/* Takes lock on io, opened by this VFS with VHD_LOCK_NONE. */
	int (*lock)(struct vhd_vfs *vfs, struct vhd_io *io, int lock);
	/* The identity of an open file (two opens of the same file give the
	 * same): 1 and id set; 0 when the VFS cannot tell (an io it did
	 * not open), or -errno. */
	int (*identity)(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2]);
	/* realpath(3): the canonical absolute name of an existing file
	 * ('/' separated, starting with '/' or a drive), malloc'd into
	 * *out; -ENOENT when there is none.  Names given to the VFS may
	 * be relative: the VFS decides against what. */
	int (*full_name)(struct vhd_vfs *vfs, const char *name, char **out);
	/* Last modification, in seconds since 1970-01-01 UTC. */
	int (*mtime)(struct vhd_vfs *vfs, const char *name, int64_t *secs);
	/* n random bytes (for unique ids). */
	int (*randomness)(struct vhd_vfs *vfs, void *buf, size_t n);
	/* rename(2) and unlink(2) of names. */
	int (*rename_name)(struct vhd_vfs *vfs, const char *from,
			   const char *to);
	int (*delete_name)(struct vhd_vfs *vfs, const char *name);
};
/* Functions return 0 or -errno; a VHD_VFS member may leave a message for
 * vhd_errmsg (a generic one naming the file is made otherwise). */

/* The VFS the calls that take only a name use (vhd_open, vhd_create,
 * vhd_check, vhd_repair, vhd_merge, vhd_set_parent, vhd_resize,
 * vhd_compact, vhd_probe, vhd_open_io's parents, ...; the *_vfs calls
 * take one): the one last set, else the platform's.
 * vfs NULL sets the platform's again.  Process-wide: set it before the
 * calls that should use it (-EINVAL for a version this library does not
 * know or a member missing). */
VHD_EXPORT struct vhd_vfs *vhd_vfs_default(void);
VHD_EXPORT struct vhd_vfs *vhd_vfs_platform(void);
VHD_EXPORT int  vhd_vfs_set_default(struct vhd_vfs *vfs);
/* A new, empty in-memory namespace: files by name ("a/b.vhd" and
 * "/a/./b.vhd" are the same file), locks between its opens as on disk,
 * unlinked files kept while open.  vhd_vfs_mem_free frees it and every
 * file in it (none may be open). */
VHD_EXPORT int  vhd_vfs_mem_new(struct vhd_vfs **out);
VHD_EXPORT void vhd_vfs_mem_free(struct vhd_vfs *vfs);
VHD_EXPORT int  vhd_io_file_open(struct vhd_io **out, const char *path,
				 unsigned flags);
/* A growable in-memory file, initially a copy of data[0..n). */
VHD_EXPORT int  vhd_io_mem_open(struct vhd_io **out, const void *data, size_t n);
/* Contents of a memory backend (valid until the next write or close). */
VHD_EXPORT const uint8_t *vhd_io_mem_data(struct vhd_io *io, size_t *n);

/* ---- Creating images ---------------------------------------------------- */
#define VHD_CREATE_CHS_ROUND  0x1u   /* round size up to an exact CHS capacity */
#define VHD_CREATE_SPARSE     0x2u   /* fixed: leave the data a hole (default
					writes nothing either way: the file is
					extended, not filled) */
#define VHD_CREATE_VHDX       0x4u   /* a VHDX (block size 0 = 32 MiB, 2 MiB
					for a differencing disk; 1 MiB..256 MiB;
					a VHDX parent) instead of a VHD */
#define VHD_CREATE_SECTOR_4K  0x8u   /* VHDX: 4096-byte logical sectors (else
					512; a child takes its parent's) */
struct vhd_create_opts {
	size_t struct_size;         /* sizeof(struct vhd_create_opts) */
	enum vhd_type type;         /* 0 means dynamic (or differencing when
				       parent is set) */
	uint64_t size;              /* bytes, multiple of 512; 0 for children */
	uint32_t block_size;        /* 0 = 2 MiB; power of two, 512 KiB..256 MiB
				       accepted: 512 B .. 2 GiB are valid VHD but
				       we allow 4 KiB .. 256 MiB */
	unsigned flags;             /* VHD_CREATE_* */
	const char *parent;         /* differencing: path of the parent */
	const uint8_t *unique_id;   /* NULL: a new random UUID */
};
/* Creates path (which must not exist).  On failure nothing is left behind. */
VHD_EXPORT int  vhd_create(const char *path, const struct vhd_create_opts *opts);
/* vhd_create on a VFS (NULL: the default): name and opts->parent are
 * opened through it. */
VHD_EXPORT int  vhd_create_vfs(struct vhd_vfs *vfs, const char *name,
			       const struct vhd_create_opts *opts);

/* ---- Data --------------------------------------------------------------- */
/* Any offset and length; all n bytes or -errno.  Reads past the disk's end
 * and writes past it fail with -EINVAL / -ENOSPC without touching data. */
VHD_EXPORT int  vhd_pread(struct vhd *v, void *buf, size_t n, uint64_t off);
VHD_EXPORT int  vhd_pwrite(struct vhd *v, const void *buf, size_t n, uint64_t off);
/* Every write that returned before this call is durable when it returns. */
VHD_EXPORT int  vhd_flush(struct vhd *v);
/* vhd_pwrite() with flags.  VHD_WRITE_FUA (force unit access): these
 * bytes, and any metadata the write changed (a block it allocated, bits it
 * set), are durable when it returns; other writes are not flushed (into
 * an allocated block of a file backend, one write with O_DSYNC semantics
 * instead of a sync of the whole file).  Unknown flags: -EINVAL. */
#define VHD_WRITE_FUA      0x1u
VHD_EXPORT int  vhd_pwrite_flags(struct vhd *v, const void *buf, size_t n,
				 uint64_t off, unsigned flags);
/* The range reads as zeros afterwards.  Whole unused blocks of a dynamic
 * disk are deallocated (their file space punched where the backend can);
 * a differencing disk stores zeros (a clear bit would expose the parent). */
VHD_EXPORT int  vhd_discard(struct vhd *v, uint64_t off, uint64_t len);
#define VHD_ZERO_NO_HOLE   0x1u      /* keep the range allocated */
#define VHD_ZERO_FAST_ONLY 0x2u      /* fail with -ENOTSUP (changing nothing)
					unless it needs no data writes */
VHD_EXPORT int  vhd_write_zeroes(struct vhd *v, uint64_t off, uint64_t len,
				 unsigned flags);

/* Allocation status of the run starting at off: *run is set to the length
 * (<= len, > 0, sector granular except at unaligned ends) over which the
 * status does not change.  Status bits: */
#define VHD_MAP_DATA  0x1u    /* stored in some image of the chain */
#define VHD_MAP_ZERO  0x2u    /* not stored anywhere: reads as zeros */
/* *depth (may be NULL): 0 = the top image holds it, 1 = its parent, ...,
 * -1 = nowhere (zeros). */
VHD_EXPORT int  vhd_map(struct vhd *v, uint64_t off, uint64_t len, uint64_t *run,
			unsigned *status, int *depth);

/* ---- Describing an image ------------------------------------------------ */
struct vhd_info {
	size_t struct_size;         /* set by the caller: sizeof(struct vhd_info) */
	enum vhd_type type;
	uint64_t virtual_size;      /* footer current size: the disk size */
	uint64_t chs_size;          /* cylinders*heads*sectors*512 */
	uint64_t original_size;     /* footer original size (informational) */
	uint16_t cylinders;
	uint8_t  heads, sectors_per_track;
	uint32_t block_size;        /* 0 for fixed disks */
	uint32_t max_table_entries; /* 0 for fixed disks */
	uint32_t allocated_blocks;
	uint64_t allocated_bytes;   /* data bytes stored in this file */
	uint64_t file_size;
	uint8_t  unique_id[16];
	char     creator_app[5];    /* NUL-terminated; may contain NULs ("tap") */
	uint32_t creator_version;   /* major << 16 | minor */
	char     creator_os[5];
	uint32_t timestamp;         /* seconds since 2000-01-01 00:00:00 UTC */
	uint32_t features;
	uint8_t  saved_state;
	uint8_t  parent_id[16];     /* differencing only */
	uint32_t parent_timestamp;
	char     parent_name[1024]; /* header parent name, UTF-8 */
	unsigned warnings;          /* VHD_WARN_* seen while opening */
	/* Members added after the first release (an older library leaves
	 * them zero). */
	enum vhd_format format;
	uint32_t logical_sector_size;   /* 512 for VHD; VHDX 512 or 4096 */
	uint32_t physical_sector_size;  /* 512 for VHD; VHDX 512 or 4096 */
	uint8_t  disk_id[16];           /* VHDX page 83 data (zero for VHD) */
	/* Allocated blocks whose data does not start on a 4 KiB boundary of
	 * the file (QEMU packs blocks 2 MiB + 512 bytes apart: seven in
	 * eight start 512 to 3584 bytes past one).  A 4 KiB
	 * write there changes two partial pages, which the kernel must read
	 * first when they are not cached; vhd_copy() writes aligned blocks.
	 * 0 for fixed disks and VHDX. */
	uint32_t unaligned_blocks;
};
#define VHD_WARN_FOOTER_CHECKSUM  0x01u  /* accepted with IGNORE_CHECKSUM */
#define VHD_WARN_HEADER_CHECKSUM  0x02u
#define VHD_WARN_FOOTER_FROM_COPY 0x04u  /* trailing footer missing/bad */
#define VHD_WARN_FOOTER_511       0x08u  /* old 511-byte trailing footer */
#define VHD_WARN_HIDDEN_BYTE      0x10u  /* tapdisk hidden byte, stale sum */
#define VHD_WARN_LOG_REPLAYED     0x20u  /* VHDX: a log (unclean shutdown)
					    replayed in memory; the file
					    itself is unchanged */

/* What a VHD_WARN_* bit (one) means, in a few words; NULL for others. */
VHD_EXPORT const char *vhd_warning_text(unsigned warn);
/* The disk size QEMU's vpc driver gives the image described by info
 * (without its force_size_calc option), for QEMU version qemu_version
 * (major * 100 + minor: 702 for 7.2, 1000 for 10.0).  QEMU takes the
 * CHS capacity for some creator applications and the current size for
 * others, and 10.0 changed which (SPEC.md §6, §7). */
VHD_EXPORT uint64_t vhd_qemu_size(const struct vhd_info *info,
				  unsigned qemu_version);

VHD_EXPORT int  vhd_get_info(struct vhd *v, struct vhd_info *info);
VHD_EXPORT const char *vhd_path(struct vhd *v);
/* The parent handle of a differencing disk (owned by v), or NULL. */
VHD_EXPORT struct vhd *vhd_parent(struct vhd *v);
/* Number of images in the chain (1 for fixed and dynamic disks). */
VHD_EXPORT int  vhd_chain_depth(struct vhd *v);

/* Helpers shared by the tools. */
VHD_EXPORT const char *vhd_type_name(enum vhd_type t);  /* "fixed", ... */
/* CHS geometry per the specification's appendix. */
VHD_EXPORT void vhd_chs(uint64_t size, uint16_t *cyl, uint8_t *heads,
			uint8_t *spt);
/* Smallest size >= size that is an exact C*H*S*512 capacity. */
VHD_EXPORT uint64_t vhd_chs_round_up(uint64_t size);
/* Does the file hold an image format the library reads: a VHD (footer at
 * the end or a copy at 0) or a VHDX (file type identifier 'vhdxfile' at
 * 0)?  1 yes, 0 no (raw), -errno on I/O error.  vhd_get_info's format
 * then says which. */
VHD_EXPORT int  vhd_probe(const char *path);

/* ---- Diagnostics --------------------------------------------------------- *
 * Every problem the library finds, every warning about a tolerated quirk
 * and every repair is a record: a severity, a code from enum vhd_code
 * (stable: new codes are only ever added at the end), the file and the
 * offset concerned, the expected and found values where they apply, and
 * a one-line text for humans.  Programs decide by the code, never by the
 * text, whose wording may change in any release.  vhd_code_name() gives
 * each code a stable lowercase name ("footer-checksum") for JSON and
 * logs. */
enum vhd_severity {
	VHD_SEV_ERROR = 1,      /* damage: counted by check, refused by open */
	VHD_SEV_WARNING = 2,    /* a tolerated quirk or wasted space */
	VHD_SEV_REPAIRED = 3,   /* vhd_repair fixed it */
};
enum vhd_code {
	VHD_CODE_NONE = 0,              /* no diagnosis: an OS error (the
					   errno says it), or no error */
	VHD_CODE_DAMAGED,               /* damage without a finer code */
	VHD_CODE_NOT_VHD,               /* no footer cookie at either end */
	VHD_CODE_FOOTER_COOKIE,
	VHD_CODE_FOOTER_CHECKSUM,
	VHD_CODE_FOOTER_VERSION,
	VHD_CODE_FOOTER_TYPE,           /* disk type not 2, 3 or 4 */
	VHD_CODE_FOOTER_SIZE,           /* current size, or fixed file size */
	VHD_CODE_FOOTER_DATA_OFFSET,
	VHD_CODE_FOOTER_COPY_DIFFERS,   /* copy at 0 differs from the end's */
	VHD_CODE_FOOTER_FROM_COPY,      /* trailing footer missing or bad */
	VHD_CODE_FOOTER_511,            /* pre-2004 511-byte footer */
	VHD_CODE_HIDDEN_BYTE,           /* tapdisk byte 85, stale checksum */
	VHD_CODE_HEADER_COOKIE,
	VHD_CODE_HEADER_CHECKSUM,
	VHD_CODE_HEADER_VERSION,
	VHD_CODE_HEADER_BLOCK_SIZE,
	VHD_CODE_HEADER_TABLE_ENTRIES,
	VHD_CODE_HEADER_TABLE_OFFSET,
	VHD_CODE_BAT_ENTRY,             /* past the disk, the file, overlap */
	VHD_CODE_BATMAP,                /* blktap's batmap */
	VHD_CODE_LOCATOR,               /* a parent locator */
	VHD_CODE_LEAKED,                /* space after the last block */
	VHD_CODE_PARENT_MISSING,        /* no candidate parent exists */
	VHD_CODE_PARENT_MISMATCH,       /* the parent's unique id differs */
	VHD_CODE_PARENT_SIZE,           /* the parent's size differs */
	VHD_CODE_CHAIN_LOOP,            /* a chain that loops or is too deep */
	VHD_CODE_LOCKED,                /* another program holds the lock */
	VHD_CODE_VHDX,                  /* a VHDX structure is damaged */
	VHD_CODE_LOG_REPLAYED,          /* VHDX log replayed in memory */
	VHD_CODE_UNSUPPORTED,           /* valid but not handled here */
	VHD_CODE_AZURE_RULE,            /* breaks an Azure upload rule */
	VHD_CODE_COUNT_                 /* (not a code: one past the last) */
};
#define VHD_DIAG_NO_OFFSET UINT64_MAX
struct vhd_diag {
	size_t struct_size;         /* set by the library: sizeof its struct */
	enum vhd_severity severity;
	enum vhd_code code;
	const char *file;           /* the image concerned, or NULL */
	uint64_t offset;            /* in file, or VHD_DIAG_NO_OFFSET */
	const char *expected;       /* the value expected there, or NULL */
	const char *found;          /* the value found, or NULL */
	const char *text;           /* one line, naming the file ("'a.vhd':
				       footer at offset 0: ...") */
	const char *message;        /* text without the "'FILE': " prefix */
};
/* Records are valid only during the call. */
typedef void (*vhd_diag_fn)(void *arg, const struct vhd_diag *d);
/* "footer-checksum", ...; "unknown" for a code this library lacks. */
VHD_EXPORT const char *vhd_code_name(enum vhd_code code);
/* The record of the thread's last failure (valid until the next libvhd
 * call on this thread): its code, the file it names and its message
 * without the file.  vhd_errmsg() is its text ("" here, "no error"
 * there, when nothing failed; code VHD_CODE_NONE with a text is an OS
 * error: the errno returned says which).  While a lock-wait
 * callback (vhd_set_lock_wait) runs it describes the lock's holder
 * (VHD_CODE_LOCKED). */
VHD_EXPORT const struct vhd_diag *vhd_last_error(void);
/* For a program that names file itself ("prog: a.vhd: ..."): the last
 * error's message when its record is about file, else its whole text
 * (it names another file, a parent say); "" when nothing failed. */
VHD_EXPORT const char *vhd_errmsg_about(const char *file);

/* ---- Checking ----------------------------------------------------------- */
/* Called once per problem found, with a one-line description that names
 * the offset and the expected and found values where they apply (the
 * text of a record; vhd_check_diag gives the whole record). */
typedef void (*vhd_report_fn)(void *arg, const char *problem);
#define VHD_CHECK_NO_PARENT 0x1u    /* do not check the chain above */
#define VHD_CHECK_FORCE_SHARE 0x2u  /* check even while a writer has it
				       (VHD_OPEN_FORCE_SHARE) */
/* Returns the number of problems found (0 = consistent), or -errno when
 * the file could not be read at all.  Never writes. */
VHD_EXPORT int  vhd_check(const char *path, unsigned flags,
			  vhd_report_fn report, void *arg);
/* Fixes what can be fixed without guessing, in this image only (not its
 * parents): a missing or damaged trailing footer from a valid copy at
 * offset 0, a damaged or different copy at 0 from the trailing footer,
 * leaked space after the last block (the footer is moved down, synced,
 * then the file is truncated).  Anything else (a header whose checksum
 * fails, a bad BAT, a fixed disk's footer) is reported as "not repaired:
 * 'FILE': ..." and left alone.  report gets one line per fix
 * ("repaired: 'FILE': ...") and per refusal.
 * Takes the exclusive lock (-EBUSY while another program writes).
 * Returns the number of fixes made, or -errno. */
VHD_EXPORT int  vhd_repair(const char *path, vhd_report_fn report, void *arg);
/* The same, with a record per problem, warning and repair: vhd_check_diag
 * counts the records of severity VHD_SEV_ERROR; vhd_repair_diag's fixes
 * have VHD_SEV_REPAIRED, its refusals VHD_SEV_ERROR, both with the code of
 * the problem concerned. */
VHD_EXPORT int  vhd_check_diag(const char *path, unsigned flags,
			       vhd_diag_fn fn, void *arg);
VHD_EXPORT int  vhd_repair_diag(const char *path, vhd_diag_fn fn, void *arg);

/* ---- Differencing disks ------------------------------------------------- */
typedef void (*vhd_progress_fn)(void *arg, uint64_t done, uint64_t total);
/* Fold the chain above `into` (NULL: the child's parent) into it: every
 * sector that child (or an image between child and into) stores is written
 * into `into`.  Crash-safe: until it returns, the chain still reads the
 * same.  Deleting the merged images is the caller's business. */
VHD_EXPORT int  vhd_merge(const char *child, const char *into,
			  vhd_progress_fn progress, void *arg);
/* vhd_merge and vhd_set_parent on a VFS (NULL: the default). */
VHD_EXPORT int  vhd_merge_vfs(struct vhd_vfs *vfs, const char *child,
			      const char *into, vhd_progress_fn progress,
			      void *arg);
#define VHD_SET_PARENT_FORCE 0x1u    /* accept a parent with another unique id
					or another size */
/* Point child at new_parent: parent id, timestamp, name and locators. */
VHD_EXPORT int  vhd_set_parent(const char *child, const char *new_parent,
			       unsigned flags);
VHD_EXPORT int  vhd_set_parent_vfs(struct vhd_vfs *vfs, const char *child,
				   const char *new_parent, unsigned flags);

/* ---- Resizing, compacting, type changes without copying ------------------ */
#define VHD_RESIZE_FORCE 0x1u        /* shrink even if the cut-off range
					holds data (it is lost) */
/* Grow or shrink the disk to new_size bytes (a multiple of 512).  Fixed
 * and dynamic disks grow freely (a dynamic disk's BAT grows as needed);
 * shrinking fails with -ENOTEMPTY if the range cut off does not read as
 * zeros, unless VHD_RESIZE_FORCE.  A differencing disk follows the dynamic
 * rules (its parent is not changed; past the parent's end it reads zeros).
 * The footer's original size is set too.  Crash-safe: a crash leaves the
 * old or the new size, every byte of the kept range intact.  progress may
 * be NULL. */
VHD_EXPORT int  vhd_resize(const char *path, uint64_t new_size, unsigned flags,
			   vhd_progress_fn progress, void *arg);

/* Reclaim the blocks of a dynamic or differencing disk that hold nothing
 * (dynamic: only zeros; differencing: no sector) and close the gaps
 * between blocks, then truncate the file.  With out NULL in place and
 * crash-safe; else path is left untouched and the compacted image is
 * written to out (which must not exist).  Returns 0 or -errno. */
VHD_EXPORT int  vhd_compact(const char *path, const char *out, unsigned flags,
			    vhd_progress_fn progress, void *arg);

/* Footer of a fixed disk of size bytes (a new unique id). */
#define VHD_FOOTER_MAX_GEOMETRY 0x1u /* geometry 65535/16/255 (QEMU's
					force_size): every reader, QEMU
					included, then takes the current size */
VHD_EXPORT int  vhd_fixed_footer(uint64_t size, unsigned flags, uint8_t out[512]);
/* Decodes and validates a footer: 0 and the footer fields of info (type,
 * sizes, geometry, unique id, creator, timestamp), or -EBADMSG. */
VHD_EXPORT int  vhd_footer_parse(const uint8_t raw[512], struct vhd_info *info);
/* A raw disk image becomes a fixed VHD by appending a footer, and a fixed
 * VHD a raw image by dropping it; no data moves.  Refused (-EINVAL) where
 * it cannot be done without copying (raw size not a multiple of 512,
 * not a fixed disk). */
VHD_EXPORT int  vhd_raw_to_fixed(const char *path, unsigned flags);
VHD_EXPORT int  vhd_fixed_to_raw(const char *path);

/* ---- Copying a disk (copy.c) --------------------------------------------- *
 * What vhdtool convert does, for any caller: every byte of a disk from a
 * source to a destination, unallocated ranges and holes never read, 4 KiB
 * granules of zeros never written (the destination stays sparse), blocks
 * shared (reflink) or copied by the kernel (copy_file_range) where the
 * file system can, reading and writing on two threads.  A source or a
 * destination is a struct vhd_copy_end; messages name it by the name it
 * was given.  Not available on Windows (-ENOTSUP). */
struct vhd_copy_end;

/* Sources.  An opened image of any format (a differencing chain is read
 * flattened); the end owns v from then on, even on failure of later
 * calls (vhd_copy_close closes it). */
VHD_EXPORT int  vhd_copy_src_image(struct vhd_copy_end **out, struct vhd *v,
				   const char *name);
/* A raw disk: a file (its holes not read) or a block device. */
VHD_EXPORT int  vhd_copy_src_raw(struct vhd_copy_end **out, const char *path,
				 const char *name);
/* A stream, read once front to back, gzip-compressed or not: the file at
 * path, or (path NULL) the descriptor fd, which stays the caller's. */
VHD_EXPORT int  vhd_copy_src_stream(struct vhd_copy_end **out,
				    const char *path, int fd, const char *name);
/* 1 if the file at path starts with gzip's magic (1f 8b), else 0. */
VHD_EXPORT int  vhd_copy_is_gzip(const char *path);
/* A stream's first n (<= 512) bytes, to tell its format; they are still
 * copied.  *got < n at the end of the stream. */
VHD_EXPORT int  vhd_copy_head(struct vhd_copy_end *src, void *buf, size_t n,
			      size_t *got);
/* A stream that must be read at random (a dynamic VHD in it, or for a
 * dynamic destination): copied verbatim (sparse) to a temporary file in
 * $TMPDIR, whose path *path then is, to be opened as a source; removed
 * when src is closed. */
struct vhd_copy_opts;
VHD_EXPORT int  vhd_copy_spool(struct vhd_copy_end *src,
			       const struct vhd_copy_opts *opts,
			       const char **path);

/* Destinations. */
#define VHD_COPY_GZIP   0x1u    /* compress (a stream) */
#define VHD_COPY_DENSE  0x2u    /* path is an existing device: write every
				   byte, zeros included, in place */
#define VHD_COPY_SYNC   0x4u    /* vhd_copy_finish makes it durable */
struct vhd_copy_dst_opts {
	size_t struct_size;         /* sizeof(struct vhd_copy_dst_opts) */
	const char *name;           /* for messages (NULL: the path, or
				       "standard output") */
	int fd;                     /* with path NULL: write a stream here */
	enum vhd_format format;     /* VHD_FORMAT_RAW, _VHD or _VHDX */
	enum vhd_type type;         /* VHD, VHDX: VHD_TYPE_FIXED or _DYNAMIC
				       (only a fixed VHD can be a stream) */
	uint32_t block_size;        /* dynamic; 0: the default */
	uint64_t size;              /* disk size; a stream source's is known
				       only once copied: vhd_copy_finish */
	unsigned flags;             /* VHD_COPY_GZIP, _DENSE, _SYNC */
	unsigned footer_flags;      /* fixed: VHD_FOOTER_* */
};
/* Creates path (which must not exist, unless VHD_COPY_DENSE), or starts
 * a stream on opts->fd.  Closed without vhd_copy_finish, a created file
 * is removed. */
VHD_EXPORT int  vhd_copy_dst_create(struct vhd_copy_end **out, const char *path,
				    const struct vhd_copy_dst_opts *opts);

/* Copying. */
#define VHD_COPY_FROM_RAW 0x1u  /* a stream source is raw (its last 512
				   bytes are data, even if a footer) */
#define VHD_COPY_FROM_VHD 0x2u  /* a stream source must be a fixed VHD
				   (-EBADMSG if it does not end in a footer
				   of its size) */
struct vhd_copy_opts {
	size_t struct_size;         /* sizeof(struct vhd_copy_opts) */
	unsigned flags;             /* VHD_COPY_FROM_* */
	vhd_progress_fn progress;   /* may be NULL */
	void *progress_arg;
	int (*cancel)(void *arg);   /* non-zero: stop (-EINTR); may be NULL */
	void *cancel_arg;
};
/* Copies every byte of src to dst (at the same offsets).  On failure
 * vhd_copy_failed says which end failed (neither: out of memory). */
VHD_EXPORT int  vhd_copy(struct vhd_copy_end *src, struct vhd_copy_end *dst,
			 const struct vhd_copy_opts *opts);
/* The destination's size (size: 0 for the one it was created with, or a
 * stream source's), footer, sync, close. */
VHD_EXPORT int  vhd_copy_finish(struct vhd_copy_end *dst, uint64_t size);
VHD_EXPORT int  vhd_copy_failed(const struct vhd_copy_end *e);
/* The disk size (a stream source's once copied). */
VHD_EXPORT uint64_t vhd_copy_size(const struct vhd_copy_end *e);
/* The image behind an end, or NULL (raw, stream). */
VHD_EXPORT struct vhd *vhd_copy_image(struct vhd_copy_end *e);
/* A random-access source read by the caller (an upload): the extent at
 * off, *len > 0 bytes that are all data (1) or all zero (0); and reads. */
VHD_EXPORT int  vhd_copy_extent(struct vhd_copy_end *src, uint64_t off,
				uint64_t *len);
VHD_EXPORT int  vhd_copy_pread(struct vhd_copy_end *src, void *buf, size_t n,
			       uint64_t off);
/* e may be NULL. */
VHD_EXPORT void vhd_copy_close(struct vhd_copy_end *e);
/* buf holds [off, off+n): calls fn once per run of consecutive granules
 * (granule bytes, aligned to absolute offsets) that are not all zero,
 * with the run's bytes, length and offset.  0, or fn's first negative
 * return. */
VHD_EXPORT int  vhd_nonzero_runs(const char *buf, size_t n, uint64_t off,
				 size_t granule,
				 int (*fn)(void *arg, const char *p, size_t len,
					   uint64_t at),
				 void *arg);

/* ---- Errors --------------------------------------------------------------- */
VHD_EXPORT const char *vhd_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
