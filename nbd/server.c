/*
 * server.c - the NBD protocol for vhdnbd: fixed newstyle negotiation and
 * the transmission phase (NetworkBlockDevice/nbd doc/proto.md).
 *
 * Threads.  A new connection gets a short-lived thread that negotiates,
 * with a deadline (--handshake-timeout); connections still negotiating
 * are capped, and when the cap is reached the oldest of them is dropped,
 * so a flood of silent connections cannot lock clients out.  Once
 * negotiated, a connection costs no thread: a fixed pool of workers
 * (--threads) takes connections from a ready queue, and one poller thread
 * watches the sockets of idle connections (one epoll set, EPOLLONESHOT)
 * and puts them on that queue when bytes arrive.  A worker that takes a
 * connection reads requests (the "read role": one holder at a time),
 * answers those that need no I/O (a read of a hole) at once, and serves
 * any other itself: keeping the read role when no other request waits,
 * else handing it on first, so requests of one connection are served in
 * parallel and replies may go out of order (proto.md allows it).  No
 * request is handed from thread to thread.
 * While workers are idle the role goes straight to one of them through
 * the queue (a mutex and a condition variable, as nbdkit's threads pass
 * their read lock), and that worker waits up to LINGER_US in recv() for
 * the client's next request: a busy connection never goes through epoll.
 *
 * One worker at a time sends a connection's replies (its own and those
 * queued meanwhile), waiting while the client takes them; what a client
 * that stops reading does not take is left on the connection's queue and
 * sent by the poller when the socket becomes writable again (a dup of the
 * socket, watched for EPOLLOUT).  Queued reply data and the
 * buffers of requests in progress count against one budget for the whole
 * server (--max-queued): past it, a connection that still has data of
 * its own counted is no longer read from (it is "parked") until its
 * client drains its replies.  A client that never reads thus holds at
 * most its share, never a worker.
 *
 * All connections to an export share one struct vhd, which is
 * thread-safe: a FLUSH on one connection covers writes made on any, which
 * is what NBD_FLAG_CAN_MULTI_CONN promises.
 *
 * Nothing the client sends is trusted: lengths are bounded before any
 * allocation, offset+length is checked without overflow before any call
 * into the library, and protocol violations end only that connection.
 * Messages sent to clients never carry a server path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
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
/* Connections negotiating at once; a new one past this drops the oldest. */
#define MAX_HANDSHAKES    256u
#define HANDSHAKE_STACK   (256u * 1024)
#define WORKER_STACK      (1024u * 1024)
/* SIGTERM: how long replies may take to drain before clients are dropped. */
#define SHUTDOWN_GRACE_S  4
/* Extents per NBD_CMD_BLOCK_STATUS reply (proto.md lets a server return
 * less than the whole range). */
#define MAX_EXTENTS       1024u
#define HOLE_REPLY_SIZE   (NBD_STRUCTURED_REPLY_SIZE + 12)
#define META_ID_ALLOCATION 1u
#define META_ID_DEPTH      2u
#define META_ALLOCATION   "base:allocation"
#define META_DEPTH        "qemu:allocation-depth"

/* What an epoll event is about: the read or the write side of a
 * connection (two registrations: the socket and a dup of it). */
enum { EV_READ, EV_WRITE, EV_QUIT };
struct evtag {
	int kind;
	struct conn *c;
};

/* Reply bytes the socket did not take yet. */
struct outbuf {
	struct outbuf *next;
	const uint8_t *p;
	size_t len;             /* bytes left to send from p */
	void *own;              /* freed once sent (may be NULL) */
	size_t charge;          /* bytes counted against the budget */
};

struct request {
	struct conn *c;
	uint16_t flags, type;
	uint8_t cookie[8];      /* echoed back as sent */
	uint64_t off;
	uint32_t len;
	uint8_t *data;          /* WRITE payload */
	size_t charge;          /* reserved against the budget */
};

struct conn {
	int fd;
	struct tls_session *tls;        /* after STARTTLS: all I/O through it */
	int wfd;                /* dup of fd, watched for EPOLLOUT (or -1) */
	int is_tcp;
	_Atomic int dead;       /* a send failed or the client was dropped */
	int no_zeroes, structured;
	int negotiating;        /* in the handshake (under c_lock) */
	uint64_t accepted_ns;   /* when accepted */
	uint64_t deadline_ns;   /* end of the handshake */
	const struct export *exp;
	const struct export *meta_exp;  /* export named in SET_META_CONTEXT */
	int meta_alloc;         /* base:allocation selected */
	int meta_depth;         /* qemu:allocation-depth selected */
	struct evtag rtag, wtag;
	int in_epoll;           /* fd registered */

	/* Read role state: only the holder of the read role touches these. */
	uint8_t rbuf[16384];
	size_t rpos, rlen;
	uint64_t poll_ns;       /* busy-poll window */
	uint64_t wait_t0;       /* start of the last wait for a request */
	uint8_t obuf[2048];     /* replies of hole reads, sent together */
	size_t olen;
	int quit;               /* DISC, EOF or a violation seen */
	int in_payload;         /* reading the payload of cur */
	size_t have;            /* payload bytes of cur read so far */
	struct request cur;     /* a WRITE whose payload is on its way */

	/* Under lock. */
	pthread_mutex_t lock;
	unsigned refs;          /* read role + requests in progress + armed write side */
	int parked;             /* read role held back by the budget */
	int sending;            /* a worker is sending (conn_reply()) */
	int warmed;             /* wfd armed for EPOLLOUT */
	struct outbuf *oq, **oq_tail;
	size_t charged;         /* bytes of this connection in the budget */

	struct conn *prev, *next;       /* all connections (under c_lock) */
	struct conn *qnext;             /* ready queue (under q_lock) */
};

static const struct server_config *cfg;

/* Live connections, so shutdown can end them and the cap can be kept. */
static pthread_mutex_t c_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c_cond = PTHREAD_COND_INITIALIZER;
static struct conn *c_list;
static unsigned c_count, c_handshakes;
static int c_stopping;
static _Atomic int g_stopping;

/* The worker pool. */
static int epfd = -1, quitfd = -1;
static struct evtag quittag = { EV_QUIT, NULL };
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct conn *q_head, *q_tail;
static int q_quit;                              /* under q_lock */
static unsigned q_waiting, q_woken;             /* under q_lock */
static pthread_t *workers, poller;
static unsigned nworkers;
static int have_poller;
static _Atomic unsigned g_idle_workers;        /* waiting on q_cond */

/* The budget of queued reply data and request buffers. */
static _Atomic uint64_t g_charged;

static struct ratelimit rl_conns = RATELIMIT_INIT, rl_timeout = RATELIMIT_INIT,
	rl_errors = RATELIMIT_INIT;

static void
logv(const char *fmt, const char *arg)
{
	if (cfg->verbose)
		fprintf(stderr, fmt, arg);
}

static uint64_t
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* At most one line per second of each kind; the lines held back are
 * counted in the next one. */
