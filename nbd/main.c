/*
 * main.c - vhdnbd: serve VHD images over the NBD protocol.
 *
 * Options, exports, listening sockets (TCP on IPv4 and IPv6, a Unix
 * socket, or sockets passed by systemd), the accept loop and a clean
 * shutdown.  The protocol itself is in server.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhd.h"
#include "server.h"
#include "tls.h"

#define PROG "vhdnbd"
#define DEFAULT_PORT "10809"
#define MAX_LISTEN 16

static _Atomic int stop_signal;
static struct ratelimit rl_refused = RATELIMIT_INIT;

/* --allow: the client addresses that may connect over TCP (none given:
 * any).  IPv4 addresses are kept as IPv4-mapped IPv6 ones. */
struct allow {
	uint8_t addr[16];
	unsigned prefix;        /* bits of addr that must match, 0..128 */
};
static struct allow *allows;
static size_t nallows;
static int wake_pipe[2] = { -1, -1 };

/* SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken here
 * synchronously with sigwait(), which then wakes the accept loop through
 * a pipe: no code runs in signal context, and no race between a signal
 * and poll() can lose the stop. */
static void *
signal_thread(void *arg)
{
	const sigset_t *set = arg;
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	stop_signal = sig;
	if (write(wake_pipe[1], "", 1) < 0) {
		/* the pipe is ours and empty: cannot fail in practice */
	}
	return NULL;
}

static void
usage(FILE *fp, int code)
{
	fprintf(fp,
"Usage: " PROG " [OPTIONS] IMAGE...\n"
"Serve VHD images over the NBD protocol (foreground; stop with SIGTERM).\n"
"\n"
"  -p, --port N          TCP port (default 10809)\n"
"  -b, --bind ADDR       listen on ADDR only (default: all IPv4 and IPv6)\n"
"  -u, --unix PATH       listen on a Unix socket (TCP too only with --port/--bind)\n"
"  -r, --read-only       refuse writes\n"
"  -e, --export NAME     export name of a single image (default: its file\n"
"                        name without .vhd); several images are each\n"
"                        exported under their own name, the first also as \"\"\n"
"      --parent PATH     parent of a differencing image (overrides locators)\n"
"      --ignore-checksum accept images with bad footer/header checksums\n"
"      --pid-file FILE   write the process id to FILE once listening\n"
"      --lock-wait SECS  wait up to SECS for an image another program has\n"
"                        locked (default 5; 0 fails at once)\n"
"  -t, --threads N       worker threads shared by all connections (default 16)\n"
"      --allow ADDR[/PREFIX]  accept TCP clients from ADDR (IPv4 or IPv6; a\n"
"                        network with /PREFIX) only; repeatable\n"
"      --description TEXT  export description sent to clients (default: the\n"
"                        image type and file name)\n"
"      --handshake-timeout S  drop clients that have not negotiated within S\n"
"                        seconds (default 10)\n"
"      --max-connections N  connections at once (default 4096)\n"
"      --max-queued SIZE reply data held for slow clients, all together\n"
"                        (default 256M; K, M, G suffixes)\n"
"      --poll-us N       busy-poll a busy connection for up to N microseconds\n"
"                        before sleeping (default 0: never)\n"
TLS_USAGE
"  -v, --verbose         log connections to stderr\n"
"  -h, --help            show this help\n"
"  -V, --version         show the version\n"
"\n"
"Systemd socket activation (LISTEN_FDS) is used when present.\n"
"Please read the vhdnbd(1) manual page for full usage.\n");
	exit(code);
}

static void
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, PROG ": %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	exit(2);
}

/* Export name of an image: its file name without a .vhd suffix. */
static char *
name_from_path(const char *path)
{
	const char *b = strrchr(path, '/');
	char *n;
	size_t l;

	b = b ? b + 1 : path;
	n = strdup(b);
	if (!n)
		return NULL;
	l = strlen(n);
	if (l > 4 && strcasecmp(n + l - 4, ".vhd") == 0)
		n[l - 4] = '\0';
	return n;
}

