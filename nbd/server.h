/*
 * server.h - the NBD protocol engine of vhdnbd (server.c), as main.c
 * sees it: a table of exports, then one call per accepted socket.
 */
#ifndef VHDNBD_SERVER_H
#define VHDNBD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "largefile.h"
#include "vhd.h"

struct export {
	char *name;             /* canonical export name (never "") */
	char *description;      /* human-readable, for NBD_INFO_DESCRIPTION */
	const char *path;
	struct vhd *vhd;        /* shared by every connection to it */
	uint64_t size;
	int readonly;
	uint32_t min_block;     /* NBD_INFO_BLOCK_SIZE minimum: 1, or 4096
				   for a disk of 4 KiB logical sectors */
};

struct server_config {
	struct export *exports; /* exports[0] is also the default export "" */
	size_t nexports;
	unsigned threads;       /* threads serving each connection (>= 1) */
	uint64_t poll_ns;       /* longest busy-poll before a blocking recv */
	int verbose;
};

/* Start the worker pool.  0 or -errno. */
int  server_init(const struct server_config *cfg);
/* Serve one accepted socket on its own thread (takes ownership of fd). */
void server_connection(int fd, int is_tcp);
/* Stop: end every connection once its requests are answered, wait for
 * them, stop the workers. */
void server_shutdown(void);

#endif
