/*
 * server.c - the NBD protocol for vhdnbd: fixed newstyle negotiation and
 * the transmission phase (NetworkBlockDevice/nbd doc/proto.md).
 *
 * Threads: each connection has a thread that negotiates, then a few
 * threads (--threads) that take turns reading requests (under the
 * connection's read lock).  The reader answers a request that needs no
 * I/O (a read of a hole) itself, collecting such replies into one send,
 * and gives the lock up to serve any other request, writing its reply
 * under the send lock.  Replies may go out of order (proto.md allows it),
 * a slow request does not hold up the others, and no request is handed
 * from one thread to another (the design of nbdkit's
 * server/connections.c).  All connections to an export share one struct
 * vhd, which is thread-safe: a FLUSH on one connection covers writes made
 * on any, which is what NBD_FLAG_CAN_MULTI_CONN promises.
 *
 * Nothing the client sends is trusted: lengths are bounded before any
 * allocation, offset+length is checked without overflow before any call
 * into the library, and protocol violations end only that connection.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "server.h"

/* Largest READ or WRITE payload, advertised as the maximum block size.
 * proto.md: without advertised limits a server should accept 32 MiB. */
#define MAX_PAYLOAD       (32u * 1024 * 1024)
#define PREF_BLOCK        4096u
/* Option data we are willing to parse; larger options get
 * NBD_REP_ERR_TOO_BIG (after skipping their data) or, when absurd, a hard
 * disconnect (proto.md allows one for denial of service). */
#define MAX_OPTION        65536u
#define MAX_OPTION_SKIP   (16u * 1024 * 1024)
#define MAX_CONNECTIONS   4096u
#define THREAD_STACK      (1024u * 1024)
/* Extents per NBD_CMD_BLOCK_STATUS reply (proto.md lets a server return
 * less than the whole range). */
#define MAX_EXTENTS       1024u
#define HOLE_REPLY_SIZE   (NBD_STRUCTURED_REPLY_SIZE + 12)
#define META_ID_ALLOCATION 1u
#define META_ALLOCATION   "base:allocation"

struct conn {
	int fd;
	struct tls_session *tls;        /* after STARTTLS: all I/O through it */
	_Atomic int dead;       /* a send failed: the client is gone */
	int no_zeroes, structured;
	const struct export *exp;
	const struct export *meta_exp;  /* export named in SET_META_CONTEXT */
	int meta_alloc;         /* base:allocation selected */
	uint8_t rbuf[16384];
	size_t rpos, rlen;
	uint64_t poll_ns;       /* busy-poll window (under read_lock) */
	/* Replies of requests answered by the reader, sent together once no
	 * further request is buffered (under read_lock). */
	uint8_t obuf[2048];
	size_t olen;
	int quit;               /* DISC or EOF seen (under read_lock) */
	pthread_mutex_t read_lock;      /* one thread reads a request at a time */
	pthread_mutex_t send_lock;      /* one reply at a time */
	struct conn *prev, *next;
};

struct request {
	struct conn *c;
	uint16_t flags, type;
	uint8_t cookie[8];      /* echoed back as sent */
	uint64_t off;
	uint32_t len;
	uint8_t *data;          /* WRITE payload */
};

static const struct server_config *cfg;

/* Live connections, so shutdown can end them. */
static pthread_mutex_t c_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c_cond = PTHREAD_COND_INITIALIZER;
static struct conn *c_list;
static unsigned c_count;
static int c_stopping;

static void
logv(const char *fmt, const char *arg)
{
	if (cfg->verbose)
		fprintf(stderr, fmt, arg);
}

/* ---- socket I/O ---------------------------------------------------------- */

static uint64_t
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Smallest busy-poll window worth trying. */
#define POLL_MIN_NS 4000u

/* Adapt the window to how long the last blocking wait took (including
 * the polling before it), the rule of QEMU's adaptive AioContext polling:
 * a wait that the window would have covered grows it, a wait longer than
 * the maximum (an idle client) shrinks it, towards no polling at all. */
static void
poll_adapt(struct conn *c, uint64_t waited)
{
	uint64_t max = cfg->poll_ns;

	if (waited <= c->poll_ns)
		return;
	if (waited > max)
		c->poll_ns = c->poll_ns / 2 < POLL_MIN_NS ? 0 : c->poll_ns / 2;
	else if (c->poll_ns < max)
		c->poll_ns = c->poll_ns ? c->poll_ns * 2 : POLL_MIN_NS;
	if (c->poll_ns > max)
		c->poll_ns = max;
}