void
log_limited(struct ratelimit *rl, const char *fmt, ...)
{
	char line[512];
	time_t now = time(NULL);
	va_list ap;
	unsigned held;

	pthread_mutex_lock(&rl->lock);
	if (rl->last == now) {
		rl->held++;
		pthread_mutex_unlock(&rl->lock);
		return;
	}
	rl->last = now;
	held = rl->held;
	rl->held = 0;
	pthread_mutex_unlock(&rl->lock);
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (held)
		fprintf(stderr, "vhdnbd: %s (and %u more like it)\n", line, held);
	else
		fprintf(stderr, "vhdnbd: %s\n", line);
}

/* Report the lines held back since the last one (at exit). */
void
log_limited_flush(struct ratelimit *rl, const char *what)
{
	pthread_mutex_lock(&rl->lock);
	if (rl->held)
		fprintf(stderr, "vhdnbd: %u more line%s about %s held back\n",
			rl->held, rl->held == 1 ? "" : "s", what);
	rl->held = 0;
	pthread_mutex_unlock(&rl->lock);
}

/* ---- socket I/O -------------------------------------------------------------
 * Every byte of a connection goes through io_recv() and io_send(), which
 * return what recv()/sendmsg() would, with errno EAGAIN when nothing can
 * move now.  io_send() never blocks; io_recv() blocks only when asked to
 * linger, and then for at most LINGER_US (SO_RCVTIMEO of the socket).
 * conn_buffered() says whether bytes are held in user space, out of
 * epoll's sight. */

/* How long the reader of a busy connection waits for its next request
 * before leaving it to epoll (only while other workers are idle). */
#define LINGER_US 1000

static ssize_t
io_recv(struct conn *c, void *buf, size_t n, int linger)
{
	if (c->tls)
		return cfg->tls->recv(c->tls, buf, n, linger);
	return recv(c->fd, buf, n, linger ? 0 : MSG_DONTWAIT);
}

/* With TLS, an EAGAIN may leave a record encrypted inside the session:
 * the caller offers the same bytes again (its queue keeps them in order)
 * and the hook flushes that record first, as GnuTLS requires. */
static ssize_t
io_send(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };

	if (c->tls)
		return cfg->tls->send(c->tls, iov, iovcnt);
	return sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Bytes in rbuf, or decrypted by TLS and not read yet. */
static int
conn_buffered(const struct conn *c)
{
	return c->rpos < c->rlen || (c->tls && cfg->tls->pending(c->tls) > 0);
}

/* Wait until fd is ready for ev or the handshake deadline passes.
 * 0, or -1 on timeout. */
static int
wait_deadline(struct conn *c, short ev)
{
	for (;;) {
		uint64_t now = now_ns();
		struct pollfd p = { .fd = c->fd, .events = ev };
		int r;

		if (now >= c->deadline_ns || c->dead) {
			if (!c->dead)
				log_limited(&rl_timeout, "a client did not negotiate "
					    "within %u s: dropped", cfg->handshake_s);
			return -1;
		}
		r = poll(&p, 1, (int)((c->deadline_ns - now) / 1000000u) + 1);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Handshake reads: exactly n bytes through the connection's buffer, by
 * the deadline.  0, or -1 on EOF, error or timeout. */
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
		ssize_t r = io_recv(c, c->rbuf, sizeof c->rbuf, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_deadline(c, POLLIN) < 0)
				return -1;
			continue;
		}
		if (r <= 0)
			return -1;
		c->rpos = 0;
		c->rlen = (size_t)r;
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

/* Skip the first done bytes of iov[0..*iovcnt). */
static struct iovec *
iov_advance(struct iovec *iov, int *iovcnt, size_t done)
{
	while (*iovcnt > 0 && done >= iov->iov_len) {
		done -= iov->iov_len;
		iov++;
		(*iovcnt)--;
	}
	if (*iovcnt > 0) {
		iov->iov_base = (uint8_t *)iov->iov_base + done;
		iov->iov_len -= done;
	}
	return iov;
}

/* Handshake sends: every byte of iov by the deadline.  0, or -1. */
static int
conn_sendv(struct conn *c, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t r = io_send(c, iov, iovcnt);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_deadline(c, POLLOUT) < 0)
				return -1;
			continue;
		}
		if (r < 0)
			return -1;
		iov = iov_advance(iov, &iovcnt, (size_t)r);
	}
	return 0;
}

static int
conn_send(struct conn *c, const void *buf, size_t n)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	return conn_sendv(c, &iov, 1);
}

/* ---- payload buffers ---------------------------------------------------------- */

/* READ replies and WRITE payloads of BUF_MIN bytes and more come from a
 * cache of freed buffers.  A fresh malloc() of that size is fresh pages
 * (glibc maps them, or trims its arena when they are freed), and
 * faulting them in again on every request cost sequential reads about a
 * sixth of the server's CPU.  Sizes are rounded up to a power of two
 * (one free list each); the cache holds BUF_CACHE_BYTES at most, so it
 * adds at most that to what the reply budget bounds. */
#define BUF_MIN           (64u * 1024)
#define BUF_CLASSES       10u   /* 64 KiB .. 32 MiB (MAX_PAYLOAD) */
#define BUF_CACHE_BYTES   (64u * 1024 * 1024)
#define BUF_HDR           64u   /* struct bufhdr, keeping the data aligned */

struct bufhdr {
	size_t cap;             /* 0: not cached */
	struct bufhdr *next;    /* in its free list */
};

static pthread_mutex_t b_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bufhdr *b_free[BUF_CLASSES];
static size_t b_bytes;

static unsigned
buf_class(size_t cap)
{
	unsigned k = 0;

	while ((BUF_MIN << k) < cap)
		k++;
	return k;
}

/* A buffer of at least len bytes (len <= MAX_PAYLOAD), for buf_free(). */
static void *
buf_alloc(size_t len)
{
	struct bufhdr *h = NULL;
	size_t cap = 0;

	if (len >= BUF_MIN) {
		unsigned k = buf_class(len);

		cap = (size_t)BUF_MIN << k;
		pthread_mutex_lock(&b_lock);
		if ((h = b_free[k]) != NULL) {
			b_free[k] = h->next;
			b_bytes -= cap;
		}
		pthread_mutex_unlock(&b_lock);
		if (h)
			return (uint8_t *)h + BUF_HDR;
	}
	h = malloc(BUF_HDR + (cap ? cap : len ? len : 1));
	if (!h)
		return NULL;
	h->cap = cap;
	return (uint8_t *)h + BUF_HDR;
}

static void
buf_free(void *q)
{
	struct bufhdr *h;

	if (!q)
		return;
	h = (struct bufhdr *)((uint8_t *)q - BUF_HDR);
	if (h->cap) {
		pthread_mutex_lock(&b_lock);
		if (b_bytes + h->cap <= BUF_CACHE_BYTES) {
			unsigned k = buf_class(h->cap);

			h->next = b_free[k];
			b_free[k] = h;
			b_bytes += h->cap;
			h = NULL;
		}
		pthread_mutex_unlock(&b_lock);
	}
	free(h);
}

