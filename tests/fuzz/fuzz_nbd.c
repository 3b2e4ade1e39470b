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

#define FN_MAX_INPUT (1u * 1024 * 1024)
#define FN_DISK      (1024u * 1024 + 3 * 512)   /* not a whole block */

struct fn_client {
	int fd;
	const uint8_t *data;
	size_t size;
	uint64_t received;
};

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
			if (n > 0)
				cl->received += (uint64_t)n;
		}
	}
	close(cl->fd);
	return NULL;
}

static struct vhd *
fn_image(enum vhd_type type)
{
	struct vhd_create_opts o;
	struct vhd_open_opts oo = { VHD_OPEN_RDWR, NULL };
	struct vhd_io *io;
	struct vhd *v;
	uint8_t pat[4096];

	memset(&o, 0, sizeof o);
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
