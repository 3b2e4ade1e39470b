/*
 * vhdfuse.h - state shared by vhdfuse's main.c (setup), ops.c (the
 * fuse_operations adapters) and part.c (partition tables).
 */
#ifndef VHDFUSE_H
#define VHDFUSE_H

#define FUSE_USE_VERSION 312

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <fuse.h>
#include "largefile.h"
#include "vhd.h"

#define VF_MAX_FILES 256        /* the disk plus up to 255 partitions */

/* One file the mount shows: the whole disk or one partition of it. */
struct vf_file {
	char name[16];              /* "disk", "p1", ... */
	char path[20];              /* "/disk", ...; "/" in file mode */
	uint64_t start;             /* byte offset on the disk */
	uint64_t size;              /* bytes */
	atomic_int opens;           /* open handles (for cache invalidation) */
	atomic_int inval;           /* page cache needs invalidating */
	pthread_mutex_t blocks_lock;
	uint64_t blocks_gen;        /* write generation blocks was computed at */
	uint64_t blocks;            /* st_blocks (512-byte units) */
};

struct vf_state {
	struct vhd *v;
	const char *image;          /* as given on the command line */
	int readonly;
	int file_mode;              /* MOUNTPOINT is a regular file: the root
				       is the disk itself */
	int direct_io;              /* bypass the kernel page cache */
	uint64_t disk_size;
	struct vf_file files[VF_MAX_FILES];
	int nfiles;                 /* files[0] is the disk */
	mode_t mode;                /* permission bits of the files */
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;    /* the image file's, at mount */
	atomic_uint_fast64_t write_gen;         /* bumped by every change */
	/* Invalidation thread: the disk and its partitions alias the same
	 * bytes through different inodes, so a write through one must drop
	 * the others' cached pages.  Done off the request thread, because the
	 * kernel holds the written pages locked until the write returns. */
	struct fuse *fuse;
	pthread_t inval_thread;
	int inval_running;
	int inval_stop;
	pthread_mutex_t inval_lock;
	pthread_cond_t inval_cond;
};

/* One partition found in a table: byte offset and length on the disk,
 * already clipped to it; number is the Linux-style index (p1..p4 MBR
 * primaries by slot, p5.. logicals, GPT entries by slot). */
struct vf_part {
	int number;
	uint64_t start, size;
};

/* part.c: read the disk's MBR or GPT.  Returns the number of partitions
 * stored in parts (at most max), 0 when there is no (valid) table, or
 * -errno when the disk cannot be read.  Never trusts the table: every
 * field is checked and partitions are clipped to disk_size. */
int vf_read_partitions(struct vhd *v, uint64_t disk_size,
		       struct vf_part *parts, int max);

/* ops.c */
extern const struct fuse_operations vf_ops;
int  vf_inval_start(struct vf_state *s);
void vf_inval_stop(struct vf_state *s);

/* pdw.c: let the kernel send direct writes in parallel (the open replies
 * of direct-I/O files get FOPEN_PARALLEL_DIRECT_WRITES).  Call after
 * fuse_mount, before the loop; 0 or -errno. */
int  vf_parallel_writes(struct fuse *fuse);

#endif