/* The library starts waiting for a lock another program holds. */
static void
lock_waiting(void *arg, const char *msg, unsigned ms)
{
	(void)arg;
	fprintf(stderr, PROG ": %s; waiting up to %g s for it\n", msg,
		ms / 1000.0);
}

/* What clients are told about an export: never a server path (the
 * directories are nobody's business), the file's base name at most. */
static char *
describe(const struct vhd_info *in, const char *path, int ro)
{
	const char *b = strrchr(path, '/');
	char *d;
	size_t n;

	b = b ? b + 1 : path;
	n = strlen(b) + 96;
	d = malloc(n);
	if (d)
		snprintf(d, n, "%s %s %s%s", vhd_type_name(in->type),
			 in->format == VHD_FORMAT_VHDX ? "VHDX" : "VHD", b,
			 ro ? " (read-only)" : "");
	return d;
}

/* ADDR or ADDR/PREFIX, IPv4 or IPv6.  0, or -1 if malformed. */
static int
parse_allow(const char *arg, struct allow *a)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	struct in_addr v4;
	unsigned max;
	long p;

	if (strlen(arg) >= sizeof buf)
		return -1;
	strcpy(buf, arg);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(a->addr, 0, sizeof a->addr);
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		a->addr[10] = a->addr[11] = 0xff;
		memcpy(a->addr + 12, &v4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, buf, a->addr) == 1) {
		max = 128;
	} else {
		return -1;
	}
	p = max;
	if (slash) {
		p = strtol(slash, &end, 10);
		if (*slash == '\0' || *end || p < 0 || p > (long)max)
			return -1;
	}
	a->prefix = (unsigned)p + (max == 32 ? 96 : 0);
	return 0;
}

/* May this TCP client connect?  Unix-socket clients always may. */
static int
allowed(const struct sockaddr_storage *ss, char *text, size_t tl)
{
	uint8_t x[16] = { 0 };

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		x[10] = x[11] = 0xff;
		memcpy(x + 12, &s4->sin_addr, 4);
		inet_ntop(AF_INET, &s4->sin_addr, text, (socklen_t)tl);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		memcpy(x, &s6->sin6_addr, 16);
		inet_ntop(AF_INET6, &s6->sin6_addr, text, (socklen_t)tl);
	} else {
		return 1;
	}
	if (nallows == 0)
		return 1;
	for (size_t i = 0; i < nallows; i++) {
		unsigned bits = allows[i].prefix, full = bits / 8, rest = bits % 8;
		if (memcmp(x, allows[i].addr, full) != 0)
			continue;
		if (rest && ((x[full] ^ allows[i].addr[full]) &
			     (uint8_t)(0xff00u >> rest)))
			continue;
		return 1;
	}
	return 0;
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		const uint8_t *a = s6->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 1;
		return memcmp(a, mapped, 12) == 0 && a[12] == 127;
	}
	return 1;       /* a Unix socket: only local users reach it */
}

/* Warn at start about what anyone on the network could do: write the
 * images.  One place to add further conditions (TLS, --allow). */
static void
warn_exposure(const struct server_config *cfg, const int *lfds, int nl)
{
	int rw = 0;

	for (size_t i = 0; i < cfg->nexports; i++)
		rw |= !cfg->exports[i].readonly;
	if (!rw || (cfg->tls && cfg->tls->require))
		return;
	for (int i = 0; i < nl; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		char host[INET6_ADDRSTRLEN] = "?";

		if (getsockname(lfds[i], (struct sockaddr *)&ss, &sl) < 0 ||
		    is_loopback(&ss))
			continue;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
				  host, sizeof host);
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
				  host, sizeof host);
		fprintf(stderr, PROG ": warning: serving read-write without TLS on "
			"%s, a non-loopback address: any client that can reach it "
			"can read and write the image%s (see SECURITY in vhdnbd(1))\n",
			host, cfg->nexports > 1 ? "s" : "");
		return;
	}
}

