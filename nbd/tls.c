/*
 * tls.c - TLS for vhdnbd with GnuTLS (what qemu-nbd, nbdkit and libnbd
 * use): --tls=off|on|require, X.509 certificates from a directory in the
 * layout qemu and nbdkit use, or pre-shared keys from a psktool file.
 *
 * The protocol side (NBD_OPT_STARTTLS, FORCEDTLS) is in server.c; this
 * file gives it a transport: a handshake bounded in time, then recv and
 * send through the session, never blocking unless asked to (server.c
 * queues what the socket does not take, and waits with epoll).  GnuTLS lets one thread receive while another
 * sends on a session, but not two senders or two receivers (gnutls manual,
 * "Thread safety"), and vhdnbd answers requests from several threads: so
 * each session has its own send lock and receive lock, whatever locking
 * the caller does.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "server.h"
#include "tls.h"

#define PROG "vhdnbd"
/* Largest plaintext of one TLS record (RFC 8446 5.1): small pieces of a
 * reply are gathered up to this, so a header and its payload travel in
 * one record rather than a record each. */
#define RECORD_MAX 16384u
/* Key exchanges added for PSK: only those with forward secrecy, as qemu
 * adds (plain PSK would let a stolen key decrypt recorded sessions). */
#define PSK_PRIORITY "+ECDHE-PSK:+DHE-PSK"

struct tls_session {
	gnutls_session_t s;
	int fd;
	pthread_mutex_t send_lock, recv_lock;
	int linger;             /* pull may wait (under recv_lock) */
	int held;               /* a record waits in GnuTLS (under send_lock) */
	uint8_t stage[RECORD_MAX];      /* under send_lock */
};

static struct {
	enum tls_mode mode;
	const char *cert_dir;   /* ca-cert.pem, server-cert.pem, server-key.pem */
	const char *psk_file;   /* psktool's "username:hexkey" lines */
	int verify_peer;        /* demand a client certificate the CA signed */
	int verbose;
} opt;
static gnutls_certificate_credentials_t x509;
static gnutls_psk_server_credentials_t psk;
static struct server_tls hooks;

static void
logv(const char *fmt, const char *arg)
{
	if (opt.verbose)
		fprintf(stderr, fmt, arg);
}

int
tls_option(int id, const char *arg, const char **msg)
{
	switch (id - TLS_OPT_BASE) {
	case 0:
		if (strcmp(arg, "off") == 0)
			opt.mode = TLS_OFF;
		else if (strcmp(arg, "on") == 0)
			opt.mode = TLS_ON;
		else if (strcmp(arg, "require") == 0)
			opt.mode = TLS_REQUIRE;
		else
			return *msg = "--tls takes off, on or require", -1;
		return 0;
	case 1:
		opt.cert_dir = arg;
		return 0;
	case 2:
		opt.psk_file = arg;
		return 0;
	case 3:
		opt.verify_peer = 1;
		return 0;
	default:
		return 1;
	}
}

/* ---- credentials ------------------------------------------------------- */

/* dir/name into buf; -1 (with a message) if too long. */
static int
join(char *buf, size_t size, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size) {
		fprintf(stderr, PROG ": '%s': path too long\n", dir);
		return -1;
	}
	return 0;
}