/* recv() that first busy-polls for up to c->poll_ns.  A client that keeps
 * a queue of requests sends the next one within microseconds; sleeping in
 * recv() instead means it must wake us, a cross-CPU interrupt (a VM exit
 * under a hypervisor) that costs more than serving a cached read. */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t n)
{
	uint64_t t0 = 0;
	ssize_t r;

	if (c->tls)
		return cfg->tls->recv(c->tls, buf, n);
	if (cfg->poll_ns > 0) {
		t0 = now_ns();
		while (c->poll_ns > 0) {
			r = recv(c->fd, buf, n, MSG_DONTWAIT);
			if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				return r;
			if (now_ns() - t0 >= c->poll_ns)
				break;
		}
	}
	r = recv(c->fd, buf, n, 0);
	if (cfg->poll_ns > 0)
		poll_adapt(c, now_ns() - t0);
	return r;
}

/* Read exactly n bytes through the connection's buffer.  0, or -1 on EOF
 * or error. */
static int
conn_read(struct conn *c, void *dst, size_t n)
{
	uint8_t *p = dst;

	while (n > 0) {
		if (c->rpos < c->rlen) {
			size_t k = c->rlen - c->rpos;
			if (k > n)
				k = n;
			memcpy(p, c->rbuf + c->rpos, k);
			c->rpos += k;
			p += k;
			n -= k;
			continue;
		}
		/* Large payloads go straight to their destination. */
		int direct = n >= sizeof c->rbuf;
		ssize_t r = conn_recv(c, direct ? (void *)p : (void *)c->rbuf,
				      direct ? n : sizeof c->rbuf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (direct) {
			p += r;
			n -= (size_t)r;
		} else {
			c->rpos = 0;
			c->rlen = (size_t)r;
		}
	}
	return 0;
}

static int
conn_skip(struct conn *c, uint64_t n)
{
	uint8_t tmp[4096];

	while (n > 0) {
		size_t k = n < sizeof tmp ? (size_t)n : sizeof tmp;
		if (conn_read(c, tmp, k) < 0)
			return -1;
		n -= k;
	}
	return 0;
}

/* Send every byte of iov, through TLS once it has started (MSG_NOSIGNAL:
 * a vanished client is an error, not a signal).  0, or -1 after marking
 * the connection dead. */
static int
conn_sendv(struct conn *c, struct iovec *iov, int iovcnt)
{
	if (c->tls) {
		if (!c->dead && cfg->tls->sendv(c->tls, iov, iovcnt) == 0)
			return 0;
		goto dead;
	}
	while (iovcnt > 0 && !c->dead) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		size_t done = (size_t)r;
		while (iovcnt > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	if (iovcnt == 0)
		return 0;
dead:
	/* Wake the reader so the connection ends. */
	c->dead = 1;
	shutdown(c->fd, SHUT_RDWR);
	return -1;
}

static int
conn_send(struct conn *c, const void *buf, size_t n)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	return conn_sendv(c, &iov, 1);
}

/* ---- negotiation ----------------------------------------------------------- */

static const struct export *
find_export(const uint8_t *name, size_t len)
{
	if (len == 0)
		return &cfg->exports[0];
	for (size_t i = 0; i < cfg->nexports; i++) {
		const struct export *e = &cfg->exports[i];
		if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
			return e;
	}
	return NULL;
}

static uint16_t
export_flags(const struct conn *c, const struct export *e)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
		     NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;

	if (e->readonly)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
		     NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
	/* proto.md: SEND_DF only once structured replies are negotiated. */
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

static int
send_rep(struct conn *c, uint32_t opt, uint32_t type, const void *data,
	 size_t len)
{
	uint8_t h[20];
	struct iovec iov[2] = {
		{ .iov_base = h, .iov_len = sizeof h },
		{ .iov_base = (void *)data, .iov_len = len },
	};

	nbd_put64(h, NBD_REP_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, type);
	nbd_put32(h + 16, (uint32_t)len);
	return conn_sendv(c, iov, len ? 2 : 1);
}

static int
send_rep_err(struct conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	return send_rep(c, opt, type, msg, strlen(msg));
}

static int
send_info_export(struct conn *c, uint32_t opt, const struct export *e)
{
	uint8_t b[12];

	nbd_put16(b, NBD_INFO_EXPORT);
	nbd_put64(b + 2, e->size);
	nbd_put16(b + 10, export_flags(c, e));
	return send_rep(c, opt, NBD_REP_INFO, b, sizeof b);
}

static int
send_info_string(struct conn *c, uint32_t opt, uint16_t type, const char *s)
{
	size_t n = strlen(s);
	uint8_t *b;
	int r;

	if (n > NBD_MAX_STRING)
		n = NBD_MAX_STRING;
	b = malloc(2 + n);
	if (!b)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "out of memory");
	nbd_put16(b, type);
	memcpy(b + 2, s, n);
	r = send_rep(c, opt, NBD_REP_INFO, b, 2 + n);
	free(b);
	return r;
}

