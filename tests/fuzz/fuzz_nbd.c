/*
 * fuzz_nbd.c - libFuzzer target for vhdnbd's protocol engine: option
 * negotiation and the transmission phase (nbd/server.c).
 *
 * The input is everything a client sends after the server's greeting:
 * client flags, options, then requests.  It goes in through one end of a
 * socketpair while a client thread drains the replies; the other end is
 * served by the connection code of nbd/server.c running on this thread,
 * over two exports: "" / "rw" (a small dynamic disk, writable) and "ro"
 * (a fixed disk, read-only), both in memory and made afresh per input so
 * every run starts from the same state.
 *
 * What the server sends back is checked against a model of the protocol
 * driven by the same input (fn_model): every option gets replies that
 * echo it and end in an ACK or an error, every request read in full gets
 * exactly one reply (one chunk with the DONE flag when structured) with
 * its cookie, lengths agree with payloads, and nothing else is sent.
 *
 * server.h only offers server_connection(), which serves a socket on a
 * detached thread; a fuzzer needs to know when the connection is over
 * (and all its memory freed) before the next input.  So this file
 * includes server.c and calls its conn_thread() directly, setting up the
 * struct conn as server_connection() does.  With threads = 1 the
 * connection is served entirely on the calling thread.
 */
#include <poll.h>
#include <signal.h>

#include "../../nbd/server.c"
#include "vhd_test.h"

#define FN_MAX_INPUT (1u * 1024 * 1024)
#define FN_DISK      (1024u * 1024 + 3 * 512)   /* not a whole block */
#define FN_OUT_CAP   (16u * 1024 * 1024)        /* kept for the model */

struct fn_client {
	int fd;
	const uint8_t *data;
	size_t size;
	uint64_t received;
	uint8_t *out;           /* the first FN_OUT_CAP bytes received */
	size_t out_len, out_cap;
};

#ifdef FUZZ_NO_MAIN
void fuzz_regress_fail(const char *who, const char *what, int line);
#define FN_FAIL(what) fuzz_regress_fail("fuzz_nbd", what, __LINE__)
#else
#define FN_FAIL(what) fn_fail(what, __LINE__)
static void
fn_fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_nbd: protocol model violated at line %d: %s\n",
		line, what);
	abort();
}
#endif

/* ---- The protocol model ------------------------------------------------ */

struct fn_stream {
	const uint8_t *p;
	size_t n, pos;
};

static int
fn_take(struct fn_stream *s, const uint8_t **at, size_t n)
{
	if (s->n - s->pos < n)
		return 0;
	*at = s->p + s->pos;
	s->pos += n;
	return 1;
}

/* One option's replies: headers echoing opt, until an ACK or an error.
 * Returns the final reply type, or 0 after reporting a violation. */
static uint32_t
fn_option_replies(struct fn_stream *out, uint32_t opt)
{
	for (;;) {
		const uint8_t *h, *d;
		uint32_t type, len;

		if (!fn_take(out, &h, 20)) {
			FN_FAIL("option without a final reply");
			return 0;
		}
		if (nbd_get64(h) != NBD_REP_MAGIC || nbd_get32(h + 8) != opt) {
			FN_FAIL("option reply: bad magic or option not echoed");
			return 0;
		}
		type = nbd_get32(h + 12);
		len = nbd_get32(h + 16);
		if (!fn_take(out, &d, len)) {
			FN_FAIL("option reply shorter than its length");
			return 0;
		}
		if (type == NBD_REP_ACK) {
			if (len != 0)
				FN_FAIL("ACK with data");
			return type;
		}
		if (type & 0x80000000u)
			return type;
		if (type == NBD_REP_INFO && (len < 2 ||
		    (nbd_get16(d) == NBD_INFO_EXPORT && (len != 12 ||
		     nbd_get64(d + 2) != FN_DISK)))) {
			FN_FAIL("bad NBD_REP_INFO");
			return 0;
		}
		if (type != NBD_REP_INFO && type != NBD_REP_SERVER &&
		    type != NBD_REP_META_CONTEXT) {
			FN_FAIL("unexpected option reply type");
			return 0;
		}
	}
}

/* Negotiation.  1: transmission follows (*structured set); 0: the
 * connection ended; -1: a violation was reported. */