/* 0 if path can be read, else -1 after naming it and the reason. */
static int
readable(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, PROG ": '%s': %s\n", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static int
gnutls_fail(const char *path, const char *what, int r)
{
	fprintf(stderr, PROG ": '%s': %s: %s\n", path, what, gnutls_strerror(r));
	return -1;
}

/* ca-cert.pem (required with --tls-verify-peer, read when present),
 * ca-crl.pem (when present), server-cert.pem and server-key.pem: the
 * names qemu's tls-creds-x509 and nbdkit's --tls-certificates use. */
static int
load_x509(void)
{
	char ca[4096], crl[4096], cert[4096], key[4096];
	int r;

	if (join(ca, sizeof ca, opt.cert_dir, "ca-cert.pem") < 0 ||
	    join(crl, sizeof crl, opt.cert_dir, "ca-crl.pem") < 0 ||
	    join(cert, sizeof cert, opt.cert_dir, "server-cert.pem") < 0 ||
	    join(key, sizeof key, opt.cert_dir, "server-key.pem") < 0)
		return -1;
	if (readable(cert) < 0 || readable(key) < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&x509) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	if (opt.verify_peer || access(ca, F_OK) == 0) {
		if (readable(ca) < 0)
			return -1;
		r = gnutls_certificate_set_x509_trust_file(x509, ca,
							   GNUTLS_X509_FMT_PEM);
		if (r < 0)
			return gnutls_fail(ca, "cannot load the CA certificate", r);
		if (r == 0) {
			fprintf(stderr, PROG ": '%s': no certificate in the file\n",
				ca);
			return -1;
		}
	}
	if (access(crl, F_OK) == 0) {
		r = gnutls_certificate_set_x509_crl_file(x509, crl,
							 GNUTLS_X509_FMT_PEM);
		if (r < 0)
			return gnutls_fail(crl, "cannot load the revocation list", r);
	}
	r = gnutls_certificate_set_x509_key_file(x509, cert, key,
						 GNUTLS_X509_FMT_PEM);
	if (r < 0)
		return gnutls_fail(cert, "cannot load the certificate with "
				   "server-key.pem", r);
	/* For DHE key exchanges; ECDHE and TLS 1.3 need none. */
	gnutls_certificate_set_known_dh_params(x509, GNUTLS_SEC_PARAM_MEDIUM);
	return 0;
}

static int
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]))
			return 0;
	return 1;
}

/* psktool writes "username:hexkey" lines.  GnuTLS reads the file again
 * at each handshake (so keys can change without a restart); it is checked
 * whole here so that a bad file stops the server at start, not each
 * client later. */
static int
check_psk_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned n = 0, keys = 0;
	int ok = 1;

	if (!f) {
		fprintf(stderr, PROG ": '%s': %s\n", path, strerror(errno));
		return -1;
	}
	while (ok && fgets(line, sizeof line, f)) {
		size_t l = strcspn(line, "\r\n");
		char *colon;

		n++;
		if (l == sizeof line - 1) {
			ok = 0;
			break;
		}
		line[l] = '\0';
		if (l == 0)
			continue;
		colon = strchr(line, ':');
		ok = colon && colon > line && strlen(colon + 1) > 0 &&
		     strlen(colon + 1) % 2 == 0 &&
		     is_hex(colon + 1, strlen(colon + 1));
		keys += ok;
	}
	if (ferror(f)) {
		fprintf(stderr, PROG ": '%s': %s\n", path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	if (!ok) {
		fprintf(stderr, PROG ": '%s': line %u is not a psktool "
			"'username:hexkey' line\n", path, n);
		return -1;
	}
	if (keys == 0) {
		fprintf(stderr, PROG ": '%s': no key in the file\n", path);
		return -1;
	}
	return 0;
}

static int
load_psk(void)
{
	int r;

	if (check_psk_file(opt.psk_file) < 0)
		return -1;
	if (gnutls_psk_allocate_server_credentials(&psk) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	r = gnutls_psk_set_server_credentials_file(psk, opt.psk_file);
	if (r < 0)
		return gnutls_fail(opt.psk_file, "cannot use the key file", r);
	gnutls_psk_set_server_known_dh_params(psk, GNUTLS_SEC_PARAM_MEDIUM);
	return 0;
}

static int
usage_error(const char *msg)
{
	fprintf(stderr, PROG ": %s\n", msg);
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	return 2;
}

int
tls_setup(int verbose)
{
	opt.verbose = verbose;
	if (opt.mode == TLS_OFF) {
		/* Credentials without TLS are a mistake, not a wish for
		 * plaintext. */
		if (opt.cert_dir || opt.psk_file || opt.verify_peer)
			return usage_error("--tls-certificates, --tls-psk and "
					   "--tls-verify-peer need --tls=on or "
					   "--tls=require");
		return 0;
	}
	if (!opt.cert_dir && !opt.psk_file)
		return usage_error(opt.mode == TLS_ON ?
			"--tls=on needs --tls-certificates DIR or --tls-psk FILE" :
			"--tls=require needs --tls-certificates DIR or --tls-psk FILE");
	if (opt.cert_dir && opt.psk_file)
		return usage_error("--tls-certificates and --tls-psk cannot be "
				   "used together");
	if (opt.verify_peer && !opt.cert_dir)
		return usage_error("--tls-verify-peer needs --tls-certificates "
				   "(a PSK client is known by its key)");
	if (opt.psk_file ? load_psk() < 0 : load_x509() < 0) {
		tls_cleanup();
		return 1;
	}
	hooks.require = opt.mode == TLS_REQUIRE;
	hooks.accept = tls_accept;
	hooks.recv = tls_recv;
	hooks.send = tls_send;
	hooks.pending = tls_pending;
	hooks.close = tls_close;
	return 0;
}

const struct server_tls *
tls_hooks(void)
{
	return opt.mode == TLS_OFF ? NULL : &hooks;
}

void
tls_cleanup(void)
{
	if (x509)
		gnutls_certificate_free_credentials(x509);
	if (psk)
		gnutls_psk_free_server_credentials(psk);
	x509 = NULL;
	psk = NULL;
}

/* ---- sessions ------------------------------------------------------------ */

static int64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* GnuTLS's transport: the socket stays blocking for server.c (whose
 * lingering recv() relies on SO_RCVTIMEO), so each call says whether it
 * may wait.  Sends never wait. */
static ssize_t
pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
	struct tls_session *t = p;

	return recv(t->fd, buf, n, t->linger ? 0 : MSG_DONTWAIT);
}