static int
send_info_block_size(struct conn *c, uint32_t opt)
{
	uint8_t b[14];

	nbd_put16(b, NBD_INFO_BLOCK_SIZE);
	nbd_put32(b + 2, 1);            /* any byte offset and length */
	nbd_put32(b + 6, PREF_BLOCK);
	nbd_put32(b + 10, MAX_PAYLOAD);
	return send_rep(c, opt, NBD_REP_INFO, b, sizeof b);
}

/* A context selection only applies to the export it named (proto.md:
 * BLOCK_STATUS needs SET_META_CONTEXT for the export finally chosen). */
static void
select_export(struct conn *c, const struct export *e)
{
	c->exp = e;
	if (c->meta_exp != e)
		c->meta_alloc = 0;
	logv("vhdnbd: client chose export '%s'\n", e->name);
}

/* NBD_OPT_INFO and NBD_OPT_GO share this so that both give the same
 * answers.  Returns 1 when GO succeeded, 0 to keep negotiating, -1 to
 * drop the connection. */
static int
opt_info(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	uint32_t namelen;
	uint16_t nreq;
	const struct export *e;
	int want_name = 0, want_desc = 0;

	if (len < 6)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option too short");
	namelen = nbd_get32(d);
	if (namelen > len - 6 || namelen > NBD_MAX_STRING)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "bad name length");
	nreq = nbd_get16(d + 4 + namelen);
	if ((uint64_t)4 + namelen + 2 + 2 * (uint64_t)nreq != len)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
				    "bad information request count");
	e = find_export(d + 4, namelen);
	if (!e)
		return send_rep_err(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t = nbd_get16(d + 4 + namelen + 2 + 2 * i);
		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
	}
	/* BLOCK_SIZE is sent unasked: proto.md allows it, and with a
	 * minimum of 1 it constrains nothing a client would send. */
	if (send_info_export(c, opt, e) < 0 ||
	    (want_name && send_info_string(c, opt, NBD_INFO_NAME, e->name) < 0) ||
	    (want_desc && send_info_string(c, opt, NBD_INFO_DESCRIPTION,
					   e->description) < 0) ||
	    send_info_block_size(c, opt) < 0 ||
	    send_rep(c, opt, NBD_REP_ACK, NULL, 0) < 0)
		return -1;
	if (opt == NBD_OPT_GO) {
		select_export(c, e);
		return 1;
	}
	return 0;
}

static int
opt_list(struct conn *c, uint32_t opt, uint32_t len)
{
	if (len != 0)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "unexpected data");
	for (size_t i = 0; i < cfg->nexports; i++) {
		const struct export *e = &cfg->exports[i];
		size_t nl = strlen(e->name), dl = strlen(e->description);
		uint8_t *b = malloc(4 + nl + dl);
		int r;
		if (!b)
			return -1;
		nbd_put32(b, (uint32_t)nl);
		memcpy(b + 4, e->name, nl);
		memcpy(b + 4 + nl, e->description, dl);
		r = send_rep(c, opt, NBD_REP_SERVER, b, 4 + nl + dl);
		free(b);
		if (r < 0)
			return -1;
	}
	return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
}

static int
send_meta_context(struct conn *c, uint32_t opt, uint32_t id)
{
	uint8_t b[4 + sizeof META_ALLOCATION - 1];

	nbd_put32(b, id);
	memcpy(b + 4, META_ALLOCATION, sizeof META_ALLOCATION - 1);
	return send_rep(c, opt, NBD_REP_META_CONTEXT, b, sizeof b);
}

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT.  Data: export
 * name (32-bit length first), 32-bit query count, queries (each with a
 * 32-bit length).  We know one context, base:allocation. */