/* Room for many connections (two descriptors each, for a slow client). */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
open_export(struct export *e, const char *path, const char *name,
	    const char *parent, unsigned flags)
{
	struct vhd_open_opts o = { .struct_size = sizeof o,
				   .flags = flags, .parent_path = parent };
	struct vhd_info in = { .struct_size = sizeof in };
	int r;

	r = vhd_open_opts(&e->vhd, path, &o);
	if (r < 0) {
		/* "vhdnbd: IMAGE: problem", as vhdtool and vhdfuse say it. */
		const char *m = vhd_errmsg_about(path);

		fprintf(stderr, PROG ": %s: %s\n", path, *m ? m : strerror(-r));
		return r == -EBADMSG ? 3 : 1;
	}
	r = vhd_get_info(e->vhd, &in);
	if (r < 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, vhd_errmsg());
		return 1;
	}
	e->path = path;
	e->size = in.virtual_size;
	e->readonly = !(flags & VHD_OPEN_RDWR);
	e->min_block = in.logical_sector_size >= 4096 ? 4096 : 1;
	e->name = name ? strdup(name) : name_from_path(path);
	e->description = describe(&in, path, e->readonly);
	if (!e->name || !e->description) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	if (strlen(e->name) == 0 || strlen(e->name) > 4096) {
		fprintf(stderr, PROG ": %s: bad export name\n", path);
		return 2;
	}
	return 0;
}

static void
close_exports(struct server_config *cfg)
{
	for (size_t i = 0; i < cfg->nexports; i++) {
		vhd_close(cfg->exports[i].vhd);
		free(cfg->exports[i].name);
		free(cfg->exports[i].description);
	}
	free(cfg->exports);
	cfg->exports = NULL;
}

static void
set_cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);
	if (f >= 0)
		fcntl(fd, F_SETFD, f | FD_CLOEXEC);
}

static void
set_nonblock(int fd, int on)
{
	int f = fcntl(fd, F_GETFL);
	if (f >= 0)
		fcntl(fd, F_SETFL, on ? f | O_NONBLOCK : f & ~O_NONBLOCK);
}

/* The socket file we made, so that exit removes it only if it is still
 * ours (another server may have taken the path over meanwhile). */
static dev_t unix_dev;
static ino_t unix_ino;

static int
listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof a.sun_path) {
		fprintf(stderr, PROG ": %s: socket path too long\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	/* Replace a stale socket, never a live one, never any other kind
	 * of file: a server that answers keeps its path. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = t >= 0 && connect(t, (struct sockaddr *)&a, sizeof a) == 0;
		if (t >= 0)
			close(t);
		if (live) {
			fprintf(stderr, PROG ": cannot listen on '%s': %s "
				"(a server answers there)\n", path, strerror(EADDRINUSE));
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(fd, SOMAXCONN) < 0 || lstat(path, &st) < 0) {
		fprintf(stderr, PROG ": cannot listen on '%s': %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	unix_dev = st.st_dev;
	unix_ino = st.st_ino;
	return fd;
}

static void
unlink_unix(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == unix_dev && st.st_ino == unix_ino)
		unlink(path);
}

/* Every address of bind:port (all of IPv4 and IPv6 when bind is NULL). */
static int
listen_tcp(const char *bind_addr, const char *port, int *fds, int max)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_ADDRCONFIG };
	struct addrinfo *res, *ai;
	int n = 0, r, err = 0;

	r = getaddrinfo(bind_addr, port, &hints, &res);
	if (r == EAI_NONAME || r == EAI_ADDRFAMILY) {
		hints.ai_flags &= ~AI_ADDRCONFIG;   /* e.g. only loopback up */
		r = getaddrinfo(bind_addr, port, &hints, &res);
	}
	if (r != 0) {
		fprintf(stderr, PROG ": %s: %s\n", bind_addr ? bind_addr : "*",
			gai_strerror(r));
		return -1;
	}
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		int one = 1;
		int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		/* Separate IPv4 and IPv6 sockets, so both can bind. */
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, SOMAXCONN) < 0) {
			err = errno;
			close(fd);
			continue;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	if (n == 0) {
		fprintf(stderr, PROG ": cannot listen on %s port %s: %s\n",
			bind_addr ? bind_addr : "*", port, strerror(err));
		return -1;
	}
	return n;
}