static ssize_t
push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct tls_session *t = p;
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)iovcnt };

	return sendmsg(t->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void
session_free(struct tls_session *t)
{
	gnutls_deinit(t->s);
	pthread_mutex_destroy(&t->send_lock);
	pthread_mutex_destroy(&t->recv_lock);
	free(t);
}

static struct tls_session *
session_new(int fd)
{
	struct tls_session *t = calloc(1, sizeof *t);
	const char *bad = NULL;
	int r;

	if (!t)
		return NULL;
	if (gnutls_init(&t->s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL |
			GNUTLS_NONBLOCK) < 0) {
		free(t);
		return NULL;
	}
	t->fd = fd;
	pthread_mutex_init(&t->send_lock, NULL);
	pthread_mutex_init(&t->recv_lock, NULL);
	if (psk) {
		r = gnutls_set_default_priority_append(t->s, PSK_PRIORITY, &bad, 0);
		if (r >= 0)
			r = gnutls_credentials_set(t->s, GNUTLS_CRD_PSK, psk);
	} else {
		r = gnutls_set_default_priority(t->s);
		if (r >= 0)
			r = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, x509);
		if (r >= 0 && opt.verify_peer) {
			/* The handshake itself fails on a missing client
			 * certificate or one the CA did not sign. */
			gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert(t->s, NULL, 0);
		}
	}
	if (r < 0) {
		logv(PROG ": cannot set up a TLS session: %s\n", gnutls_strerror(r));
		session_free(t);
		return NULL;
	}
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_vec_push_function(t->s, push);
	return t;
}

/* Wait until fd is ready for what GnuTLS was doing, for at most ms. */
static int
wait_ready(struct tls_session *t, int64_t ms)
{
	struct pollfd p = { .fd = t->fd };

	p.events = gnutls_record_get_direction(t->s) ? POLLOUT : POLLIN;
	if (ms <= 0)
		return -1;
	return poll(&p, 1, ms > 60000 ? 60000 : (int)ms) > 0 ? 0 : -1;
}

/* The handshake never blocks in GnuTLS; between its steps we wait with
 * poll() up to the deadline, so a client that stalls it (or never reads
 * our messages) is dropped when the negotiation time is up. */
