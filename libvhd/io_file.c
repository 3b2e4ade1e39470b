/* io_file.c - the POSIX file backend: pread/pwrite loops, fdatasync,
 * hole punching, and the image locks: QEMU's protocol of OFD byte-range
 * locks, plus flock() for older versions of our own tools (SPEC.md,
 * "Locking").  64-bit off_t comes from the build (largefile.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* F_OFD_SETLK, F_OFD_GETLK */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sysmacros.h>      /* major, minor */
#include <sys/vfs.h>
#endif
#include "internal.h"

#define HEAT_SLOTS      1024    /* regions tracked at once (below) */

struct io_file {
	struct vhd_io io;
	int fd;
	int lock;       /* VHD_LOCK_* held */
	char *path;
	/* writeback pacing (below), if opened with VHD_IO_PACE */
	int pace;
	atomic_uint_fast64_t streamed;  /* bytes of large writes */
	pthread_mutex_t pace_lock;
	pthread_cond_t pace_cond;
	pthread_t pacer;
	int pace_started, pace_failed, pace_want, pace_stop;
	atomic_int cold;        /* partial-page writes left to prefetch */
	atomic_uint_fast64_t heat[HEAT_SLOTS];  /* hot regions (below) */
};

/* Writeback pacing (VHD_IO_PACE, from VHD_OPEN_PACE_WRITES).  Bulk
 * writes land in the page cache and stay there until the kernel's dirty
 * threshold (a tenth of memory by default) or our flush: a 1 GiB copy
 * then spends its time in memcpy first and in fdatasync after, one after
 * the other, and the disk idles during the first (a FUSE `dd conv=fsync`
 * of 1 GiB ran at 0.7x the raw file's O_DIRECT speed).  Every PACE_BYTES
 * of large writes a helper thread asks the kernel to start writing the
 * file's dirty pages back (sync_file_range WRITE: it does not wait for
 * them, nor make anything durable), so the disk works while the data
 * still arrives.  A thread, because the call submits the I/O in its
 * caller's time.  Opt-in, because a writer that never flushes (nbdcopy
 * without --flush into a file deleted after) pays for I/O it would not
 * have done: a fifth of its speed, measured.  Small random writes do not
 * count: their pages are often written again.  Durability and write
 * order are not touched: the kernel may write any dirty page at any
 * time anyway, and our order rests on the barriers (f_flush) alone. */
#define PACE_MIN_WRITE  (128u << 10)
#define PACE_BYTES      (8u << 20)

#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
static void *
pacer_main(void *arg)
{
	struct io_file *f = arg;

	pthread_mutex_lock(&f->pace_lock);
	for (;;) {
		while (!f->pace_want && !f->pace_stop)
			pthread_cond_wait(&f->pace_cond, &f->pace_lock);
		if (f->pace_stop)
			break;
		f->pace_want = 0;
		pthread_mutex_unlock(&f->pace_lock);
		(void)sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&f->pace_lock);
	}
	pthread_mutex_unlock(&f->pace_lock);
	return NULL;
}

static void
pace(struct io_file *f, size_t n)
{
	if (!f->pace || n < PACE_MIN_WRITE)
		return;
	uint64_t before = atomic_fetch_add(&f->streamed, n);
	if (before / PACE_BYTES == (before + n) / PACE_BYTES)
		return;
	pthread_mutex_lock(&f->pace_lock);
	if (!f->pace_started && !f->pace_failed) {
		if (pthread_create(&f->pacer, NULL, pacer_main, f) == 0)
			f->pace_started = 1;
		else
			f->pace_failed = 1;     /* no thread: no pacing */
	}
	f->pace_want = 1;
	pthread_cond_signal(&f->pace_cond);
	pthread_mutex_unlock(&f->pace_lock);
}