static int
opt_meta(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	int list = opt == NBD_OPT_LIST_META_CONTEXT;
	uint32_t namelen, nq, pos;
	const struct export *e;
	int match = 0;

	if (!c->structured)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
				    "structured replies not negotiated");
	if (len < 8)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option too short");
	namelen = nbd_get32(d);
	if (namelen > len - 8 || namelen > NBD_MAX_STRING)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "bad name length");
	nq = nbd_get32(d + 4 + namelen);
	pos = 8 + namelen;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t ql;
		if (len - pos < 4)
			return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
					    "truncated query");
		ql = nbd_get32(d + pos);
		pos += 4;
		if (ql > len - pos || ql > NBD_MAX_STRING)
			return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
					    "bad query length");
		const char *q = (const char *)d + pos;
		if (ql == sizeof META_ALLOCATION - 1 &&
		    memcmp(q, META_ALLOCATION, ql) == 0)
			match = 1;
		/* A bare namespace lists all its contexts (LIST only). */
		if (list && ql == 5 && memcmp(q, "base:", 5) == 0)
			match = 1;
		pos += ql;
	}
	if (pos != len)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "trailing data");
	e = find_export(d + 4, namelen);
	if (!e)
		return send_rep_err(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	if (list && nq == 0)
		match = 1;
	if (!list) {
		c->meta_exp = e;
		c->meta_alloc = match;
	}
	if (match && send_meta_context(c, opt, list ? 0 : META_ID_ALLOCATION) < 0)
		return -1;
	return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_STARTTLS (proto.md "TLS support"): ACK, the handshake, then
 * option haggling goes on inside TLS, with everything agreed in plaintext
 * forgotten (proto.md: the client MUST negotiate it again).  0 to go on,
 * -1 to close. */
static int
opt_starttls(struct conn *c, uint32_t opt, uint32_t len)
{
	if (!cfg->tls)
		return send_rep_err(c, opt, NBD_REP_ERR_POLICY,
				    "TLS is not enabled on this server");
	if (c->tls)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
				    "TLS has already been started");
	if (len != 0)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "unexpected data");
	/* Bytes sent after the option but before our ACK are plaintext
	 * that would be taken as input of the TLS session (the STARTTLS
	 * injection of CVE-2011-0411): a client must wait for the ACK. */
	if (c->rpos < c->rlen) {
		logv("vhdnbd: client sent data before the STARTTLS reply%s, "
		     "closing\n", "");
		return -1;
	}
	if (send_rep(c, opt, NBD_REP_ACK, NULL, 0) < 0)
		return -1;
	c->tls = cfg->tls->accept(c->fd);
	if (!c->tls)
		return -1;
	c->structured = 0;
	c->meta_exp = NULL;
	c->meta_alloc = 0;
	return 0;
}

/* FORCEDTLS (proto.md): before TLS, every option but STARTTLS and ABORT
 * gets ERR_TLS_REQD, its data skipped unread; EXPORT_NAME, which cannot be
 * refused, ends the connection.  0 to go on, -1 to close. */
static int
opt_tls_required(struct conn *c, uint32_t opt, uint32_t len)
{
	if (opt == NBD_OPT_EXPORT_NAME || len > MAX_OPTION_SKIP ||
	    conn_skip(c, len) < 0)
		return -1;
	return send_rep_err(c, opt, NBD_REP_ERR_TLS_REQD,
			    "TLS is required: send NBD_OPT_STARTTLS first");
}

/* Fixed newstyle negotiation.  0: transmission with c->exp chosen;
 * -1: close the connection. */
static int
negotiate(struct conn *c)
{
	uint8_t b[18];
	uint32_t cflags;

	nbd_put64(b, NBD_MAGIC);
	nbd_put64(b + 8, NBD_IHAVEOPT);
	nbd_put16(b + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (conn_send(c, b, sizeof b) < 0 || conn_read(c, b, 4) < 0)
		return -1;
	cflags = nbd_get32(b);
	/* proto.md: the server MUST drop the connection on unknown flags. */
	if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
		logv("vhdnbd: client sent unknown flags%s, closing\n", "");
		return -1;
	}
	c->no_zeroes = !!(cflags & NBD_FLAG_C_NO_ZEROES);

	for (;;) {
		uint8_t h[16];
		uint32_t opt, len;
		uint8_t *d;
		int r;

		if (conn_read(c, h, sizeof h) < 0)
			return -1;
		if (nbd_get64(h) != NBD_IHAVEOPT)
			return -1;
		opt = nbd_get32(h + 8);
		len = nbd_get32(h + 12);
		if (cfg->tls && cfg->tls->require && !c->tls &&
		    opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT) {
			if (opt_tls_required(c, opt, len) < 0)
				return -1;
			continue;
		}
		if (len > MAX_OPTION) {
			if (opt == NBD_OPT_EXPORT_NAME || len > MAX_OPTION_SKIP ||
			    conn_skip(c, len) < 0)
				return -1;
			if (send_rep_err(c, opt, NBD_REP_ERR_TOO_BIG,
					 "option too large") < 0)
				return -1;
			continue;
		}
		d = malloc(len + 1);
		if (!d)
			return -1;
		if (conn_read(c, d, len) < 0) {
			free(d);
			return -1;
		}
		switch (opt) {
		case NBD_OPT_EXPORT_NAME: {
			/* No way to refuse but to close (proto.md). */
			const struct export *e = len <= NBD_MAX_STRING ?
				find_export(d, len) : NULL;
			uint8_t x[8 + 2 + 124] = { 0 };
			r = -1;
			if (!e)
				break;
			select_export(c, e);
			nbd_put64(x, e->size);
			nbd_put16(x + 8, export_flags(c, e));
			r = conn_send(c, x, c->no_zeroes ? 10 : sizeof x) < 0 ? -1 : 1;
			break;
		}
		case NBD_OPT_ABORT:
			send_rep(c, opt, NBD_REP_ACK, NULL, 0);
			r = -1;
			break;
		case NBD_OPT_LIST:
			r = opt_list(c, opt, len);
			break;
		case NBD_OPT_STARTTLS:
			r = opt_starttls(c, opt, len);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			r = opt_info(c, opt, d, len);
			break;
		case NBD_OPT_STRUCTURED_REPLY:
			if (len != 0) {
				r = send_rep_err(c, opt, NBD_REP_ERR_INVALID,
						 "unexpected data");
				break;
			}
			c->structured = 1;
			r = send_rep(c, opt, NBD_REP_ACK, NULL, 0);
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			r = opt_meta(c, opt, d, len);
			break;
		default:
			r = send_rep_err(c, opt, NBD_REP_ERR_UNSUP,
					 "unknown option");
			break;
		}
		free(d);
		if (r < 0)
			return -1;
		if (r == 1)
			return 0;
	}
}