/* Give the cached buffers back (no request is in progress). */
static void
buf_drain(void)
{
	pthread_mutex_lock(&b_lock);
	for (unsigned k = 0; k < BUF_CLASSES; k++) {
		while (b_free[k]) {
			struct bufhdr *h = b_free[k];
			b_free[k] = h->next;
			free(h);
		}
	}
	b_bytes = 0;
	pthread_mutex_unlock(&b_lock);
}

/* ---- replies without blocking, the budget, the ready queue ------------------- */

/* Wake an idle worker for the queue, unless one woken already has not
 * run yet: the worker that queued a connection often takes it back
 * itself once its request is served (as a thread that unlocks a mutex
 * often takes it again before the waiter it woke runs), and a wake per
 * request would set every idle worker running for nothing.  The worker
 * that takes a connection wakes the next while more wait.  Under q_lock. */
static void
wake_locked(void)
{
	if (q_head && q_woken == 0 && q_waiting > 0) {
		q_woken++;
		pthread_cond_signal(&q_cond);
	}
}

/* Hand a connection's read role to the pool: an idle worker takes it at
 * once (its bytes are in user space already, it was parked, the poller
 * saw it readable, or a request is likely on its way). */
static void
enqueue(struct conn *c)
{
	pthread_mutex_lock(&q_lock);
	c->qnext = NULL;
	if (q_tail)
		q_tail->qnext = c;
	else
		q_head = c;
	q_tail = c;
	wake_locked();
	pthread_mutex_unlock(&q_lock);
}

/* Budget accounting; under c->lock. */
static void
charge_locked(struct conn *c, size_t n)
{
	c->charged += n;
	atomic_fetch_add(&g_charged, (uint64_t)n);
}

static void
uncharge_locked(struct conn *c, size_t n)
{
	c->charged -= n;
	atomic_fetch_sub(&g_charged, (uint64_t)n);
}

static int
over_budget_locked(const struct conn *c)
{
	return c->charged > 0 && atomic_load(&g_charged) > cfg->max_queued;
}

/* A parked read role goes back to the pool once its connection has
 * nothing counted, the budget has room again, or the connection died. */
static void
maybe_unpark_locked(struct conn *c)
{
	if (c->parked && (c->dead || !over_budget_locked(c))) {
		c->parked = 0;
		enqueue(c);
	}
}

static void
drop_queue_locked(struct conn *c)
{
	while (c->oq) {
		struct outbuf *b = c->oq;
		c->oq = b->next;
		uncharge_locked(c, b->len);
		buf_free(b->own);
		free(b);
	}
	c->oq_tail = &c->oq;
}

/* The client is gone, or is being dropped: wake both sides so they end. */
static void
mark_dead_locked(struct conn *c)
{
	if (!c->dead) {
		c->dead = 1;
		shutdown(c->fd, SHUT_RDWR);
	}
	drop_queue_locked(c);
	maybe_unpark_locked(c);
}

static void
arm_write_locked(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.ptr = &c->wtag };
	int op = EPOLL_CTL_MOD;

	if (c->warmed || c->dead)
		return;
	if (c->wfd < 0) {
		c->wfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		op = EPOLL_CTL_ADD;
	}
	if (c->wfd < 0 || epoll_ctl(epfd, op, c->wfd, &ev) < 0) {
		log_limited(&rl_errors, "cannot watch a client socket: %s",
			    strerror(errno));
		mark_dead_locked(c);
		return;
	}
	c->warmed = 1;
	c->refs++;
}

/* Queue what is left of iov, behind the queue or (front) before it; the
 * last element points into give (if not NULL), which the queue then owns.
 * The poller sends it, unless a worker is sending (it then does). */
static void
queue_locked(struct conn *c, struct iovec *iov, int iovcnt, void *give, int front)
{
	struct outbuf *head = NULL, **tail = &head;

	for (int i = 0; i < iovcnt; i++) {
		struct outbuf *b;
		int owned = give && i == iovcnt - 1;

		if (iov[i].iov_len == 0) {
			if (owned)
				buf_free(give);
			continue;
		}
		b = malloc(sizeof *b + (owned ? 0 : iov[i].iov_len));
		if (!b) {
			mark_dead_locked(c);
			if (owned)
				buf_free(give);
			return;
		}
		b->next = NULL;
		b->len = iov[i].iov_len;
		b->charge = 0;
		if (owned) {
			b->p = iov[i].iov_base;
			b->own = give;
		} else {
			memcpy(b + 1, iov[i].iov_base, b->len);
			b->p = (const uint8_t *)(b + 1);
			b->own = NULL;
		}
		*tail = b;
		tail = &b->next;
		charge_locked(c, b->len);
	}
	if (head && front && c->oq) {
		*tail = c->oq;
		c->oq = head;
	} else if (head) {
		*c->oq_tail = head;
		c->oq_tail = tail;
	}
	if (!c->sending)
		arm_write_locked(c);
}

/* Send what the queue holds until the socket is full. */
static void
drain_locked(struct conn *c)
{
	while (c->oq && !c->dead) {
		struct outbuf *b = c->oq;
		struct iovec iov = { .iov_base = (void *)b->p, .iov_len = b->len };
		ssize_t r = io_send(c, &iov, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0) {
			mark_dead_locked(c);
			return;
		}
		b->p += r;
		b->len -= (size_t)r;
		uncharge_locked(c, (size_t)r);
		if (b->len == 0) {
			c->oq = b->next;
			if (!c->oq)
				c->oq_tail = &c->oq;
			buf_free(b->own);
			free(b);
		}
	}
}

/* How long a worker sending replies waits for a client that reads them:
 * SEND_STALL_MS without progress, SEND_HOLD_MS for one reply (32 MiB at
 * 160 MB/s); then what is left goes to the queue and the poller sends it
 * when the socket takes it. */
#define SEND_STALL_MS 10
#define SEND_HOLD_MS  200

/* Send iov, waiting for room in the socket while the client takes data,
 * until end_ns.  0: all sent; 1: gave up, *iovp / *iovcnt the rest; -1:
 * the client is gone.  Caller has the send role (c->sending), not c->lock. */
static int
send_wait(struct conn *c, struct iovec **iovp, int *iovcnt, uint64_t end_ns)
{
	struct iovec *iov = *iovp;
	int n = *iovcnt, r = 0;

	while (n > 0) {
		ssize_t k;

		if (c->dead)
			return -1;
		k = io_send(c, iov, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			int e;

			if (now_ns() >= end_ns) {
				r = 1;
				break;
			}
			e = poll(&p, 1, SEND_STALL_MS);
			if (e == 0) {
				r = 1;
				break;
			}
			if (e < 0 && errno != EINTR)
				return -1;
			continue;
		}
		if (k < 0)
			return -1;
		iov = iov_advance(iov, &n, (size_t)k);
	}
	*iovp = iov;
	*iovcnt = n;
	return r;
}