static int
fn_negotiate(struct fn_stream *in, struct fn_stream *out, int *structured)
{
	const uint8_t *h, *d;
	int no_zeroes;

	if (!fn_take(out, &h, 18) || nbd_get64(h) != NBD_MAGIC ||
	    nbd_get64(h + 8) != NBD_IHAVEOPT) {
		FN_FAIL("bad greeting");
		return -1;
	}
	if (!fn_take(in, &h, 4) || (nbd_get32(h) & ~3u))
		return 0;
	no_zeroes = nbd_get32(h) & NBD_FLAG_C_NO_ZEROES;
	*structured = 0;
	for (;;) {
		uint32_t opt, len, r;

		if (!fn_take(in, &h, 16) || nbd_get64(h) != NBD_IHAVEOPT)
			return 0;
		opt = nbd_get32(h + 8);
		len = nbd_get32(h + 12);
		if (len > MAX_OPTION) {
			if (opt == NBD_OPT_EXPORT_NAME || len > MAX_OPTION_SKIP ||
			    !fn_take(in, &d, len))
				return 0;
			if (fn_option_replies(out, opt) != NBD_REP_ERR_TOO_BIG) {
				FN_FAIL("large option not refused as too big");
				return -1;
			}
			continue;
		}
		if (!fn_take(in, &d, len))
			return 0;
		if (opt == NBD_OPT_EXPORT_NAME) {
			const uint8_t *x;
			int known = len == 0 || (len == 2 && (!memcmp(d, "rw", 2) ||
							      !memcmp(d, "ro", 2)));

			if (!known)
				return 0;
			if (!fn_take(out, &x, no_zeroes ? 10 : 134) ||
			    nbd_get64(x) != FN_DISK) {
				FN_FAIL("bad NBD_OPT_EXPORT_NAME reply");
				return -1;
			}
			return 1;
		}
		r = fn_option_replies(out, opt);
		if (r == 0)
			return -1;
		if (opt == NBD_OPT_ABORT)
			return 0;
		if (opt == NBD_OPT_STRUCTURED_REPLY && r == NBD_REP_ACK)
			*structured = 1;
		if (opt == NBD_OPT_GO && r == NBD_REP_ACK)
			return 1;
	}
}

/* Transmission: each request read in full gets one reply, in order (one
 * thread serves the connection). */
static void
fn_transmission(struct fn_stream *in, struct fn_stream *out, int structured)
{
	for (;;) {
		const uint8_t *h, *d, *rh;
		uint16_t type;
		uint32_t len;

		if (!fn_take(in, &h, NBD_REQUEST_SIZE) ||
		    nbd_get32(h) != NBD_REQUEST_MAGIC)
			break;
		type = nbd_get16(h + 6);
		len = nbd_get32(h + 24);
		if (type == NBD_CMD_DISC)
			break;
		if (type == NBD_CMD_WRITE &&
		    (len > MAX_PAYLOAD || !fn_take(in, &d, len)))
			break;
		if (!fn_take(out, &rh, 4)) {
			FN_FAIL("request without a reply");
			return;
		}
		if (nbd_get32(rh) == NBD_SIMPLE_REPLY_MAGIC) {
			const uint8_t *r;

			if (!fn_take(out, &r, 12) || memcmp(r + 4, h + 8, 8)) {
				FN_FAIL("simple reply: short or wrong cookie");
				return;
			}
			if (type == NBD_CMD_READ && structured) {
				FN_FAIL("simple reply to a structured READ");
				return;
			}
			if (type == NBD_CMD_READ && nbd_get32(r) == 0 &&
			    !fn_take(out, &d, len)) {
				FN_FAIL("READ reply shorter than the request");
				return;
			}
		} else if (nbd_get32(rh) == NBD_STRUCTURED_REPLY_MAGIC &&
			   structured) {
			const uint8_t *r;
			uint16_t rtype;
			uint32_t rlen;

			if (!fn_take(out, &r, 16) || memcmp(r + 4, h + 8, 8)) {
				FN_FAIL("chunk: short or wrong cookie");
				return;
			}
			rtype = nbd_get16(r + 2);
			rlen = nbd_get32(r + 12);
			if (!(nbd_get16(r) & NBD_REPLY_FLAG_DONE) ||
			    !fn_take(out, &d, rlen)) {
				FN_FAIL("chunk: not DONE or short payload");
				return;
			}
			if (rtype == NBD_REPLY_TYPE_OFFSET_DATA &&
			    (type != NBD_CMD_READ || rlen != 8 + len ||
			     nbd_get64(d) != nbd_get64(h + 16))) {
				FN_FAIL("data chunk does not match the READ");
				return;
			}
			if (rtype == NBD_REPLY_TYPE_BLOCK_STATUS) {
				uint64_t sum = 0;

				if (type != NBD_CMD_BLOCK_STATUS || rlen < 12 ||
				    (rlen - 4) % 8) {
					FN_FAIL("bad block status chunk");
					return;
				}
				for (uint32_t k = 4; k < rlen; k += 8)
					sum += nbd_get32(d + k);
				if (sum == 0 || sum > len) {
					FN_FAIL("block status extents exceed the request");
					return;
				}
			}
			if (rtype == NBD_REPLY_TYPE_ERROR &&
			    (rlen < 6 || nbd_get32(d) == 0 ||
			     (uint32_t)nbd_get16(d + 4) + 6 != rlen)) {
				FN_FAIL("bad error chunk");
				return;
			}
		} else {
			FN_FAIL("reply with a bad magic");
			return;
		}
	}
	if (out->pos != out->n)
		FN_FAIL("bytes sent after the last reply");
}

static void
fn_model(const uint8_t *in, size_t in_len, const uint8_t *out, size_t out_len)
{
	struct fn_stream si = { in, in_len, 0 }, so = { out, out_len, 0 };
	int structured = 0, r = fn_negotiate(&si, &so, &structured);

	if (r == 1)
		fn_transmission(&si, &so, structured);
	else if (r == 0 && so.pos != so.n)
		FN_FAIL("bytes sent after negotiation ended");
}