/* ---- transmission: replies --------------------------------------------------- */

static uint32_t
nbd_errno(int err)
{
	switch (err) {
	case EPERM: case EROFS: case EACCES:  return NBD_EPERM;
	case ENOMEM:                          return NBD_ENOMEM;
	case EINVAL:                          return NBD_EINVAL;
	case ENOSPC: case EDQUOT: case EFBIG: return NBD_ENOSPC;
	case EOVERFLOW:                       return NBD_EOVERFLOW;
	case ENOTSUP:                         return NBD_ENOTSUP;
	case ESHUTDOWN:                       return NBD_ESHUTDOWN;
	default:                              return NBD_EIO;
	}
}

/* Caller holds c->send_lock. */
static int
send_simple(struct conn *c, const struct request *r, uint32_t err,
	    const void *data, size_t n)
{
	uint8_t h[NBD_SIMPLE_REPLY_SIZE];
	struct iovec iov[2] = {
		{ .iov_base = h, .iov_len = sizeof h },
		{ .iov_base = (void *)data, .iov_len = n },
	};

	nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(h + 4, err);
	memcpy(h + 8, r->cookie, 8);
	return conn_sendv(c, iov, n ? 2 : 1);
}

static void
chunk_header(uint8_t *h, const struct request *r, uint16_t type, uint32_t len)
{
	nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put16(h + 4, NBD_REPLY_FLAG_DONE);
	nbd_put16(h + 6, type);
	memcpy(h + 8, r->cookie, 8);
	nbd_put32(h + 16, len);
}

static void
reply_error(struct conn *c, const struct request *r, int err, const char *msg)
{
	pthread_mutex_lock(&c->send_lock);
	if (c->structured) {
		/* proto.md: errors preferably as chunks, with a message; a
		 * READ must never get a simple reply. */
		uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 6];
		size_t ml = strlen(msg);
		if (ml > 1024)
			ml = 1024;
		chunk_header(h, r, NBD_REPLY_TYPE_ERROR, (uint32_t)(6 + ml));
		nbd_put32(h + 20, nbd_errno(err));
		nbd_put16(h + 24, (uint16_t)ml);
		struct iovec iov[2] = {
			{ .iov_base = h, .iov_len = sizeof h },
			{ .iov_base = (void *)msg, .iov_len = ml },
		};
		conn_sendv(c, iov, ml ? 2 : 1);
	} else {
		/* A failed READ gets no payload (proto.md). */
		send_simple(c, r, nbd_errno(err), NULL, 0);
	}
	pthread_mutex_unlock(&c->send_lock);
}

static void
reply_ok(struct conn *c, const struct request *r)
{
	pthread_mutex_lock(&c->send_lock);
	send_simple(c, r, 0, NULL, 0);
	pthread_mutex_unlock(&c->send_lock);
}

/* ---- transmission: commands ---------------------------------------------------- */

/* Send the replies collected in c->obuf.  Caller holds c->read_lock. */
static void
flush_quick(struct conn *c)
{
	if (c->olen == 0)
		return;
	pthread_mutex_lock(&c->send_lock);
	conn_send(c, c->obuf, c->olen);
	pthread_mutex_unlock(&c->send_lock);
	c->olen = 0;
}

/* A structured READ of a range that is stored nowhere in the chain is
 * answered with one hole chunk instead of len bytes of zeros (as qemu-nbd
 * does; not under DF, which asks for a single data chunk).  The chunk goes
 * to c->obuf, so caller holds c->read_lock.  1 if answered. */