/* Send a reply in the transmission phase.  One worker at a time sends
 * (c->sending): it sends its reply, then whatever other workers queued
 * meanwhile, waiting for the socket while the client reads (send_wait()),
 * as a blocking send would but bounded, so a client that stops reading
 * never holds a worker; the rest is queued for the poller, until a
 * worker with a reply finds the socket writable again.  (The poller
 * sending everything of a busy connection cost a third of sequential
 * read speed: one thread for all the data, and an epoll_ctl() per
 * socket buffer.)  A reply made
 * while another is being sent or queued is queued behind it, in order.
 * give (may be NULL) is a buf_alloc()'d buffer that the last element of
 * iov points into; it is freed once sent.  0, or -1 if the client is
 * gone. */
static int
conn_reply(struct conn *c, struct iovec *iov, int iovcnt, void *give)
{
	struct outbuf *b = NULL;        /* the queued reply being sent */
	int r = 0, k;

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		r = -1;
		goto out;
	}
	if (c->sending || c->oq) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		int take = 0;

		/* Replies left to the poller go back to a worker once the
		 * client reads again. */
		if (!c->sending && poll(&p, 1, 0) == 1)
			take = c->sending = 1;
		queue_locked(c, iov, iovcnt, give, 0);
		give = NULL;
		if (!take)
			goto out;
		k = 0;
	} else {
		c->sending = 1;
		pthread_mutex_unlock(&c->lock);
		k = send_wait(c, &iov, &iovcnt, now_ns() + SEND_HOLD_MS * 1000000ull);
		pthread_mutex_lock(&c->lock);
	}
	for (;;) {
		if (k < 0) {
			if (!b)
				r = -1;
			mark_dead_locked(c);
			break;
		}
		if (k > 0) {
			/* The client stopped reading: the rest goes first. */
			c->sending = 0;
			if (b) {
				b->next = c->oq;
				c->oq = b;
				if (!b->next)
					c->oq_tail = &b->next;
				b = NULL;
				arm_write_locked(c);
			} else {
				queue_locked(c, iov, iovcnt, give, 1);
				give = NULL;
			}
			break;
		}
		if (b) {
			buf_free(b->own);
			free(b);
			b = NULL;
		}
		if (!c->oq || c->dead)
			break;
		/* Send what others queued meanwhile, off the queue. */
		b = c->oq;
		c->oq = b->next;
		if (!c->oq)
			c->oq_tail = &c->oq;
		b->next = NULL;
		pthread_mutex_unlock(&c->lock);
		{
			struct iovec one = { .iov_base = (void *)b->p, .iov_len = b->len };
			struct iovec *ip = &one;
			int cnt = 1;
			size_t left;

			k = send_wait(c, &ip, &cnt, now_ns() + SEND_HOLD_MS * 1000000ull);
			left = cnt ? ip->iov_len : 0;
			pthread_mutex_lock(&c->lock);
			uncharge_locked(c, b->len - left);
			b->p += b->len - left;
			b->len = left;
		}
	}
	if (b) {
		uncharge_locked(c, b->len);
		buf_free(b->own);
		free(b);
	}
	c->sending = 0;
