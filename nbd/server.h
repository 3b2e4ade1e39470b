/*
 * server.h - the NBD protocol engine of vhdnbd (server.c), as main.c
 * sees it: a table of exports, then one call per accepted socket.
 */
#ifndef VHDNBD_SERVER_H
#define VHDNBD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "vhd.h"

struct export {
	char *name;             /* canonical export name (never "") */
	char *description;      /* human-readable, for NBD_INFO_DESCRIPTION */
	const char *path;
	struct vhd *vhd;        /* shared by every connection to it */
	uint64_t size;
	int readonly;
};

struct tls_session;

/* TLS for the connections (nbd/tls.c: tls_hooks()).  Through pointers so
 * that server.c links without GnuTLS (the fuzz harnesses include it). */
struct server_tls {
	int require;            /* FORCEDTLS: before TLS, only STARTTLS and
				   ABORT are served */
	struct tls_session *(*accept)(int fd);  /* handshake; NULL: failed */
	ssize_t (*recv)(struct tls_session *s, void *buf, size_t n);
	int     (*sendv)(struct tls_session *s, const struct iovec *iov,
			 int iovcnt);           /* all of it: 0 or -1 */
	size_t  (*pending)(struct tls_session *s);   /* decrypted, unread */
	void    (*close)(struct tls_session *s);
};

struct server_config {
	struct export *exports; /* exports[0] is also the default export "" */
	size_t nexports;
	unsigned threads;       /* threads serving each connection (>= 1) */
	uint64_t poll_ns;       /* longest busy-poll before a blocking recv */
	int verbose;
	const struct server_tls *tls;   /* NULL: no TLS (--tls=off) */
};

/* Start the worker pool.  0 or -errno. */
int  server_init(const struct server_config *cfg);
/* Serve one accepted socket on its own thread (takes ownership of fd). */
void server_connection(int fd, int is_tcp);
/* Stop: end every connection once its requests are answered, wait for
 * them, stop the workers. */
void server_shutdown(void);

#endif