static int
read_hole(struct conn *c, const struct request *r)
{
	uint64_t run;
	unsigned status;
	uint8_t *h;

	if (!c->structured || (r->flags & NBD_CMD_FLAG_DF) || r->len == 0 ||
	    vhd_map(c->exp->vhd, r->off, r->len, &run, &status, NULL) < 0 ||
	    !(status & VHD_MAP_ZERO) || run < r->len)
		return 0;
	if (c->olen + HOLE_REPLY_SIZE > sizeof c->obuf)
		flush_quick(c);
	h = c->obuf + c->olen;
	chunk_header(h, r, NBD_REPLY_TYPE_OFFSET_HOLE, 12);
	nbd_put64(h + 20, r->off);
	nbd_put32(h + 28, r->len);
	c->olen += HOLE_REPLY_SIZE;
	return 1;
}

static void
do_read(struct conn *c, const struct request *r)
{
	uint8_t *buf;
	int e;

	/* Hole reads were answered by serve_quick() already. */
	if (!(buf = malloc(r->len))) {
		reply_error(c, r, ENOMEM, "out of memory");
		return;
	}
	e = vhd_pread(c->exp->vhd, buf, r->len, r->off);
	if (e < 0) {
		reply_error(c, r, -e, vhd_errmsg());
		free(buf);
		return;
	}
	pthread_mutex_lock(&c->send_lock);
	if (c->structured) {
		/* One data chunk, so NBD_CMD_FLAG_DF is always honoured. */
		uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 8];
		struct iovec iov[2] = {
			{ .iov_base = h, .iov_len = sizeof h },
			{ .iov_base = buf, .iov_len = r->len },
		};
		chunk_header(h, r, NBD_REPLY_TYPE_OFFSET_DATA, 8 + r->len);
		nbd_put64(h + 20, r->off);
		conn_sendv(c, iov, 2);
	} else {
		send_simple(c, r, 0, buf, r->len);
	}
	pthread_mutex_unlock(&c->send_lock);
	free(buf);
}

static unsigned
alloc_flags(unsigned status)
{
	if (status & VHD_MAP_DATA)
		return 0;
	if (status & VHD_MAP_ZERO)
		return NBD_STATE_HOLE | NBD_STATE_ZERO;
	return 0;       /* unknown: 0 is always a safe answer */
}

static void
do_block_status(struct conn *c, const struct request *r)
{
	unsigned max = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : MAX_EXTENTS;
	uint8_t *b = malloc(NBD_STRUCTURED_REPLY_SIZE + 4 + 8 * (size_t)max);
	uint64_t pos = r->off, end = r->off + r->len;
	unsigned n = 0, last = 0, calls = 0;
	uint32_t lastlen = 0;
	uint8_t *d;

	if (!b) {
		reply_error(c, r, ENOMEM, "out of memory");
		return;
	}
	d = b + NBD_STRUCTURED_REPLY_SIZE + 4;
	while (pos < end && calls++ < 65536) {
		uint64_t run = 0;
		unsigned st = 0, f;
		int e = vhd_map(c->exp->vhd, pos, end - pos, &run, &st, NULL);
		if (e < 0) {
			if (n == 0) {
				reply_error(c, r, -e, vhd_errmsg());
				free(b);
				return;
			}
			break;
		}
		if (run == 0)
			break;
		if (run > end - pos)
			run = end - pos;
		f = alloc_flags(st);
		if (n > 0 && f == last) {
			lastlen += (uint32_t)run;      /* sum <= r->len < 2^32 */
			nbd_put32(d + 8 * (n - 1), lastlen);
		} else {
			if (n == max)
				break;
			nbd_put32(d + 8 * n, (uint32_t)run);
			nbd_put32(d + 8 * n + 4, f);
			lastlen = (uint32_t)run;
			last = f;
			n++;
		}
		pos += run;
	}
	if (n == 0) {
		reply_error(c, r, EIO, "block status: no extent");
		free(b);
		return;
	}
	chunk_header(b, r, NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * n);
	nbd_put32(b + NBD_STRUCTURED_REPLY_SIZE, META_ID_ALLOCATION);
	pthread_mutex_lock(&c->send_lock);
	conn_send(c, b, NBD_STRUCTURED_REPLY_SIZE + 4 + 8 * (size_t)n);
	pthread_mutex_unlock(&c->send_lock);
	free(b);
}