out:
	pthread_mutex_unlock(&c->lock);
	buf_free(give);
	return r;
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
send_info_block_size(struct conn *c, uint32_t opt, const struct export *e)
{
	uint8_t b[14];

	nbd_put16(b, NBD_INFO_BLOCK_SIZE);
	/* 1: any byte offset and length; a 4K-sector disk says 4096, as a
	 * real one would (requests below it are still served). */
	nbd_put32(b + 2, e->min_block > 1 ? e->min_block : 1);
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
		c->meta_alloc = c->meta_depth = 0;
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
	/* BLOCK_SIZE is sent unasked: proto.md allows it, and the server
	 * serves requests of any alignment whatever minimum it names. */
	if (send_info_export(c, opt, e) < 0 ||
	    (want_name && send_info_string(c, opt, NBD_INFO_NAME, e->name) < 0) ||
	    (want_desc && send_info_string(c, opt, NBD_INFO_DESCRIPTION,
					   e->description) < 0) ||
	    send_info_block_size(c, opt, e) < 0 ||
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
send_meta_context(struct conn *c, uint32_t opt, uint32_t id, const char *name)
{
	uint8_t b[4 + 64];
	size_t n = strlen(name);

	nbd_put32(b, id);
	memcpy(b + 4, name, n);
	return send_rep(c, opt, NBD_REP_META_CONTEXT, b, 4 + n);
}

static int
query_is(const char *q, uint32_t ql, const char *name)
{
	return ql == strlen(name) && memcmp(q, name, ql) == 0;
}

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT.  Data: export
 * name (32-bit length first), 32-bit query count, queries (each with a
 * 32-bit length).  We know base:allocation and, as qemu-nbd has it,
 * qemu:allocation-depth (which image of the chain holds each extent). */
static int
opt_meta(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	int list = opt == NBD_OPT_LIST_META_CONTEXT;
	uint32_t namelen, nq, pos;
	const struct export *e;
	int alloc = 0, depth = 0;

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
		alloc |= query_is(q, ql, META_ALLOCATION);
		depth |= query_is(q, ql, META_DEPTH);
		/* A bare namespace lists all its contexts (LIST only). */
		alloc |= list && query_is(q, ql, "base:");
		depth |= list && query_is(q, ql, "qemu:");
		pos += ql;
	}
	if (pos != len)
		return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "trailing data");
	e = find_export(d + 4, namelen);
	if (!e)
		return send_rep_err(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	if (list && nq == 0)
		alloc = depth = 1;
	if (!list) {
		c->meta_exp = e;
		c->meta_alloc = alloc;
		c->meta_depth = depth;
	}
	if (alloc && send_meta_context(c, opt, list ? 0 : META_ID_ALLOCATION,
				       META_ALLOCATION) < 0)
		return -1;
	if (depth && send_meta_context(c, opt, list ? 0 : META_ID_DEPTH,
				       META_DEPTH) < 0)
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
	uint64_t now;

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
	/* The TLS handshake is part of the negotiation: same deadline. */
	now = now_ns();
	if (now >= c->deadline_ns)
		return -1;
	c->tls = cfg->tls->accept(c->fd,
				  (unsigned)((c->deadline_ns - now) / 1000000u) + 1);
	if (!c->tls)
		return -1;
	c->structured = 0;
	c->meta_exp = NULL;
	c->meta_alloc = 0;
	c->meta_depth = 0;
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
			/* As qemu-nbd: once is enough, a repeat is an error. */
			if (c->structured) {
				r = send_rep_err(c, opt, NBD_REP_ERR_INVALID,
						 "structured replies already negotiated");
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

/* What a client is told about an error: never a server path (the
 * library's own messages name files), so a fixed text per error. */
static const char *
err_text(int err)
{
	switch (err) {
	case EPERM: case EROFS: case EACCES:  return "operation not permitted";
	case ENOMEM:                          return "out of memory";
	case EINVAL:                          return "invalid argument";
	case ENOSPC: case EDQUOT: case EFBIG: return "no space left on the image";
	case EOVERFLOW:                       return "value too large";
	case ENOTSUP:                         return "operation not supported";
	case ESHUTDOWN:                       return "server shutting down";
	default:                              return "input/output error";
	}
}

/* A failed library call: the full message goes to the log (rate
 * limited), the client gets err_text(). */
static void
log_io_error(const struct conn *c, int err)
{
	log_limited(&rl_errors, "export '%s': %s", c->exp->name,
		    vhd_errmsg() ? vhd_errmsg() : strerror(err));
}

static int
send_simple(struct conn *c, const struct request *r, uint32_t err,
	    void *give, size_t n)
{
	uint8_t h[NBD_SIMPLE_REPLY_SIZE];
	struct iovec iov[2] = {
		{ .iov_base = h, .iov_len = sizeof h },
		{ .iov_base = give, .iov_len = n },
	};

	nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(h + 4, err);
	memcpy(h + 8, r->cookie, 8);
	return conn_reply(c, iov, n ? 2 : 1, give);
}

static void
chunk_header(uint8_t *h, const struct request *r, uint16_t flags,
	     uint16_t type, uint32_t len)
{
	nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put16(h + 4, flags);
	nbd_put16(h + 6, type);
	memcpy(h + 8, r->cookie, 8);
	nbd_put32(h + 16, len);
}

static void
reply_error(struct conn *c, const struct request *r, int err, const char *msg)
{
	if (c->structured) {
		/* proto.md: errors preferably as chunks, with a message; a
		 * READ must never get a simple reply. */
		uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 6];
		size_t ml = strlen(msg);
		if (ml > 1024)
			ml = 1024;
		chunk_header(h, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
			     (uint32_t)(6 + ml));
		nbd_put32(h + 20, nbd_errno(err));
		nbd_put16(h + 24, (uint16_t)ml);
		struct iovec iov[2] = {
			{ .iov_base = h, .iov_len = sizeof h },
			{ .iov_base = (void *)msg, .iov_len = ml },
		};
		conn_reply(c, iov, ml ? 2 : 1, NULL);
	} else {
		/* A failed READ gets no payload (proto.md). */
		send_simple(c, r, nbd_errno(err), NULL, 0);
	}
}

static void
reply_ok(struct conn *c, const struct request *r)
{
	send_simple(c, r, 0, NULL, 0);
}

/* ---- transmission: commands ---------------------------------------------------- */

/* Send the replies collected in c->obuf.  Caller holds the read role. */
static void
flush_quick(struct conn *c)
{
	struct iovec iov = { .iov_base = c->obuf, .iov_len = c->olen };

	if (c->olen == 0)
		return;
	conn_reply(c, &iov, 1, NULL);
	c->olen = 0;
}

/* A structured READ of a range that is stored nowhere in the chain is
 * answered with one hole chunk instead of len bytes of zeros (as qemu-nbd
 * does; not under DF, which asks for a single data chunk).  The chunk goes
 * to c->obuf, so caller holds the read role.  1 if answered. */
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
	chunk_header(h, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE, 12);
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
	if (!(buf = buf_alloc(r->len))) {
		reply_error(c, r, ENOMEM, "out of memory");
		return;
	}
	e = vhd_pread(c->exp->vhd, buf, r->len, r->off);
	if (e < 0) {
		log_io_error(c, -e);
		reply_error(c, r, -e, err_text(-e));
		buf_free(buf);
		return;
	}
	/* The buffer goes with the reply (queued if the client is slow). */
	if (c->structured) {
		/* One data chunk, so NBD_CMD_FLAG_DF is always honoured. */
		uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 8];
		struct iovec iov[2] = {
			{ .iov_base = h, .iov_len = sizeof h },
			{ .iov_base = buf, .iov_len = r->len },
		};
		chunk_header(h, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
			     8 + r->len);
		nbd_put64(h + 20, r->off);
		conn_reply(c, iov, 2, buf);
	} else {
		send_simple(c, r, 0, buf, r->len);
	}
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

/* Value of an extent in a context: base:allocation flags, or for
 * qemu:allocation-depth the level of the chain that holds it (1 = the
 * top image, 2 = its parent, ..., 0 = no image). */
static uint32_t
extent_value(uint32_t ctx, unsigned status, int depth)
{
	if (ctx == META_ID_DEPTH)
		return (status & VHD_MAP_DATA) && depth >= 0 ? (uint32_t)depth + 1 : 0;
	return alloc_flags(status);
}

/* Fill d with up to max extents of context ctx from r->off.  Number of
 * extents, or -errno when not even one could be mapped. */
static int
map_extents(struct conn *c, const struct request *r, uint32_t ctx,
	    uint8_t *d, unsigned max)
{
	uint64_t pos = r->off, end = r->off + r->len;
	unsigned n = 0, calls = 0;
	uint32_t last = 0, lastlen = 0;

	while (pos < end && calls++ < 65536) {
		uint64_t run = 0;
		unsigned st = 0;
		int depth = -1;
		uint32_t f;
		int e = vhd_map(c->exp->vhd, pos, end - pos, &run, &st,
				ctx == META_ID_DEPTH ? &depth : NULL);
		if (e < 0) {
			if (n == 0)
				return e;
			break;
		}
		if (run == 0)
			break;
		if (run > end - pos)
			run = end - pos;
		f = extent_value(ctx, st, depth);
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
	return n ? (int)n : -EIO;
}

/* One chunk per selected context, the last one flagged DONE. */
static void
do_block_status(struct conn *c, const struct request *r)
{
	unsigned max = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : MAX_EXTENTS;
	size_t csize = NBD_STRUCTURED_REPLY_SIZE + 4 + 8 * (size_t)max;
	uint32_t ctx[2];
	unsigned nctx = 0;
	size_t used = 0;
	uint8_t *b;
	struct iovec iov[2];

	if (c->meta_alloc)
		ctx[nctx++] = META_ID_ALLOCATION;
	if (c->meta_depth)
		ctx[nctx++] = META_ID_DEPTH;
	b = malloc(csize * nctx);
	if (!b) {
		reply_error(c, r, ENOMEM, err_text(ENOMEM));
		return;
	}
	for (unsigned i = 0; i < nctx; i++) {
		uint8_t *h = b + csize * i;
		int n = map_extents(c, r, ctx[i], h + NBD_STRUCTURED_REPLY_SIZE + 4, max);
		if (n < 0) {
			log_io_error(c, -n);
			reply_error(c, r, -n, err_text(-n));
			free(b);
			return;
		}
		chunk_header(h, r, i + 1 == nctx ? NBD_REPLY_FLAG_DONE : 0,
			     NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * (uint32_t)n);
		nbd_put32(h + NBD_STRUCTURED_REPLY_SIZE, ctx[i]);
		iov[i].iov_base = h;
		iov[i].iov_len = NBD_STRUCTURED_REPLY_SIZE + 4 + 8 * (size_t)n;
		used += iov[i].iov_len;
	}
	(void)used;
	conn_reply(c, iov, (int)nctx, NULL);
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
	if (r->type == NBD_CMD_BLOCK_STATUS && !c->meta_alloc && !c->meta_depth) {
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
		/* FUA: that write and the metadata it changed, durable before
		 * the reply; not every dirty byte of the image. */
		e = vhd_pwrite_flags(v, r->data, r->len, r->off,
				     (r->flags & NBD_CMD_FLAG_FUA) ? VHD_WRITE_FUA : 0);
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
	/* FUA on the other commands: durable before the reply (proto.md),
	 * by a flush of the whole image (more than needed, always correct). */
	if (e >= 0 && (r->flags & NBD_CMD_FLAG_FUA) && r->type != NBD_CMD_FLUSH &&
	    r->type != NBD_CMD_WRITE && !c->exp->readonly)
		e = vhd_flush(v);
	if (e < 0) {
		log_io_error(c, -e);
		reply_error(c, r, -e, err_text(-e));
	} else
		reply_ok(c, r);
}

/* ---- transmission: reading requests ----------------------------------------------- */

static void flush_quick(struct conn *c);

/* Smallest busy-poll window worth trying. */
#define POLL_MIN_NS 4000u

/* Adapt the window to how long the last wait for a request took, the
 * rule of QEMU's adaptive AioContext polling: a wait that the window
 * would have covered grows it, a wait longer than the maximum (an idle
 * client) shrinks it, towards no polling at all. */
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

/* Read for the holder of the read role: > 0 bytes, 0 EOF, -1 error, -2
 * nothing now.  Replies collected so far go out first.  While other
 * workers wait for work, it lingers up to LINGER_US in recv(): a client
 * that keeps a queue of requests sends the next one within microseconds,
 * and that saves a trip through epoll.  With --poll-us it busy-polls for
 * up to c->poll_ns instead of sleeping. */
static ssize_t
recv_nb(struct conn *c, void *buf, size_t n)
{
	uint64_t t0 = 0;
	int linger;

	flush_quick(c);
	linger = cfg->poll_ns == 0 && atomic_load(&g_idle_workers) > 0 &&
		 !atomic_load(&g_stopping);
	for (;;) {
		ssize_t r = io_recv(c, buf, n, linger);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (cfg->poll_ns == 0)
			return -2;
		if (t0 == 0)
			t0 = now_ns();
		if (c->poll_ns == 0 || now_ns() - t0 >= c->poll_ns) {
			/* Waiting: serve_read() adapts the window to how
			 * long it took. */
			c->wait_t0 = t0;
			return -2;
		}
	}
}

/* Make at least need bytes available in rbuf.  1, 0 (not yet), -1 EOF or
 * error. */
static int
fill(struct conn *c, size_t need)
{
	while (c->rlen - c->rpos < need) {
		ssize_t r;

		if (c->rpos > 0) {
			memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rlen -= c->rpos;
			c->rpos = 0;
		}
		r = recv_nb(c, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
		if (r == -2)
			return 0;
		if (r <= 0)
			return -1;
		c->rlen += (size_t)r;
	}
	return 1;
}

/* The next request (with a WRITE's payload), read without blocking: a
 * partial one stays in c->rbuf / c->cur until the rest arrives.  1: a
 * whole request in *r; 0: not yet; -1: end the connection (DISC, EOF,
 * error or a violation). */
static int
next_request(struct conn *c, struct request *r)
{
	struct request *q = &c->cur;

	if (!c->in_payload) {
		const uint8_t *h;
		int k = fill(c, NBD_REQUEST_SIZE);

		if (k <= 0)
			return k < 0 ? -1 : 0;
		h = c->rbuf + c->rpos;
		c->rpos += NBD_REQUEST_SIZE;
		if (nbd_get32(h) != NBD_REQUEST_MAGIC) {
			logv("vhdnbd: bad request magic%s, closing\n", "");
			return -1;
		}
		memset(q, 0, sizeof *q);
		q->c = c;
		q->flags = nbd_get16(h + 4);
		q->type = nbd_get16(h + 6);
		memcpy(q->cookie, h + 8, 8);
		q->off = nbd_get64(h + 16);
		q->len = nbd_get32(h + 24);
		if (q->type == NBD_CMD_DISC)
			return -1;
		if (q->type != NBD_CMD_WRITE) {
			*r = *q;
			return 1;
		}
		/* Too large to accept: proto.md lets the server disconnect
		 * rather than consume the payload. */
		if (q->len > MAX_PAYLOAD) {
			logv("vhdnbd: write too large%s, closing\n", "");
			return -1;
		}
		q->data = buf_alloc(q->len);
		if (!q->data)
			return -1;
		pthread_mutex_lock(&c->lock);
		charge_locked(c, q->len);
		pthread_mutex_unlock(&c->lock);
		q->charge = q->len;
		c->in_payload = 1;
		c->have = 0;
	}
	while (c->have < q->len) {
		size_t need = q->len - c->have;
		ssize_t n;

		if (c->rpos < c->rlen) {
			size_t k = c->rlen - c->rpos;
			if (k > need)
				k = need;
			memcpy(q->data + c->have, c->rbuf + c->rpos, k);
			c->rpos += k;
			c->have += k;
			continue;
		}
		/* Large payloads go straight to their destination. */
		if (need >= sizeof c->rbuf) {
			n = recv_nb(c, q->data + c->have, need);
			if (n > 0)
				c->have += (size_t)n;
		} else {
			n = recv_nb(c, c->rbuf, sizeof c->rbuf);
			if (n > 0) {
				c->rpos = 0;
				c->rlen = (size_t)n;
			}
		}
		if (n == -2)
			return 0;
		if (n <= 0)
			return -1;
	}
	c->in_payload = 0;
	*r = *q;
	q->data = NULL;
	q->charge = 0;
	return 1;
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

/* ---- connections ------------------------------------------------------------------- */

static void
conn_destroy(struct conn *c)
{
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
	/* Closed under c_lock so nothing sees a stale fd. */
	if (c->in_epoll)
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->wfd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->wfd, NULL);
		close(c->wfd);
	}
	close(c->fd);
	pthread_cond_broadcast(&c_cond);
	pthread_mutex_unlock(&c_lock);

	drop_queue_locked(c);   /* empty unless the client was dropped */
	buf_free(c->cur.data);
	pthread_mutex_destroy(&c->lock);
	free(c);
	logv("vhdnbd: connection closed%s\n", "");
}

/* Drop one reference; the last one frees the connection. */
static void
conn_unref(struct conn *c)
{
	unsigned left;

	pthread_mutex_lock(&c->lock);
	left = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (left == 0)
		conn_destroy(c);
}

/* Give the read role to epoll until the socket has bytes. */
static void
arm_read(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = &c->rtag };
	int op = c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	/* Set before the call: the event may fire, and the next holder arm
	 * again, before epoll_ctl() even returns. */
	c->in_epoll = 1;
	/* The read role changes hands through the kernel; this pairs with
	 * the lock in role_taken() so that thread checkers see the order. */
	pthread_mutex_lock(&c->lock);
	pthread_mutex_unlock(&c->lock);
	if (epoll_ctl(epfd, op, c->fd, &ev) < 0) {
		log_limited(&rl_errors, "cannot watch a client socket: %s",
			    strerror(errno));
		/* Nobody would ever read: end the connection. */
		pthread_mutex_lock(&c->lock);
		mark_dead_locked(c);
		pthread_mutex_unlock(&c->lock);
		enqueue(c);
	}
}

/* Pass the read role on: to the queue when bytes wait in user space or
 * a worker is idle (it lingers for the next request: no epoll_ctl() and
 * no trip through the poller while the client keeps requests coming),
 * else to epoll. */
static void
pass_read_role(struct conn *c)
{
	if (conn_buffered(c) || c->quit ||
	    (cfg->poll_ns == 0 && atomic_load(&g_idle_workers) > 0 &&
	     !atomic_load(&g_stopping)))
		enqueue(c);
	else
		arm_read(c);
}

/* The read role ends: no more requests from this connection.  Requests
 * already read are still answered before the socket closes. */
static void
end_read(struct conn *c)
{
	flush_quick(c);
	if (c->in_payload) {
		pthread_mutex_lock(&c->lock);
		uncharge_locked(c, c->cur.charge);
		pthread_mutex_unlock(&c->lock);
		buf_free(c->cur.data);
		c->cur.data = NULL;
		c->in_payload = 0;
	}
	conn_unref(c);
}

static void
request_done(struct conn *c, struct request *r)
{
	unsigned left;

	buf_free(r->data);
	pthread_mutex_lock(&c->lock);
	uncharge_locked(c, r->charge);
	maybe_unpark_locked(c);
	left = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (left == 0)
		conn_destroy(c);
}

/* The read role arrived through epoll: see arm_read(). */
static void
role_taken(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	pthread_mutex_unlock(&c->lock);
}

/* Whether the holder of the read role should serve r itself and then go
 * on reading: when no other request of c is waiting, neither in user
 * space nor on the socket (which is read into rbuf without waiting to
 * see).  Then handing the role on would only wake a worker to wait for
 * the client, two context switches per request where this costs none,
 * and that worker could not start before r's reply anyway at queue depth
 * one.  A FLUSH or FUA request (which may take milliseconds) always hands
 * the role on, so that requests sent behind it are not held up.  Caller
 * holds the read role. */
static int
serve_here(struct conn *c, const struct request *r)
{
	ssize_t n;

	if (r->type == NBD_CMD_FLUSH || (r->flags & NBD_CMD_FLAG_FUA) ||
	    conn_buffered(c) || c->quit)
		return 0;
	/* rbuf is empty: reuse it from the start. */
	c->rpos = c->rlen = 0;
	do
		n = io_recv(c, c->rbuf, sizeof c->rbuf, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->rlen = (size_t)n;
		return 0;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		c->quit = 1;    /* EOF or error: answer r, then end */
	return 1;
}

/* The holder of the read role reads requests, answers those that need no
 * I/O, and gives the role up before serving any other (which it then
 * does on this thread), unless no other request waits (serve_here()). */
static void
serve_read(struct conn *c)
{
	struct request r;

	if (c->wait_t0) {
		poll_adapt(c, now_ns() - c->wait_t0);
		c->wait_t0 = 0;
	}
	for (;;) {
		int k;

		if (c->dead || c->quit || atomic_load(&g_stopping)) {
			end_read(c);
			return;
		}
		if (!c->in_payload && atomic_load(&g_charged) > cfg->max_queued) {
			flush_quick(c);
			pthread_mutex_lock(&c->lock);
			if (over_budget_locked(c) && !c->dead) {
				/* Parked: request_done() or the write side
				 * hands the role back. */
				c->parked = 1;
				pthread_mutex_unlock(&c->lock);
				return;
			}
			pthread_mutex_unlock(&c->lock);
		}
		k = next_request(c, &r);
		if (k == 0) {
			flush_quick(c);
			arm_read(c);
			return;
		}
		if (k < 0) {
			c->quit = 1;
			continue;
		}
		if (serve_quick(&r))
			continue;
		flush_quick(c);
		pthread_mutex_lock(&c->lock);
		c->refs++;
		/* A READ's buffer counts from now on; a WRITE's already does. */
		if (r.type == NBD_CMD_READ && r.len <= MAX_PAYLOAD) {
			r.charge = r.len;
			charge_locked(c, r.charge);
		}
		pthread_mutex_unlock(&c->lock);
		if (serve_here(c, &r)) {
			/* Nothing else to read: no other worker would have
			 * work, and waking one costs more than most requests. */
			if (!c->dead)
				handle(&r);
			request_done(c, &r);
			continue;
		}
		pass_read_role(c);
		if (!c->dead)
			handle(&r);
		request_done(c, &r);
		return;
	}
}

/* The write side: the socket takes data again (or failed). */
static void
serve_write(struct conn *c)
{
	unsigned left;

	pthread_mutex_lock(&c->lock);
	c->warmed = 0;
	/* A worker sending (it queued nothing for us) sends the queue. */
	if (!c->sending) {
		drain_locked(c);
		if (c->oq && !c->dead)
			arm_write_locked(c);
	}
	maybe_unpark_locked(c);
	left = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (left == 0)
		conn_destroy(c);
}

/* A worker: serve the read roles of the ready queue. */
static void *
worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct conn *c;

		pthread_mutex_lock(&q_lock);
		while (!q_head && !q_quit) {
			q_waiting++;
			atomic_fetch_add(&g_idle_workers, 1);
			pthread_cond_wait(&q_cond, &q_lock);
			atomic_fetch_sub(&g_idle_workers, 1);
			q_waiting--;
			if (q_woken > 0)
				q_woken--;
		}
		c = q_head;
		if (!c) {
			pthread_mutex_unlock(&q_lock);
			return NULL;
		}
		q_head = c->qnext;
		if (!q_head)
			q_tail = NULL;
		wake_locked();
		pthread_mutex_unlock(&q_lock);
		serve_read(c);
	}
}

/* The poller: a readable idle connection goes to the ready queue; a
 * writable one has its queued replies sent here (that never blocks). */
static void *
poll_thread(void *arg)
{
	struct epoll_event ev[64];

	(void)arg;
	for (;;) {
		int n = epoll_wait(epfd, ev, 64, -1);

		for (int i = 0; i < n; i++) {
			struct evtag *t = ev[i].data.ptr;

			switch (t->kind) {
			case EV_QUIT:
				return NULL;
			case EV_READ:
				role_taken(t->c);
				enqueue(t->c);
				break;
			case EV_WRITE:
				serve_write(t->c);
				break;
			}
		}
	}
}

/* ---- the handshake ------------------------------------------------------------------ */

static void *
conn_thread(void *arg)
{
	struct conn *c = arg;
	int ok = negotiate(c) == 0;

	pthread_mutex_lock(&c_lock);
	if (!c->dead)
		c_handshakes--;
	c->negotiating = 0;
	if (c_stopping || c->dead)
		ok = 0;
	pthread_mutex_unlock(&c_lock);
	if (!ok) {
		conn_destroy(c);
		return NULL;
	}
	/* Transmission: no thread of its own from here on.  A lingering
	 * recv() waits LINGER_US at most. */
	{
		struct timeval tv = { .tv_sec = 0, .tv_usec = LINGER_US };
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	c->refs = 1;            /* the read role */
	pass_read_role(c);
	return NULL;
}

/* Drop the connection that has been negotiating longest.  Under c_lock. */
static int
evict_oldest_handshake(void)
{
	struct conn *old = NULL;

	for (struct conn *c = c_list; c; c = c->next)
		if (c->negotiating && !c->dead &&
		    (!old || c->accepted_ns < old->accepted_ns))
			old = c;
	if (!old)
		return -1;
	old->dead = 1;
	shutdown(old->fd, SHUT_RDWR);
	c_handshakes--;
	return 0;
}

/* A connection about to negotiate (not yet listed).  NULL if out of
 * memory. */
static struct conn *
conn_new(int fd, int is_tcp)
{
	struct conn *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->fd = fd;
	c->wfd = -1;
	c->is_tcp = is_tcp;
	c->rtag = (struct evtag){ EV_READ, c };
	c->wtag = (struct evtag){ EV_WRITE, c };
	c->oq_tail = &c->oq;
	c->negotiating = 1;
	c->accepted_ns = now_ns();
	c->deadline_ns = c->accepted_ns + (uint64_t)cfg->handshake_s * 1000000000u;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void
server_connection(int fd, int is_tcp)
{
	struct conn *c = conn_new(fd, is_tcp);
	pthread_t t;
	pthread_attr_t a;

	if (!c) {
		close(fd);
		return;
	}

	pthread_mutex_lock(&c_lock);
	if (c_stopping) {
		pthread_mutex_unlock(&c_lock);
		goto fail;
	}
	/* Silent connections cannot lock clients out: past the cap on
	 * handshakes, or on connections, the oldest handshake goes. */
	if (c_handshakes >= MAX_HANDSHAKES ||
	    c_count >= cfg->max_connections) {
		if (evict_oldest_handshake() < 0) {
			pthread_mutex_unlock(&c_lock);
			log_limited(&rl_conns, "too many connections (%u): "
				    "refused one", cfg->max_connections);
			goto fail;
		}
		log_limited(&rl_conns, "too many connections negotiating: "
			    "dropped the oldest");
	}
	c->next = c_list;
	if (c_list)
		c_list->prev = c;
	c_list = c;
	c_count++;
	c_handshakes++;
	pthread_mutex_unlock(&c_lock);

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, HANDSHAKE_STACK);
	if (pthread_create(&t, &a, conn_thread, c) != 0) {
		pthread_attr_destroy(&a);
		log_limited(&rl_conns, "cannot start a thread for a client");
		pthread_mutex_lock(&c_lock);
		c_handshakes--;
		pthread_mutex_unlock(&c_lock);
		conn_destroy(c);
		return;
	}
	pthread_attr_destroy(&a);
	logv("vhdnbd: new connection%s\n", "");
	return;
fail:
	close(fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Stop the poller and the workers (no connection is left). */
static void
server_stop_pool(void)
{
	uint64_t one = 1;

	if (write(quitfd, &one, sizeof one) < 0) {
		/* cannot fail */
	}
	if (have_poller)
		pthread_join(poller, NULL);
	have_poller = 0;
	pthread_mutex_lock(&q_lock);
	q_quit = 1;
	pthread_cond_broadcast(&q_cond);
	pthread_mutex_unlock(&q_lock);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	nworkers = 0;
	free(workers);
	workers = NULL;
	close(quitfd);
	close(epfd);
	quitfd = epfd = -1;
	buf_drain();
}

int
server_init(const struct server_config *config)
{
	struct epoll_event ev = { .events = EPOLLIN };
	pthread_attr_t a;

	cfg = config;
	/* Fresh state (the fuzz target starts a server per input). */
	c_stopping = 0;
	atomic_store(&g_stopping, 0);
	atomic_store(&g_charged, 0);
	nworkers = 0;
	have_poller = 0;
	q_head = q_tail = NULL;
	q_quit = 0;
	q_waiting = q_woken = 0;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	quitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (epfd < 0 || quitfd < 0)
		return -errno;
	ev.data.ptr = &quittag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, quitfd, &ev) < 0)
		return -errno;
	workers = calloc(cfg->threads, sizeof *workers);
	if (!workers)
		return -ENOMEM;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, WORKER_STACK);
	for (unsigned i = 0; i < cfg->threads; i++) {
		if (pthread_create(&workers[i], &a, worker, NULL) != 0)
			break;
		nworkers++;
	}
	if (nworkers && pthread_create(&poller, &a, poll_thread, NULL) == 0)
		have_poller = 1;
	pthread_attr_destroy(&a);
	if (!have_poller) {
		server_stop_pool();
		return -EAGAIN;
	}
	return 0;
}

void
server_shutdown(void)
{
	struct timespec ts;
	int r = 0;

	pthread_mutex_lock(&c_lock);
	c_stopping = 1;
	atomic_store(&g_stopping, 1);
	/* Handshakes end now.  Negotiated clients are no longer read from;
	 * the requests they sent are answered and their replies sent. */
	for (struct conn *c = c_list; c; c = c->next) {
		if (c->negotiating) {
			if (!c->dead)
				c_handshakes--;
			c->dead = 1;
			shutdown(c->fd, SHUT_RDWR);
			continue;
		}
		shutdown(c->fd, SHUT_RD);
		pthread_mutex_lock(&c->lock);
		if (c->parked) {
			c->parked = 0;
			enqueue(c);
		}
		pthread_mutex_unlock(&c->lock);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SHUTDOWN_GRACE_S;
	while (c_count > 0 && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&c_cond, &c_lock, &ts);
	if (c_count > 0) {
		/* Clients that do not read their replies are dropped. */
		fprintf(stderr, "vhdnbd: dropping %u client%s that did not take "
			"their replies\n", c_count, c_count == 1 ? "" : "s");
		for (struct conn *c = c_list; c; c = c->next) {
			pthread_mutex_lock(&c->lock);
			mark_dead_locked(c);
			pthread_mutex_unlock(&c->lock);
		}
	}
	while (c_count > 0)
		pthread_cond_wait(&c_cond, &c_lock);
	pthread_mutex_unlock(&c_lock);

	log_limited_flush(&rl_conns, "too many connections");
	log_limited_flush(&rl_timeout, "handshake timeouts");
	log_limited_flush(&rl_errors, "errors");
	server_stop_pool();
}
