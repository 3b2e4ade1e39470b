/*
 * tls.h - TLS for vhdnbd (tls.c), with GnuTLS: credentials loaded once at
 * start, then one session for each connection that sends
 * NBD_OPT_STARTTLS.
 *
 * server.c reaches this only through struct server_tls (server.h), which
 * tls_hooks() fills in, so the protocol engine builds and links without
 * GnuTLS (the fuzz harnesses include server.c alone).
 */
#ifndef VHDNBD_TLS_H
#define VHDNBD_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct server_tls;
struct tls_session;

/* --tls: off (NOTLS in proto.md), on (SELECTIVETLS: TLS at the client's
 * choice, every export also in plaintext), require (FORCEDTLS). */
enum tls_mode { TLS_OFF, TLS_ON, TLS_REQUIRE };

/* The options, for main.c's getopt_long() table and usage(). */
#define TLS_OPT_BASE 0x7100
#define TLS_LONG_OPTIONS \
	{ "tls", required_argument, NULL, TLS_OPT_BASE }, \
	{ "tls-certificates", required_argument, NULL, TLS_OPT_BASE + 1 }, \
	{ "tls-psk", required_argument, NULL, TLS_OPT_BASE + 2 }, \
	{ "tls-verify-peer", no_argument, NULL, TLS_OPT_BASE + 3 }
#define TLS_USAGE \
"      --tls=off|on|require  TLS: none (default), offered, or demanded\n" \
"      --tls-certificates DIR  X.509: DIR/ca-cert.pem, server-cert.pem,\n" \
"                        server-key.pem\n" \
"      --tls-psk FILE    pre-shared keys made by psktool\n" \
"      --tls-verify-peer demand a client certificate signed by the CA\n"

/* One option from getopt_long(): 0 taken, 1 not a TLS option, -1 a bad
 * value (*msg says why). */
int  tls_option(int id, const char *arg, const char **msg);
/* Check the options together and load the credentials.  0, or the exit
 * code after printing one line naming the file or option and the
 * problem: 2 for a usage error, 1 otherwise. */
int  tls_setup(int verbose);
/* The hooks for server_config.tls: NULL when TLS is off. */
const struct server_tls *tls_hooks(void);
void tls_cleanup(void);

/* A server handshake on fd within timeout_ms; NULL if it failed. */
struct tls_session *tls_accept(int fd, unsigned timeout_ms);
/* Like recv(): bytes read, 0 at the end, -1 with errno (EAGAIN: nothing
 * now).  linger 0 never waits; 1 waits as a recv() on the socket would. */
ssize_t tls_recv(struct tls_session *s, void *buf, size_t n, int linger);
/* Like a sendmsg() that never waits: bytes of iov taken, or -1 with errno.
 * After EAGAIN the next call must offer the same bytes first. */
ssize_t tls_send(struct tls_session *s, const struct iovec *iov, int iovcnt);
/* Bytes already decrypted and waiting to be read (a poll() on the socket
 * does not see them). */
size_t  tls_pending(struct tls_session *s);
/* Send close_notify if that can be done without waiting, then free.  The
 * socket stays open.  s may be NULL. */
void    tls_close(struct tls_session *s);

#endif