/* Checks common to every command; 0 or an errno with *msg set. */
static int
validate(const struct conn *c, const struct request *r, const char **msg)
{
	const struct export *e = c->exp;
	unsigned allowed = NBD_CMD_FLAG_FUA;    /* valid on every command */
	int writes = 0;

	switch (r->type) {
	case NBD_CMD_READ:
		if (c->structured)
			allowed |= NBD_CMD_FLAG_DF;
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
		writes = 1;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
		writes = 1;
		break;
	case NBD_CMD_BLOCK_STATUS:
		allowed |= NBD_CMD_FLAG_REQ_ONE;
		break;
	case NBD_CMD_FLUSH:
		return (r->flags & ~allowed) ? (*msg = "invalid flags", EINVAL) : 0;
	case NBD_CMD_CACHE:
		break;
	default:
		*msg = "unknown command";
		return EINVAL;
	}
	if (r->flags & ~allowed) {
		*msg = "invalid flags for this command";
		return EINVAL;
	}
	if (writes && e->readonly) {
		*msg = "export is read-only";
		return EPERM;
	}
	if (r->len == 0 && r->type != NBD_CMD_CACHE) {
		*msg = "zero length";
		return EINVAL;
	}
	/* Overflow-safe: off + len may not wrap. */
	if (r->off > e->size || r->len > e->size - r->off) {
		*msg = "request beyond the end of the export";
		return (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES) ?
			ENOSPC : EINVAL;
	}
	if (r->type == NBD_CMD_READ && r->len > MAX_PAYLOAD) {
		*msg = "read larger than the maximum block size";
		return EOVERFLOW;
	}
	if (r->type == NBD_CMD_BLOCK_STATUS && !c->meta_alloc) {
		*msg = "no metadata context selected";
		return EINVAL;
	}
	return 0;
}

static void
handle(struct request *r)
{
	struct conn *c = r->c;
	struct vhd *v = c->exp->vhd;
	const char *msg = NULL;
	int e = validate(c, r, &msg);

	if (e) {
		reply_error(c, r, e, msg);
		return;
	}
	switch (r->type) {
	case NBD_CMD_READ:
		do_read(c, r);
		return;
	case NBD_CMD_BLOCK_STATUS:
		do_block_status(c, r);
		return;
	case NBD_CMD_WRITE:
		e = vhd_pwrite(v, r->data, r->len, r->off);
		break;
	case NBD_CMD_FLUSH:
		/* Nothing can be dirty on a read-only export. */
		e = c->exp->readonly ? 0 : vhd_flush(v);
		break;
	case NBD_CMD_TRIM:
		e = vhd_discard(v, r->off, r->len);
		break;
	case NBD_CMD_WRITE_ZEROES: {
		unsigned zf = 0;
		if (r->flags & NBD_CMD_FLAG_NO_HOLE)
			zf |= VHD_ZERO_NO_HOLE;
		if (r->flags & NBD_CMD_FLAG_FAST_ZERO)
			zf |= VHD_ZERO_FAST_ONLY;
		e = vhd_write_zeroes(v, r->off, r->len, zf);
		break;
	}
	case NBD_CMD_CACHE:
		/* A hint; the page cache does the caching. */
		e = 0;
		break;
	}
	/* FUA: durable before the reply (proto.md).  A flush of the whole
	 * image is more than needed but always correct. */
	if (e >= 0 && (r->flags & NBD_CMD_FLAG_FUA) && r->type != NBD_CMD_FLUSH &&
	    !c->exp->readonly)
		e = vhd_flush(v);
	if (e < 0)
		reply_error(c, r, -e, vhd_errmsg());
	else
		reply_ok(c, r);
}

/* ---- connections ----------------------------------------------------------------- */

/* Read the next request (and a WRITE's payload) into *r.  Caller holds
 * c->read_lock.  -1 ends the connection: DISC, EOF or a violation. */
static int
read_request(struct conn *c, struct request *r)
{
	uint8_t h[NBD_REQUEST_SIZE];

	if (conn_read(c, h, sizeof h) < 0)
		return -1;
	if (nbd_get32(h) != NBD_REQUEST_MAGIC) {
		logv("vhdnbd: bad request magic%s, closing\n", "");
		return -1;
	}
	memset(r, 0, sizeof *r);
	r->c = c;
	r->flags = nbd_get16(h + 4);
	r->type = nbd_get16(h + 6);
	memcpy(r->cookie, h + 8, 8);
	r->off = nbd_get64(h + 16);
	r->len = nbd_get32(h + 24);
	if (r->type == NBD_CMD_DISC)
		return -1;
	if (r->type == NBD_CMD_WRITE) {
		/* Too large to accept: proto.md lets the server disconnect
		 * rather than consume the payload. */
		if (r->len > MAX_PAYLOAD) {
			logv("vhdnbd: write too large%s, closing\n", "");
			return -1;
		}
		/* Replies collected so far should not wait for a payload
		 * still on its way. */
		if (c->rlen - c->rpos < r->len)
			flush_quick(c);
		r->data = malloc(r->len ? r->len : 1);
		if (!r->data || conn_read(c, r->data, r->len) < 0) {
			free(r->data);
			r->data = NULL;
			return -1;
		}
	}
	return 0;
}