struct tls_session *
tls_accept(int fd, unsigned timeout_ms)
{
	struct tls_session *t = session_new(fd);
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	if (!t)
		return NULL;
	do {
		r = gnutls_handshake(t->s);
		if (r == GNUTLS_E_AGAIN &&
		    wait_ready(t, deadline - now_ms()) < 0)
			break;
	} while (r < 0 && !gnutls_error_is_fatal(r) && now_ms() < deadline);
	if (r < 0) {
		logv(PROG ": TLS handshake failed: %s\n",
		     r == GNUTLS_E_AGAIN ? "timed out" : gnutls_strerror(r));
		session_free(t);
		return NULL;
	}
	if (opt.verbose) {
		char *d = gnutls_session_get_desc(t->s);
		const char *user = psk ? gnutls_psk_server_get_username(t->s) : NULL;
		fprintf(stderr, PROG ": TLS session %s%s%s\n", d ? d : "",
			user ? " for PSK user " : "", user ? user : "");
		gnutls_free(d);
	}
	return t;
}

ssize_t
tls_recv(struct tls_session *t, void *buf, size_t n, int linger)
{
	ssize_t r;

	pthread_mutex_lock(&t->recv_lock);
	t->linger = linger;
	for (;;) {
		r = gnutls_record_recv(t->s, buf, n);
		if (r >= 0)
			break;
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == GNUTLS_E_AGAIN) {
			/* Nothing now, or the socket's receive timeout
			 * expired: as with recv().  A partial record stays
			 * in the session for the next call. */
			errno = EAGAIN;
			r = -1;
			break;
		}
		/* A client that closes the socket without close_notify
		 * has ended the connection all the same. */
		if (r == GNUTLS_E_PREMATURE_TERMINATION) {
			r = 0;
			break;
		}
		if (!gnutls_error_is_fatal((int)r))
			continue;       /* a warning alert, a renegotiation */
		logv(PROG ": TLS receive failed: %s\n", gnutls_strerror((int)r));
		errno = EIO;
		r = -1;
		break;
	}
	t->linger = 0;
	pthread_mutex_unlock(&t->recv_lock);
	return r;
}

/* One record of the caller's bytes, never waiting.  Small pieces are
 * gathered up to RECORD_MAX, so a header and its payload travel in one
 * record rather than a record each.  After GNUTLS_E_AGAIN the record is
 * encrypted and held by GnuTLS (t->held); the caller offers the same bytes
 * again, and the record is flushed with gnutls_record_send(NULL, 0),
 * which then reports the bytes it carried. */
ssize_t
tls_send(struct tls_session *t, const struct iovec *iov, int iovcnt)
{
	const uint8_t *p;
	size_t n = 0;
	ssize_t r;

	pthread_mutex_lock(&t->send_lock);
	if (t->held) {
		p = NULL;
	} else if (iovcnt > 0 && iov[0].iov_len >= RECORD_MAX) {
		p = iov[0].iov_base;
		n = RECORD_MAX;
	} else {
		for (int i = 0; i < iovcnt && n < RECORD_MAX; i++) {
			size_t k = iov[i].iov_len;
			if (k > RECORD_MAX - n)
				k = RECORD_MAX - n;
			memcpy(t->stage + n, iov[i].iov_base, k);
			n += k;
		}
		p = t->stage;
		if (n == 0) {
			pthread_mutex_unlock(&t->send_lock);
			return 0;
		}
	}
	do
		r = gnutls_record_send(t->s, p, n);
	while (r == GNUTLS_E_INTERRUPTED);
	if (r == GNUTLS_E_AGAIN) {
		t->held = 1;
		errno = EAGAIN;
		r = -1;
	} else if (r < 0) {
		logv(PROG ": TLS send failed: %s\n", gnutls_strerror((int)r));
		errno = EIO;
		r = -1;
	} else {
		t->held = 0;
	}
	pthread_mutex_unlock(&t->send_lock);
	return r;
}

size_t
tls_pending(struct tls_session *t)
{
	return gnutls_record_check_pending(t->s);
}

void
tls_close(struct tls_session *t)
{
	if (!t)
		return;
	/* proto.md: end the TLS session before closing.  close_notify is
	 * one small record, sent without waiting (push never blocks), or
	 * not at all: a client that does not read holds nothing. */
	if (!t->held)
		gnutls_bye(t->s, GNUTLS_SHUT_WR);
	session_free(t);
}