/* systemd socket activation: LISTEN_PID is us, fds from 3 on. */
static int
listen_systemd(int *fds, int max)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	long n;

	if (!pid || !nfds || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	n = strtol(nfds, NULL, 10);
	if (n < 1 || n > max) {
		fprintf(stderr, PROG ": LISTEN_FDS=%s not supported\n", nfds);
		return -1;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; i < n; i++) {
		int type;
		socklen_t l = sizeof type;
		fds[i] = 3 + i;
		if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &l) < 0 ||
		    type != SOCK_STREAM) {
			fprintf(stderr, PROG ": LISTEN_FDS: fd %d is not a stream "
				"socket\n", fds[i]);
			return -1;
		}
	}
	return (int)n;
}

static int
write_pid_file(const char *path)
{
	char tmp[4096];
	FILE *f;

	/* Written whole under another name, then renamed, so a reader
	 * never sees a partial file. */
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
accept_one(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int one = 1, tcp;
	int fd = accept(lfd, (struct sockaddr *)&ss, &sl);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			usleep(100000);
		return;
	}
	set_cloexec(fd);
	tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
	if (tcp) {
		char host[INET6_ADDRSTRLEN] = "?";
		if (!allowed(&ss, host, sizeof host)) {
			/* Before any byte of the handshake. */
			log_limited(&rl_refused, "refused a connection from %s "
				    "(not in --allow)", host);
			close(fd);
			return;
		}
	}
	/* Blocking: server.c asks for non-blocking calls (MSG_DONTWAIT)
	 * where it wants them, and bounds the others with SO_RCVTIMEO. */
	set_nonblock(fd, 0);
	if (tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	server_connection(fd, tcp);
}

int
main(int argc, char **argv)
{
	enum { OPT_PARENT = 256, OPT_IGNORE_CHECKSUM, OPT_PID_FILE, OPT_POLL_US,
	       OPT_LOCK_WAIT, OPT_ALLOW, OPT_DESCRIPTION, OPT_HANDSHAKE_TIMEOUT,
	       OPT_MAX_CONNECTIONS, OPT_MAX_QUEUED };
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "unix", required_argument, NULL, 'u' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "export", required_argument, NULL, 'e' },
		{ "export-name", required_argument, NULL, 'e' },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "ignore-checksum", no_argument, NULL, OPT_IGNORE_CHECKSUM },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "lock-wait", required_argument, NULL, OPT_LOCK_WAIT },
		{ "threads", required_argument, NULL, 't' },
		{ "poll-us", required_argument, NULL, OPT_POLL_US },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "description", required_argument, NULL, OPT_DESCRIPTION },
		{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
		{ "max-queued", required_argument, NULL, OPT_MAX_QUEUED },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		TLS_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *port = NULL, *bind_addr = NULL, *unix_path = NULL;
	const char *export_name = NULL, *parent = NULL, *pid_file = NULL;
	const char *description = NULL;
	unsigned handshake_s = 10, max_connections = 4096;
	uint64_t max_queued = 256u << 20;
	unsigned flags = VHD_OPEN_RDWR, threads = 16;
	long poll_us = 0;
	struct server_config cfg = { 0 };
	int lfds[MAX_LISTEN], nl = 0, c, code = 0;
	static sigset_t stopset;
	pthread_t sigthread;
	struct pollfd pfd[MAX_LISTEN + 1];

	vhd_set_lock_wait(5000, lock_waiting, NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:b:u:re:t:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 0 || v > 65535)
				usage_error("bad port", optarg);
			port = optarg;
			break;
		}
		case 'b': bind_addr = optarg; break;
		case 'u': unix_path = optarg; break;
		case 'r': flags &= ~VHD_OPEN_RDWR; break;
		case 'e': export_name = optarg; break;
		case OPT_PARENT: parent = optarg; break;
		case OPT_IGNORE_CHECKSUM: flags |= VHD_OPEN_IGNORE_CHECKSUM; break;
		case OPT_PID_FILE: pid_file = optarg; break;
		case OPT_LOCK_WAIT: {
			char *end;
			double d = strtod(optarg, &end);
			if (end == optarg || *end || !(d >= 0 && d <= 3600))
				usage_error("--lock-wait: expected seconds from "
					    "0 to 3600", optarg);
			vhd_set_lock_wait((unsigned)(d * 1000 + 0.5),
					  lock_waiting, NULL);
			break;
		}
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 1 || v > 1024)
				usage_error("bad thread count", optarg);
			threads = (unsigned)v;
			break;
		}
		case OPT_POLL_US: {
			char *end;
			poll_us = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || poll_us < 0 || poll_us > 10000)
				usage_error("bad polling time", optarg);
			break;
		}
		case OPT_ALLOW: {
			struct allow *n = realloc(allows, (nallows + 1) * sizeof *n);
			if (!n) {
				fprintf(stderr, PROG ": out of memory\n");
				return 1;
			}
			allows = n;
			if (parse_allow(optarg, &allows[nallows]) < 0)
				usage_error("bad --allow address", optarg);
			nallows++;
			break;
		}
		case OPT_DESCRIPTION:
			if (strlen(optarg) > 4096)
				usage_error("description too long", NULL);
			description = optarg;
			break;
		case OPT_HANDSHAKE_TIMEOUT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 1 || v > 3600)
				usage_error("bad handshake timeout", optarg);
			handshake_s = (unsigned)v;
			break;
		}
		case OPT_MAX_CONNECTIONS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 1 || v > 1000000)
				usage_error("bad connection count", optarg);
			max_connections = (unsigned)v;
			break;
		}
		case OPT_MAX_QUEUED: {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			unsigned sh = 0;
			if (*end == 'K' || *end == 'k') sh = 10, end++;
			else if (*end == 'M' || *end == 'm') sh = 20, end++;
			else if (*end == 'G' || *end == 'g') sh = 30, end++;
			if (*optarg < '0' || *optarg > '9' || *end || v == 0 ||
			    v > (UINT64_C(1) << 40) >> sh)
				usage_error("bad size", optarg);
			max_queued = (uint64_t)v << sh;
			break;
		}
		case 'v': cfg.verbose = 1; break;
		case 'h': usage(stdout, 0); break;
		case 'V':
			printf(PROG " %s\n", VHD_VERSION_STRING);
			return 0;
		case ':':
			usage_error("option needs a value", argv[optind - 1]);
			break;
		default: {
			const char *msg = NULL;
			int r = tls_option(c, optarg, &msg);

			if (r < 0)
				usage_error(msg, optarg);
			if (r == 0)
				break;
			if (optopt && argv[optind - 1][1] != '-') {
				char o[3] = { '-', (char)optopt, '\0' };
				usage_error("unknown option", o);
			}
			usage_error("unknown option", argv[optind - 1]);
			break;
		}
		}
	}
	if (optind >= argc)
		usage_error("no image given", NULL);
	cfg.nexports = (size_t)(argc - optind);
	if (cfg.nexports > 1 && export_name)
		usage_error("--export needs a single image", NULL);
	if (cfg.nexports > 1 && parent)
		usage_error("--parent needs a single image", NULL);
	if (export_name && (strlen(export_name) == 0 || strlen(export_name) > 4096))
		usage_error("bad export name", export_name);
	if (cfg.nexports > 1 && description)
		usage_error("--description needs a single image", NULL);
	/* Before the images are opened: a bad key file touches nothing. */
	if ((code = tls_setup(cfg.verbose)) != 0)
		return code;
	cfg.tls = tls_hooks();

	/* A client that vanishes must not kill the server. */
	signal(SIGPIPE, SIG_IGN);

	cfg.exports = calloc(cfg.nexports, sizeof *cfg.exports);
	if (!cfg.exports) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < cfg.nexports; i++) {
		struct export *e = &cfg.exports[i];
		int r = open_export(e, argv[optind + i], export_name, parent, flags);
		if (r)
			return close_exports(&cfg), r;
		if (description) {
			free(e->description);
			e->description = strdup(description);
			if (!e->description) {
				fprintf(stderr, PROG ": out of memory\n");
				return close_exports(&cfg), 1;
			}
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg.exports[j].name, e->name) == 0) {
				fprintf(stderr, PROG ": '%s' and '%s' have the same "
					"export name '%s'\n", cfg.exports[j].path,
					e->path, e->name);
				return close_exports(&cfg), 2;
			}
	}

	nl = listen_systemd(lfds, MAX_LISTEN);
	if (nl < 0)
		return close_exports(&cfg), 1;
	if (nl > 0 && (unix_path || port || bind_addr)) {
		close_exports(&cfg);
		usage_error("--unix, --port and --bind cannot be used with "
			    "socket activation", NULL);
	}
	if (nl == 0 && unix_path) {
		int fd = listen_unix(unix_path);
		if (fd < 0)
			return close_exports(&cfg), 1;
		lfds[nl++] = fd;
	}
	if (nl == 0 || (unix_path && (port || bind_addr))) {
		int n = listen_tcp(bind_addr, port ? port : DEFAULT_PORT,
				   lfds + nl, MAX_LISTEN - nl);
		if (n < 0)
			return close_exports(&cfg), 1;
		nl += n;
	}
	for (int i = 0; i < nl; i++) {
		set_cloexec(lfds[i]);
		set_nonblock(lfds[i], 1);
	}

	if (pipe(wake_pipe) < 0) {
		fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
		return close_exports(&cfg), 1;
	}
	set_cloexec(wake_pipe[0]);
	set_cloexec(wake_pipe[1]);
	/* Blocked before any thread starts, so every thread inherits it. */
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stopset, NULL);
	if (pthread_create(&sigthread, NULL, signal_thread, &stopset) != 0) {
		fprintf(stderr, PROG ": cannot start the signal thread\n");
		return close_exports(&cfg), 1;
	}
	pthread_detach(sigthread);

	warn_exposure(&cfg, lfds, nl);
	raise_fd_limit();
	cfg.threads = threads;
	cfg.handshake_s = handshake_s;
	cfg.max_connections = max_connections;
	cfg.max_queued = max_queued;
	cfg.poll_ns = (uint64_t)poll_us * 1000;
	if (server_init(&cfg) < 0) {
		fprintf(stderr, PROG ": cannot start the server\n");
		return close_exports(&cfg), 1;
	}
	if (pid_file && write_pid_file(pid_file) < 0) {
		fprintf(stderr, PROG ": %s: cannot write: %s\n", pid_file,
			strerror(errno));
		code = 1;
		stop_signal = SIGTERM;
		/* the accept loop below is skipped */
	}

	pfd[0].fd = wake_pipe[0];
	pfd[0].events = POLLIN;
	for (int i = 0; i < nl; i++) {
		pfd[i + 1].fd = lfds[i];
		pfd[i + 1].events = POLLIN;
	}
	while (!stop_signal) {
		if (poll(pfd, (nfds_t)nl + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			code = 1;
			break;
		}
		for (int i = 0; i < nl; i++)
			if (pfd[i + 1].revents & POLLIN)
				accept_one(lfds[i]);
	}

	if (cfg.verbose)
		fprintf(stderr, PROG ": shutting down\n");
	for (int i = 0; i < nl; i++)
		close(lfds[i]);
	if (unix_path)
		unlink_unix(unix_path);
	server_shutdown();
	log_limited_flush(&rl_refused, "refused connections");
	for (size_t i = 0; i < cfg.nexports; i++) {
		struct export *e = &cfg.exports[i];
		if (!e->readonly && vhd_flush(e->vhd) < 0) {
			fprintf(stderr, PROG ": %s: flush failed: %s\n", e->path,
				vhd_errmsg());
			code = 1;
		}
	}
	close_exports(&cfg);
	tls_cleanup();
	if (pid_file)
		unlink(pid_file);
	return code;
}