static void
pace_stop(struct io_file *f)
{
	if (!f->pace_started)
		return;
	pthread_mutex_lock(&f->pace_lock);
	f->pace_stop = 1;
	pthread_cond_signal(&f->pace_cond);
	pthread_mutex_unlock(&f->pace_lock);
	pthread_join(f->pacer, NULL);
}
#else
static void
pace(struct io_file *f, size_t n)
{
	(void)f;
	(void)n;
}

static void
pace_stop(struct io_file *f)
{
	(void)f;
}
#endif

/* Partial pages.  A write that starts or ends inside a page makes the
 * kernel read that page first, synchronously and one page at a time,
 * unless it is cached.  Images whose block data sits off a page boundary
 * (QEMU's layout packs blocks 2 MiB + 512 bytes apart, so seven blocks in
 * eight start 512 to 3584 bytes past one) turn every 4 KiB guest write
 * there into two such reads when the image is not in the page cache:
 * 13-15k IOPS at QD16 where nbdkit's raw file does
 * 55-60k.  Asking for both edge pages up front (one request when they
 * touch) lets their reads run together and overlap other threads' work:
 * 1.8x, measured.  A hint: the write is the same with or without it.
 *
 * On a cached file the call is pure cost (an extra system call per
 * write: 7% fewer IOPS, measured), so small writes ask only while the
 * file looks cold: a small partial-page write that took longer than any
 * page-cache copy does (EDGE_SLOW_NS; a cached 4 KiB write takes 1-4 us
 * here, an uncached one 40-130) lets the next EDGE_COLD_WRITES ask; then
 * one goes unaided again and shows whether it still is.  Large writes
 * always ask (and durable ones, below): two calls are nothing beside
 * their cost, and their own time says nothing about the cache.
 *
 * Hot regions.  Two page reads per write remain, each a small random
 * read; a region of the file written over and over pays them again and
 * again where one large read would have cached all of it (2 MiB in
 * 1.3 ms here: the device time of 30 such page reads at QD1, 50 at QD16).
 * Which regions will stay hot is not known in advance, so the choice is
 * made as in renting skis: after HEAT_READS slow partial-page writes
 * into one region, the whole region is asked for.  A region written
 * fewer times costs nothing more.  One written exactly that often and
 * never again costs the large read on top: at worst 3-4 times the page
 * reads alone.  Waiting for as many writes as the large read costs would
 * bound that at 2, but then the reads paid on the way dominate: cold
 * QD1/QD16 writes into a QEMU-layout image ran at 17k/97k IOPS with 32,
 * 22k/111k with 16, 26k/132k with 8 (nbdkit's raw file 21k/120k, no
 * reads); 31-40k at QD16 without it.  Slow here is HEAT_SLOW_NS, below
 * EDGE_SLOW_NS: a page read often takes less than 50 us, and a write
 * counted wrongly costs little (a hint about pages that may be cached),
 * where a wrong switch to the cold mode above costs every write an
 * extra call (QD16 into a cached image: 5% fewer IOPS at 20 us, none
 * at 50).  The regions being counted sit in a table of HEAT_SLOTS, one
 * per slot by region number; a slot holds the region's number with its
 * count, so regions that share a slot never add up each other's writes:
 * a new one starts the count again. */
#define EDGE_PAGE               4096u
#define EDGE_SMALL              (64u << 10)
#define EDGE_SLOW_NS            50000u
#define EDGE_COLD_WRITES        256
#define HEAT_SHIFT              21      /* regions of 2 MiB */
#define HEAT_SLOW_NS            20000u
#define HEAT_READS              16
#define HEAT_COUNT              0xffu   /* a slot: region << 8 | count */

/* Asks the kernel to start reading [off, off + len) into the page cache
 * (it does not wait for the reads); nothing where there is no such call. */