/* Write the input, then half-close; read replies until the server closes. */
static void *
fn_client_thread(void *arg)
{
	struct fn_client *cl = arg;
	size_t sent = 0;
	int wr_open = 1;
	uint8_t buf[65536];

	if (cl->size == 0) {
		shutdown(cl->fd, SHUT_WR);
		wr_open = 0;
	}
	for (;;) {
		struct pollfd p = { cl->fd, POLLIN | (wr_open ? POLLOUT : 0), 0 };

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (wr_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = send(cl->fd, cl->data + sent, cl->size - sent,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
			    sent == cl->size) {
				shutdown(cl->fd, SHUT_WR);
				wr_open = 0;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(cl->fd, buf, sizeof buf, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				break;
			if (n > 0) {
				size_t keep = (size_t)n;

				if (keep > FN_OUT_CAP - cl->out_len)
					keep = FN_OUT_CAP - cl->out_len;
				if (cl->out_len + keep > cl->out_cap) {
					size_t c = cl->out_cap * 2;
					uint8_t *o;

					while (c < cl->out_len + keep)
						c *= 2;
					if (!(o = realloc(cl->out, c)))
						abort();
					cl->out = o;
					cl->out_cap = c;
				}
				memcpy(cl->out + cl->out_len, buf, keep);
				cl->out_len += keep;
				cl->received += (uint64_t)n;
			}
		}
	}
	close(cl->fd);
	return NULL;
}

static struct vhd *
fn_image(enum vhd_type type)
{
	struct vhd_create_opts o;
	struct vhd_open_opts oo = { sizeof oo, VHD_OPEN_RDWR, NULL };
	struct vhd_io *io;
	struct vhd *v;
	uint8_t pat[4096];

	memset(&o, 0, sizeof o);
	o.struct_size = sizeof o;
	o.type = type;
	o.size = FN_DISK;
	o.block_size = 64 * 1024;
	if (vhd_io_mem_open(&io, NULL, 0) < 0)
		abort();
	if (vhd_create_io(io, &o) < 0 || vhd_open_io(&v, io, &oo) < 0) {
		fprintf(stderr, "fuzz_nbd: cannot create an image: %s\n",
			vhd_errmsg());
		abort();
	}
	/* Some data, so reads and BLOCK_STATUS see both kinds of extent. */
	for (size_t i = 0; i < sizeof pat; i++)
		pat[i] = (uint8_t)(i * 7 + 1);
	if (vhd_pwrite(v, pat, sizeof pat, 0) < 0 ||
	    vhd_pwrite(v, pat, sizeof pat, 192 * 1024 + 512) < 0 ||
	    vhd_pwrite(v, pat, 1024, FN_DISK - 1024) < 0)
		abort();
	return v;
}

/* One client session (also used by test_fuzz_regress.c). */
int fuzz_nbd_input(const uint8_t *data, size_t size);

int
fuzz_nbd_input(const uint8_t *data, size_t size)
{
	static int once;
	struct export ex[3];
	struct server_config sc;
	struct fn_client cl;
	struct conn *c;
	pthread_t t;
	int sv[2];

	if (size > FN_MAX_INPUT)
		return 0;
	if (!once) {
		signal(SIGPIPE, SIG_IGN);
		once = 1;
	}
	memset(ex, 0, sizeof ex);
	ex[0].name = "rw";
	ex[0].description = "a small dynamic disk";
	ex[0].path = "rw.vhd";
	ex[0].vhd = fn_image(VHD_TYPE_DYNAMIC);
	ex[0].size = FN_DISK;
	ex[1].name = "ro";
	ex[1].description = "a small fixed disk, read-only";
	ex[1].path = "ro.vhd";
	ex[1].vhd = fn_image(VHD_TYPE_FIXED);
	ex[1].size = FN_DISK;
	ex[1].readonly = 1;
	memset(&sc, 0, sizeof sc);
	sc.exports = ex;
	sc.nexports = 2;
	sc.threads = 1;
	sc.verbose = 0;
	server_init(&sc);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	cl.fd = sv[1];
	cl.data = data;
	cl.size = size;
	cl.received = 0;
	cl.out_len = 0;
	cl.out_cap = 65536;
	if (!(cl.out = malloc(cl.out_cap)))
		abort();
	if (pthread_create(&t, NULL, fn_client_thread, &cl) != 0)
		abort();

	/* What server_connection() does, minus the detached thread. */
	c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->fd = sv[0];
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->read_lock, NULL);
	pthread_mutex_lock(&c_lock);
	c->next = c_list;
	if (c_list)
		c_list->prev = c;
	c_list = c;
	c_count++;
	pthread_mutex_unlock(&c_lock);
	conn_thread(c);         /* closes sv[0] and frees c */

	pthread_join(t, NULL);
	if (cl.received == cl.out_len)
		fn_model(data, size, cl.out, cl.out_len);
	free(cl.out);
	vhd_close(ex[0].vhd);
	vhd_close(ex[1].vhd);
	return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_nbd_input(data, size);
}
#endif
