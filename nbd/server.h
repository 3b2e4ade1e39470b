/*
 * server.h - the NBD protocol engine of vhdnbd (server.c), as main.c
 * sees it: a table of exports, then one call per accepted socket.
 */
#ifndef VHDNBD_SERVER_H
#define VHDNBD_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "largefile.h"
#include <sys/types.h>
#include <sys/uio.h>
#include "vhd.h"

struct export {
	char *name;             /* canonical export name (never "") */
	char *description;      /* for NBD_INFO_DESCRIPTION and NBD_OPT_LIST:
				   never a server path */
	const char *path;
	struct vhd *vhd;        /* shared by every connection to it */
	uint64_t size;
	int readonly;
	uint32_t min_block;     /* NBD_INFO_BLOCK_SIZE minimum: 1, or 4096
				   for a disk of 4 KiB logical sectors */
};

struct tls_session;

/* TLS for the connections (nbd/tls.c: tls_hooks()).  Through pointers so
 * that server.c links without GnuTLS (the fuzz harnesses include it). */
struct server_tls {
	int require;            /* FORCEDTLS: before TLS, only STARTTLS and
				   ABORT are served */
	/* The handshake, within timeout_ms; NULL: failed. */
	struct tls_session *(*accept)(int fd, unsigned timeout_ms);
	/* Like recv(): linger 0 never blocks, 1 waits as long as a plain
	 * recv() on the socket would (its SO_RCVTIMEO). */
	ssize_t (*recv)(struct tls_session *s, void *buf, size_t n, int linger);
	/* Like a sendmsg() that never blocks: bytes taken, or -1 with errno
	 * (EAGAIN: the socket is full; the next call must offer the same
	 * bytes first, as the record GnuTLS holds is made of them). */
	ssize_t (*send)(struct tls_session *s, const struct iovec *iov,
			int iovcnt);
	size_t  (*pending)(struct tls_session *s);   /* decrypted, unread */
	void    (*close)(struct tls_session *s);
};

struct server_config {
	struct export *exports; /* exports[0] is also the default export "" */
	size_t nexports;
	unsigned threads;       /* workers shared by all connections (>= 1) */
	uint64_t poll_ns;       /* longest busy-poll before waiting for a request */
	unsigned handshake_s;   /* negotiation must end within this (>= 1) */
	unsigned max_connections;
	uint64_t max_queued;    /* budget of queued replies and request buffers */
	int verbose;
	const struct server_tls *tls;   /* NULL: no TLS (--tls=off) */
};

/* Start the worker pool.  0 or -errno. */
int  server_init(const struct server_config *cfg);
/* Serve one accepted socket (takes ownership of fd). */
void server_connection(int fd, int is_tcp);
/* Stop: end handshakes, stop reading requests, let replies drain for a
 * few seconds, drop the clients that do not take theirs, stop the pool. */
void server_shutdown(void);

/* Log lines that a client can cause: at most one a second of each kind,
 * the rest counted in the next one. */
struct ratelimit {
	pthread_mutex_t lock;
	time_t last;
	unsigned held;
};
#define RATELIMIT_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }
void log_limited(struct ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_limited_flush(struct ratelimit *rl, const char *what);

#endif