static void
will_need(int fd, uint64_t off, uint64_t len)
{
#ifdef POSIX_FADV_WILLNEED
	(void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
#else
	(void)fd;
	(void)off;
	(void)len;
#endif
}

static void
prefetch_edges(int fd, size_t n, uint64_t off)
{
	const uint64_t mask = EDGE_PAGE - 1;
	uint64_t end = off + n, head = off & ~mask, tail = end & ~mask;
	int h = (off & mask) != 0, t = (end & mask) != 0;

	if (h && t && tail - head <= EDGE_PAGE) {
		will_need(fd, head, tail - head + EDGE_PAGE);
		return;
	}
	if (h)
		will_need(fd, head, EDGE_PAGE);
	if (t)
		will_need(fd, tail, EDGE_PAGE);
}

/* Counts a slow partial-page write at off into its region; the
 * HEAT_READS-th asks for the whole region and starts the count again. */
static void
heat_add(struct io_file *f, uint64_t off)
{
	uint64_t region = off >> HEAT_SHIFT, tag = region << 8, old, new;
	atomic_uint_fast64_t *slot = &f->heat[region % HEAT_SLOTS];

	old = atomic_load_explicit(slot, memory_order_relaxed);
	do {
		new = (old & ~(uint64_t)HEAT_COUNT) == tag ? old + 1 : tag | 1;
	} while (!atomic_compare_exchange_weak_explicit(
			slot, &old, new, memory_order_relaxed,
			memory_order_relaxed));
	if ((new & HEAT_COUNT) < HEAT_READS)
		return;
	atomic_store_explicit(slot, tag, memory_order_relaxed);
	will_need(f->fd, region << HEAT_SHIFT, (uint64_t)1 << HEAT_SHIFT);
}

static uint64_t
clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock that times writes; a test may set its own (vhd_test.h). */
static uint64_t (*now_ns)(void) = clock_ns;

void
vhd_test_edge_clock(uint64_t (*fn)(void))
{
	now_ns = fn != NULL ? fn : clock_ns;
}

/* Before a write: prefetches its edge pages or not; returns the time to
 * give edges_after (0: not timed). */
static uint64_t
edges_before(struct io_file *f, size_t n, uint64_t off)
{
	if (((off | (off + n)) & (EDGE_PAGE - 1)) == 0)
		return 0;
	if (n > EDGE_SMALL) {
		prefetch_edges(f->fd, n, off);
		return 0;
	}
	if (atomic_load_explicit(&f->cold, memory_order_relaxed) > 0) {
		atomic_fetch_sub_explicit(&f->cold, 1, memory_order_relaxed);
		prefetch_edges(f->fd, n, off);
	}
	return now_ns();        /* timed either way: for the region's count */
}

/* After a small partial-page write at off that started at t0. */
static void
edges_after(struct io_file *f, uint64_t t0, uint64_t off)
{
	if (t0 == 0)
		return;
	uint64_t t = now_ns() - t0;
	if (t <= HEAT_SLOW_NS)
		return;
	heat_add(f, off);
	if (t > EDGE_SLOW_NS)
		atomic_store_explicit(&f->cold, EDGE_COLD_WRITES,
		                      memory_order_relaxed);
}

static int
f_pread(struct vhd_io *io, void *buf, size_t n, uint64_t off)
{
	struct io_file *f = (struct io_file *)io;
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = pread(f->fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;   /* past the end: never silent */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int
f_pwrite(struct vhd_io *io, const void *buf, size_t n, uint64_t off)
{
	struct io_file *f = (struct io_file *)io;
	const uint8_t *p = buf;

	pace(f, n);
	uint64_t t0 = edges_before(f, n, off), start = off;
	while (n > 0) {
		ssize_t r = pwrite(f->fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;   /* no progress: never loop forever */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	edges_after(f, t0, start);
	return 0;
}

static int
f_flush(struct vhd_io *io)
{
	struct io_file *f = (struct io_file *)io;

	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int
f_get_size(struct vhd_io *io, uint64_t *size)
{
	struct io_file *f = (struct io_file *)io;
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
f_truncate(struct vhd_io *io, uint64_t size)
{
	struct io_file *f = (struct io_file *)io;

	return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
}

static int
f_punch(struct vhd_io *io, uint64_t off, uint64_t n)
{
#ifdef FALLOC_FL_PUNCH_HOLE
	struct io_file *f = (struct io_file *)io;

	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)n) < 0)
		return -errno;
	return 0;
#else
	(void)io; (void)off; (void)n;
	return -ENOTSUP;
#endif
}

static void
f_close(struct vhd_io *io)
{
	struct io_file *f = (struct io_file *)io;

	if (!f)
		return;
	pace_stop(f);
	if (f->fd >= 0)
		close(f->fd);   /* releases the OFD locks and the flock */
	pthread_cond_destroy(&f->pace_cond);
	pthread_mutex_destroy(&f->pace_lock);
	free(f->path);
	free(f);
}

/* ---- Image locks --------------------------------------------------------
 * QEMU's image-locking protocol (block/file-posix.c, raw_apply_lock_bytes
 * and raw_check_lock_bytes), so that QEMU and we refuse each other.  Each
 * permission bit i (BLK_PERM_*: 0 consistent read, 1 write, 2 write
 * unchanged, 3 resize) that a user holds is a shared OFD lock on byte
 * 100 + i; each bit it does not let others hold is a shared OFD lock on
 * byte 200 + i.  A user conflicts with another when one holds a bit the
 * other does not share: it finds a lock on 200 + i for a bit it holds, or
 * on 100 + i for a bit it does not share.  Locks are applied first and
 * checked after, as QEMU does, so two users racing both see each other.
 * What QEMU 7.2's vpc opens lock (seen in /proc/PID/fdinfo):
 *   read-write          100 101 103   201 203
 *   read-only           100           201 203
 *   read-only, -U       100
 * and ours take the same three shapes (VHD_LOCK_WRITE, _READ, _PEEK). */
#define LOCK_PERM_BASE   100
#define LOCK_SHARED_BASE 200
#define PERM_READ        0x1u   /* BLK_PERM_CONSISTENT_READ */
#define PERM_WRITE       0x2u   /* BLK_PERM_WRITE */
#define PERM_RESIZE      0x8u   /* BLK_PERM_RESIZE */
#define PERM_NBITS       4

static const struct {
	unsigned perm, unshared;
	int flock_op;
} lock_modes[] = {
	[VHD_LOCK_READ]  = { PERM_READ, PERM_WRITE | PERM_RESIZE, LOCK_SH },
	[VHD_LOCK_WRITE] = { PERM_READ | PERM_WRITE | PERM_RESIZE,
			     PERM_WRITE | PERM_RESIZE, LOCK_EX },
	[VHD_LOCK_PEEK]  = { PERM_READ, 0, 0 },
};

/* How long an open waits for a conflicting lock, and whom it tells, is
 * vhd_lock_wait (vhd.c); it tells once it has waited VHD_LOCK_QUIET_MS. */

#ifdef F_OFD_SETLK
static int
ofd(int fd, int cmd, short type, off_t start, off_t len, off_t *held)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	if (held)
		*held = fl.l_type == F_UNLCK ? -1 : fl.l_start;
	return 0;
}

static void
ofd_release(int fd)
{
	ofd(fd, F_OFD_SETLK, F_UNLCK, LOCK_PERM_BASE,
	    LOCK_SHARED_BASE + PERM_NBITS - LOCK_PERM_BASE, NULL);
}
#endif

/* flock() stays for older versions of our tools, which know no other
 * lock.  On NFS Linux emulates flock() with a whole-file byte-range
 * lock, which would conflict with our own OFD locks: there the OFD locks
 * alone do the work. */
static int
flock_wanted(int fd)
{
#ifdef __linux__
	struct statfs sf;

	if (fstatfs(fd, &sf) == 0 && sf.f_type == 0x6969)  /* NFS */
		return 0;
#endif
	(void)fd;
	return 1;
}

/* One attempt: 0, -EBUSY with *byte the lock byte found held (-1 for a
 * flock), or another -errno.  Holds nothing after a failure. */
static int
try_lock(int fd, int mode, long *byte)
{
	unsigned perm = lock_modes[mode].perm;
	unsigned unshared = lock_modes[mode].unshared;
	int r;

#ifdef F_OFD_SETLK
	for (int i = 0; i < PERM_NBITS; i++) {
		long b = LOCK_PERM_BASE + i;
		r = 0;
		if (perm & (1u << i))
			r = ofd(fd, F_OFD_SETLK, F_RDLCK, b, 1, NULL);
		if (r == 0 && (unshared & (1u << i))) {
			b = LOCK_SHARED_BASE + i;
			r = ofd(fd, F_OFD_SETLK, F_RDLCK, b, 1, NULL);
		}
		/* A write lock there (not QEMU's: some other program's
		 * whole-file lock) refuses even our shared one. */
		if (r == -EAGAIN || r == -EACCES) {
			*byte = b;
			r = -EBUSY;
		}
		if (r < 0)
			goto fail;
	}
	/* Bits others hold that we do not share first: a writer is then
	 * named as the writer even though it also keeps writers out. */
	for (int pass = 0; pass < 2; pass++) {
		unsigned bits = pass == 0 ? unshared : perm;
		off_t base = pass == 0 ? LOCK_PERM_BASE : LOCK_SHARED_BASE;
		for (int i = 0; i < PERM_NBITS; i++) {
			off_t held = -1;
			if (!(bits & (1u << i)))
				continue;
			r = ofd(fd, F_OFD_GETLK, F_WRLCK, base + i, 1, &held);
			if (r < 0)
				goto fail;
			if (held >= 0) {      /* the byte, not the range */
				*byte = (long)(base + i);
				r = -EBUSY;
				goto fail;
			}
		}
	}
#endif
	if (lock_modes[mode].flock_op && flock_wanted(fd) &&
	    flock(fd, lock_modes[mode].flock_op | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		*byte = -1;
		goto fail;
	}
	return 0;
fail:
#ifdef F_OFD_SETLK
	ofd_release(fd);
#endif
	return r;
}

/* One holder from a "lock:" line of /proc/PID/fdinfo/FD ("lock:\t1:
 * OFDLCK ADVISORY  READ -1 fe:00:1234 100 101", the device as the hex
 * major:minor of the file system): is it on our file, does it cover byte
 * (or is it a flock, for byte -1), and is it a write lock? */
static int
lock_line_matches(const char *line, const struct stat *st, long byte,
		  int *write)
{
	char kind[16], type[16], start[24], end[24];
	unsigned maj, mnr;
	unsigned long long ino;

	if (sscanf(line, "lock: %*s %15s %*s %15s %*s %x:%x:%llu %23s %23s",
		   kind, type, &maj, &mnr, &ino, start, end) != 7)
		return 0;
	if (maj != major(st->st_dev) || mnr != minor(st->st_dev) ||
	    ino != (unsigned long long)st->st_ino)
		return 0;
	*write = strcmp(type, "WRITE") == 0;
	if (byte < 0)
		return strcmp(kind, "FLOCK") == 0;
	if (strcmp(kind, "OFDLCK") != 0 && strcmp(kind, "POSIX") != 0)
		return 0;
	return atol(start) <= byte &&
	       (strcmp(end, "EOF") == 0 || atol(end) >= byte);
}

/* Does open file N of process P hold a lock of st's file on byte? */
static int
fd_holds(const char *pid, const char *fdn, const struct stat *st, long byte,
	 int *write)
{
	char path[600], line[256];
	FILE *fp;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, fdn);
	if (!(fp = fopen(path, "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), fp))
		if (strncmp(line, "lock:", 5) == 0)
			found = lock_line_matches(line, st, byte, write);
	fclose(fp);
	return found;
}

/* Copies src into name[n], cut if need be (names are only shown). */
static void
copy_cut(char *name, size_t n, const char *src)
{
	size_t l = strlen(src);

	if (l >= n)
		l = n - 1;
	memcpy(name, src, l);
	name[l] = 0;
}

/* A process's program name: the base name of argv[0] (comm is cut at
 * 15 characters: "qemu-storage-da"), else comm. */
static void
proc_name(const char *pid, char *name, size_t n)
{
	char path[300], buf[256];
	size_t got = 0;
	FILE *fp;

	copy_cut(name, n, "a program");
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	if ((fp = fopen(path, "re"))) {
		got = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
	}
	buf[got] = 0;
	if (got && buf[0]) {
		const char *b = strrchr(buf, '/');
		copy_cut(name, n, b ? b + 1 : buf);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	if ((fp = fopen(path, "re"))) {
		if (fgets(buf, sizeof(buf), fp)) {
			buf[strcspn(buf, "\n")] = 0;
			copy_cut(name, n, buf);
		}
		fclose(fp);
	}
}

/* Appends "NAME (pid P)" for a process with an open file that holds
 * the lock on st's file.  The kernel reports OFD locks with pid -1, so
 * the holders are found in the "lock:" lines of /proc/PID/fdinfo/FD
 * (hidden from everyone but root for other users' processes).  The lines
 * name device and inode, so no file is stat'ed: a stat through
 * /proc/PID/fd of a file on a hung FUSE mount would hang with it. */
static int
scan_pid(const char *pid, int self_fd, const struct stat *st, long byte,
	 char *out, size_t n, int *write)
{
	char path[300];
	struct dirent *e;
	DIR *d;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%s/fdinfo", pid);
	if (!(d = opendir(path)))
		return 0;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (atol(pid) == (long)getpid() && atoi(e->d_name) == self_fd)
			continue;
		found = fd_holds(pid, e->d_name, st, byte, write);
	}
	closedir(d);
	if (found) {
		char name[64];
		size_t l = strlen(out);
		proc_name(pid, name, sizeof(name));
		snprintf(out + l, n - l, "%s%s (pid %s)", l ? ", " : "",
			 name, pid);
	}
	return found;
}

/* The message for a lock found held: who holds it and what it does. */
static void
describe_conflict(int fd, const char *path, long byte, char *msg, size_t n)
{
	char who[200] = "";
	int nfound = 0, write = 0, more = 0;
	struct stat st;
	struct dirent *e;
	DIR *d;

	if (fstat(fd, &st) == 0 && (d = opendir("/proc"))) {
		while ((e = readdir(d))) {
			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			if (nfound == 2) {
				int w;
				char tmp[200] = "";
				more += scan_pid(e->d_name, fd, &st, byte, tmp,
						 sizeof(tmp), &w);
				if (more)
					break;
				continue;
			}
			nfound += scan_pid(e->d_name, fd, &st, byte, who,
					   sizeof(who), &write);
		}
		closedir(d);
	}
	/* Byte 100 + i: the holder has permission i (1 write, 3 resize);
	 * 200 + i: it keeps others from having it (it reads). */
	const char *does;
	if (byte < 0)
		does = write ? "writing it" : "reading it";
	else if (byte == LOCK_PERM_BASE + 1 || byte == LOCK_PERM_BASE + 3)
		does = "writing it";
	else if (byte >= LOCK_SHARED_BASE)
		does = "reading it and keeps writers out";
	else
		does = "using it";
	(void)path;     /* the caller's record names the file */
	snprintf(msg, n, "in use by %s%s, which %s %s",
		 nfound ? who : "another program", more ? " and others" : "",
		 nfound > 1 || more ? "are" : "is", does);
}

static void
nap(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t
now_ms(void)
{
	return clock_ns() / 1000000;    /* the real clock, never the test's */
}

/* Takes lock mode on f, waiting up to vhd_lock_wait.ms for a holder to
 * let go (a program that is closing the image: fusermount3 -u returns before
 * vhdfuse has closed it).  Between attempts we hold nothing, so two
 * waiters never keep each other out. */
static int
lock_file(struct io_file *f, int mode)
{
	char msg[512];
	long byte = 0;
	uint64_t deadline;
	unsigned step = 10;
	int r = try_lock(f->fd, mode, &byte);

	if (r == -EBUSY && vhd_lock_wait.ms > 0) {
		uint64_t start = now_ms();
		int told = 0;
		deadline = start + vhd_lock_wait.ms;
		while (r == -EBUSY && now_ms() < deadline) {
			/* A holder that is closing lets go within a few ms;
			 * say that we wait only if it takes longer. */
			if (!told && now_ms() - start >= VHD_LOCK_QUIET_MS) {
				describe_conflict(f->fd, f->path, byte, msg,
						  sizeof(msg));
				/* The record (vhd_last_error) tells the
				 * callback the file and the holder apart. */
				vhd_err_code(EBUSY, VHD_CODE_LOCKED, "'%s': %s",
					     f->path, msg);
				if (vhd_lock_wait.waiting)
					vhd_lock_wait.waiting(vhd_lock_wait.arg,
							      vhd_errmsg(),
							      vhd_lock_wait.ms);
				told = 1;
			}
			nap(step);
			if (step < 100)
				step *= 2;
			r = try_lock(f->fd, mode, &byte);
		}
	}
	if (r == -EBUSY) {
		describe_conflict(f->fd, f->path, byte, msg, sizeof(msg));
		return vhd_err_code(EBUSY, VHD_CODE_LOCKED, "'%s': %s", f->path,
				    msg);
	}
	if (r < 0)
		return vhd_err(-r, "'%s': cannot lock: %s", f->path,
			       strerror(-r));
	f->lock = mode;
	return 0;
}

static const struct vhd_io_ops file_ops = {
	.version = VHD_IO_OPS_VERSION,
	.pread = f_pread,
	.pwrite = f_pwrite,
	.flush = f_flush,
	.get_size = f_get_size,
	.truncate = f_truncate,
	.punch = f_punch,
	.close = f_close,
};

int
vhd_io_file_pwrite_sync(struct vhd_io *io, const void *buf, size_t n,
			uint64_t off)
{
#ifdef RWF_DSYNC
	struct io_file *f = (struct io_file *)io;
	const uint8_t *p = buf;
	int first = 1;

	if (io->ops != &file_ops)
		return -ENOTSUP;
	/* Always: beside a durable write one more call costs nothing, and
	 * its time (the disk's) says nothing about the cache. */
	prefetch_edges(f->fd, n, off);
	while (n > 0) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
		ssize_t r = pwritev2(f->fd, &iov, 1, (off_t)off, RWF_DSYNC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* An old kernel or a file system without it. */
			if (first && (errno == ENOSYS || errno == EOPNOTSUPP ||
				      errno == EINVAL))
				return -ENOTSUP;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		first = 0;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
#else
	(void)io;
	(void)buf;
	(void)n;
	(void)off;
	return -ENOTSUP;
#endif
}

static int
file_open(const char *path, unsigned flags, int lock, struct vhd_io **out)
{
	int oflags = O_CLOEXEC, r;
	struct io_file *f;

	if (!out || !path)
		return vhd_err(EINVAL, "vhd_io_file_open: no path");
	oflags |= (flags & VHD_IO_RDWR) ? O_RDWR : O_RDONLY;
	if (flags & VHD_IO_CREATE)
		oflags |= O_RDWR | O_CREAT | O_EXCL;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return vhd_err(ENOMEM, "'%s': no memory", path);
	}
	if (pthread_mutex_init(&f->pace_lock, NULL) != 0) {
		free(f->path);
		free(f);
		return vhd_err(ENOMEM, "'%s': no memory", path);
	}
	if (pthread_cond_init(&f->pace_cond, NULL) != 0) {
		pthread_mutex_destroy(&f->pace_lock);
		free(f->path);
		free(f);
		return vhd_err(ENOMEM, "'%s': no memory", path);
	}
	f->io.ops = &file_ops;
	f->io.name = f->path;
	f->pace = (flags & VHD_IO_PACE) != 0;     /* only writes count */
	f->fd = open(path, oflags, 0644);
	if (f->fd < 0) {
		int e = errno;
		f_close(&f->io);
		return vhd_err(e, "'%s': %s", path, strerror(e));
	}
	if (lock && (r = lock_file(f, lock)) < 0) {
		f_close(&f->io);
		return r;
	}
	*out = &f->io;
	return 0;
}

int
vhd_io_file_open(struct vhd_io **out, const char *path, unsigned flags)
{
	return file_open(path, flags, VHD_LOCK_NONE, out);
}

/* ---- The POSIX VFS ------------------------------------------------------ */

static int
u_open(struct vhd_vfs *vfs, const char *name, unsigned flags, int lock,
       struct vhd_io **out)
{
	(void)vfs;
	return file_open(name, flags, lock, out);
}

static int
u_lock(struct vhd_vfs *vfs, struct vhd_io *io, int lock)
{
	struct io_file *f = (struct io_file *)io;

	(void)vfs;
	if (!io || io->ops != &file_ops)
		return vhd_err(EINVAL, "'%s': not a file of this VFS",
			       io && io->name ? io->name : "?");
	if (f->lock)
		return vhd_err(EINVAL, "'%s': already locked", f->path);
	return lock ? lock_file(f, lock) : 0;
}

int
vhd_io_file_fd(struct vhd_io *io)
{
	return io && io->ops == &file_ops ? ((struct io_file *)io)->fd : -1;
}

/* (st_dev, st_ino). */
static int
u_identity(struct vhd_vfs *vfs, struct vhd_io *io, uint64_t id[2])
{
	struct stat st;

	(void)vfs;
	if (!io || io->ops != &file_ops)
		return 0;
	if (fstat(((struct io_file *)io)->fd, &st) < 0)
		return -errno;
	id[0] = (uint64_t)st.st_dev;
	id[1] = (uint64_t)st.st_ino;
	return 1;
}

static int
u_realpath(struct vhd_vfs *vfs, const char *name, char **out)
{
	(void)vfs;
	if (!(*out = realpath(name, NULL)))
		return -errno;
	return 0;
}

static int
u_mtime(struct vhd_vfs *vfs, const char *name, int64_t *secs)
{
	struct stat st;

	(void)vfs;
	if (stat(name, &st) < 0)
		return -errno;
	*secs = (int64_t)st.st_mtime;
	return 0;
}

static int
u_random(struct vhd_vfs *vfs, void *buf, size_t n)
{
	uint8_t *p = buf;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	(void)vfs;
	if (fd < 0)
		return -errno;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			return -EIO;
		}
		p += r;
		n -= (size_t)r;
	}
	close(fd);
	return 0;
}

static int
u_rename(struct vhd_vfs *vfs, const char *from, const char *to)
{
	(void)vfs;
	return rename(from, to) < 0 ? -errno : 0;
}

static int
u_unlink(struct vhd_vfs *vfs, const char *name)
{
	(void)vfs;
	return unlink(name) < 0 ? -errno : 0;
}

static struct vhd_vfs unix_vfs = {
	.version = VHD_VFS_VERSION,
	.name = "unix",
	.open_name = u_open,
	.lock = u_lock,
	.identity = u_identity,
	.full_name = u_realpath,
	.mtime = u_mtime,
	.randomness = u_random,
	.rename_name = u_rename,
	.delete_name = u_unlink,
};

struct vhd_vfs *
vhd_vfs_platform(void)
{
	return &unix_vfs;
}