/* Answer r at once if that needs no I/O: a READ of a range stored
 * nowhere.  1 if answered. */
static int
serve_quick(struct request *r)
{
	const char *msg = NULL;

	return r->type == NBD_CMD_READ && validate(r->c, r, &msg) == 0 &&
	       read_hole(r->c, r);
}

/* The threads of a connection take turns reading requests under the read
 * lock.  The reader answers requests that need no I/O itself and goes on
 * reading; it gives the lock up to serve any other request, so a slow one
 * never holds up the rest and up to cfg->threads are served at once,
 * without handing requests from thread to thread (the design of nbdkit's
 * server/connections.c).  Hole reads thus cost no thread switch at all. */
static void *
conn_worker(void *arg)
{
	struct conn *c = arg;
	struct request r;

	for (;;) {
		int got = 0;

		pthread_mutex_lock(&c->read_lock);
		while (!got && !c->quit && !c->dead) {
			if (c->rlen - c->rpos < NBD_REQUEST_SIZE)
				flush_quick(c);
			if (read_request(c, &r) < 0)
				c->quit = 1;
			else if (!serve_quick(&r))
				got = 1;
		}
		flush_quick(c);
		pthread_mutex_unlock(&c->read_lock);
		if (!got)
			return NULL;
		if (!c->dead)
			handle(&r);
		free(r.data);
	}
}

static void *
conn_thread(void *arg)
{
	struct conn *c = arg;
	pthread_t *t = NULL;
	unsigned n = 0;

	if (negotiate(c) == 0) {
		pthread_attr_t a;

		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, THREAD_STACK);
		t = calloc(cfg->threads, sizeof *t);
		for (unsigned i = 1; t && i < cfg->threads; i++)
			if (pthread_create(&t[n], &a, conn_worker, c) == 0)
				n++;
		pthread_attr_destroy(&a);
		conn_worker(c);
		/* Every request read before DISC (or EOF) is answered
		 * before the socket closes. */
		for (unsigned i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		free(t);
	}
	if (c->tls)
		cfg->tls->close(c->tls);

	pthread_mutex_lock(&c_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		c_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c_count--;
	/* Closed under c_lock so server_shutdown never sees a stale fd. */
	close(c->fd);
	pthread_cond_broadcast(&c_cond);
	pthread_mutex_unlock(&c_lock);

	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->read_lock);
	free(c);
	logv("vhdnbd: connection closed%s\n", "");
	return NULL;
}

void
server_connection(int fd, int is_tcp)
{
	struct conn *c;
	pthread_t t;
	pthread_attr_t a;

	(void)is_tcp;
	c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->read_lock, NULL);

	pthread_mutex_lock(&c_lock);
	if (c_stopping || c_count >= MAX_CONNECTIONS) {
		pthread_mutex_unlock(&c_lock);
		if (!c_stopping)
			fprintf(stderr, "vhdnbd: too many connections\n");
		goto fail;
	}
	c->next = c_list;
	if (c_list)
		c_list->prev = c;
	c_list = c;
	c_count++;
	pthread_mutex_unlock(&c_lock);

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, THREAD_STACK);
	if (pthread_create(&t, &a, conn_thread, c) != 0) {
		fprintf(stderr, "vhdnbd: cannot start a thread for a client\n");
		/* Nothing else touched c: unlink it (still the list head,
		 * only this thread inserts). */
		pthread_mutex_lock(&c_lock);
		c_list = c->next;
		if (c_list)
			c_list->prev = NULL;
		c_count--;
		pthread_mutex_unlock(&c_lock);
		pthread_attr_destroy(&a);
		goto fail;
	}
	pthread_attr_destroy(&a);
	logv("vhdnbd: new connection%s\n", "");
	return;
fail:
	close(fd);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->read_lock);
	free(c);
}

int
server_init(const struct server_config *config)
{
	cfg = config;
	return 0;
}

void
server_shutdown(void)
{
	pthread_mutex_lock(&c_lock);
	c_stopping = 1;
	/* EOF for each connection: it stops reading, answers the requests
	 * it already read, then closes. */
	for (struct conn *c = c_list; c; c = c->next)
		shutdown(c->fd, SHUT_RD);
	while (c_count > 0)
		pthread_cond_wait(&c_cond, &c_lock);
	pthread_mutex_unlock(&c_lock);
}
