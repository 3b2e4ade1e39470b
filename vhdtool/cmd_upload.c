/*
 * cmd_upload.c - vhdtool upload: send a disk to an Azure page blob as the
 * fixed VHD that convert --azure would write, sending only its data.
 *
 * Order of writes: the page blob is created (or found empty, as a managed
 * disk's upload URL gives it) at the Azure size plus 512 bytes; the data
 * follows, in Put Page requests of at most 4 MiB on several connections;
 * the footer goes last, once every page before it is acknowledged, so a
 * blob whose upload was interrupted has no footer and is never taken for
 * a whole disk.  Page blobs read unwritten pages as zeros, so unallocated
 * ranges and all-zero 512-byte pages are not sent.  --resume first asks
 * which pages the blob holds (Get Page Ranges) and sends only the others.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blob.h"
#include "tool.h"

/* Zero detection works on whole pages (512 bytes, the page blob's unit),
 * so the blob's page ranges end up exactly the disk's non-zero sectors. */
#define GRANULE BLOB_PAGE

static const char usage[] =
	"usage: vhdtool upload [-f] [--resume] [--connections N] [--from raw|vhd]\n"
	"                      [--ca-file FILE] [--retries N] [--timeout SECS]\n"
	"                      [--no-sparse] [-p] SRC URL\n"
	"       vhdtool upload --print-size SRC\n";

static const char help[] =
	"Send the disk in SRC (a VHD of any type, a differencing chain flattened,\n"
	"or a raw image) to the Azure page blob at URL as a fixed VHD that Azure\n"
	"accepts: the disk size rounded up to a whole MiB (at least 20 MiB) and\n"
	"the footer convert --azure writes, sent last.  Only data is sent:\n"
	"unallocated ranges and all-zero data are skipped, since a page blob reads\n"
	"unwritten pages as zeros.\n\n"
	"URL is a blob URL with a SAS token (az storage blob generate-sas --full-uri,\n"
	"or a managed disk's upload URL from az disk grant-access), or a blob URL\n"
	"without one: Shared Key authorization then takes the account key from\n"
	"AZURE_STORAGE_KEY and the account name from AZURE_STORAGE_ACCOUNT (or\n"
	"the host name).  Keys are never taken from the command line.\n\n"
	"  -f, --force           replace a blob that exists (an empty page blob of\n"
	"                        the right size, as a managed disk's upload URL\n"
	"                        gives, is used as it is)\n"
	"  -r, --resume          finish an interrupted upload: send only the pages\n"
	"                        the blob does not hold yet\n"
	"  -c, --connections N   requests in parallel (default 4, at most 64)\n"
	"  -F, --from raw|vhd    source format (default: by content)\n"
	"      --ca-file FILE    trust the CA certificates in FILE (PEM) for HTTPS\n"
	"                        (also taken from CURL_CA_BUNDLE)\n"
	"      --retries N       retries of a failed request (default 8)\n"
	"      --timeout SECS    give up a request after SECS without progress\n"
	"                        (default 60)\n"
	"      --no-sparse       send every page, zeros too (for comparison)\n"
	"      --print-size      print the blob size SRC needs in bytes (for az\n"
	"                        disk create --upload-size-bytes) and exit\n"
	"  -p, --progress[=auto|always]\n"
	"                        show progress (auto: only on a terminal)\n"
	"  -h, --help            show this help\n\n"
	"Messages never show the URL's query string (the SAS signature).\n"
	"Exit status: 0 done, 1 error, 2 usage error, 3 damaged source.\n";

struct up {
	struct blob b;
	struct tool_src s;
	struct progress pr;
	uint64_t size;          /* Azure disk size */
	uint64_t total;         /* data bytes to read (for progress) */
	uint64_t scanned;       /* of which read and queued */
	struct blob_range *have;/* --resume: pages already there */
	size_t nhave;
	int sparse;
};

static int
put_job(struct blob_conn *c, struct blob_job *j, void *arg,
	struct blob_err *e)
{
	(void)arg;
	return blob_put_pages(c, j->buf, j->len, j->off, e);
}

/* How many bytes from off on the blob already holds (> 0), or lacks
 * (returned negated via *held = 0), within n. */
static uint64_t
held_run(struct up *u, uint64_t off, uint64_t n, int *held)
{
	for (size_t i = 0; i < u->nhave; i++) {
		const struct blob_range *r = &u->have[i];
		if (r->end <= off)
			continue;
		if (r->start <= off) {
			*held = 1;
			return r->end - off < n ? r->end - off : n;
		}
		*held = 0;
		return r->start - off < n ? r->start - off : n;
	}
	*held = 0;
	return n;
}

/* Queue [off, off+n) of buf (which holds data from base on), without the
 * pages the blob already holds. */
static int
queue_run(struct up *u, struct blob_pool *p, const char *buf, uint64_t base,
	  uint64_t off, uint64_t n)
{
	while (n) {
		int held;
		uint64_t k = held_run(u, off, n, &held);
		if (!held) {
			char *jb = blob_pool_buffer(p);
			if (!jb)
				return -1;
			memcpy(jb, buf + (off - base), (size_t)k);
			if (blob_pool_push(p, off, (size_t)k, jb) < 0)
				return -1;
		}
		off += k;
		n -= k;
	}
	return 0;
}

struct queue_to {
	struct up *u;
	struct blob_pool *p;
};

static int
queue_nonzero(void *arg, const char *buf, size_t n, uint64_t off)
{
	struct queue_to *q = arg;

	return queue_run(q->u, q->p, buf, off, off, n);
}

/* Read [off, off+n) (n <= BLOB_MAX_PUT) and queue its non-zero granules. */
static int
send_chunk(struct up *u, struct blob_pool *p, char *buf, uint64_t off,
	   size_t n, int data)
{
	struct queue_to q = { u, p };
	int r;

	if (data) {
		if ((r = tool_src_read(&u->s, buf, n, off)) < 0)
			return tool_lib_err(u->s.path, r);
	} else {
		memset(buf, 0, n);      /* --no-sparse: a hole, sent anyway */
	}
	if (!u->sparse)
		return queue_run(u, p, buf, off, off, n) < 0 ? EXIT_ERROR : EXIT_OK;
	return tool_nonzero_runs(buf, n, off, GRANULE, queue_nonzero, &q) < 0 ?
	       EXIT_ERROR : EXIT_OK;
}

/* Every extent of the source, in order. */
static int
send_disk(struct up *u, struct blob_pool *p)
{
	char *buf = malloc(BLOB_MAX_PUT);
	uint64_t off = 0, len;
	int rc = EXIT_OK;

	if (!buf) {
		tool_err(NULL, "out of memory");
		return EXIT_ERROR;
	}
	while (off < u->s.size && rc == EXIT_OK) {
		int d = tool_src_extent(&u->s, off, &len);
		if (d < 0) {
			rc = tool_lib_err(u->s.path, d);
			break;
		}
		if (d || !u->sparse) {
			for (uint64_t o = off; o < off + len && rc == EXIT_OK;) {
				/* Chunks end on 4 MiB boundaries. */
				uint64_t end = (o / BLOB_MAX_PUT + 1) * BLOB_MAX_PUT;
				if (end > off + len)
					end = off + len;
				rc = send_chunk(u, p, buf, o, (size_t)(end - o), d);
				/* Progress counts the source read; the requests
				 * trail it by at most two buffers a connection. */
				u->scanned += end - o;
				progress_update(&u->pr, u->scanned, u->total);
				o = end;
				if (tool_interrupted) {
					tool_err(u->b.url, "interrupted (vhdtool "
						 "upload --resume continues)");
					rc = EXIT_ERROR;
				}
			}
		}
		off += len;
	}
	free(buf);
	return rc;
}

/* Bytes of data to send, for progress: the data extents. */
static uint64_t
data_bytes(struct up *u)
{
	uint64_t off = 0, len, n = 0;

	if (!u->sparse)
		return u->size;
	while (off < u->s.size) {
		int d = tool_src_extent(&u->s, off, &len);
		if (d < 0)
			return u->s.size;
		if (d)
			n += len;
		off += len;
	}
	return n;
}

/* Make the blob ready: created, or checked (and cleared with -f). */
static int
prepare_blob(struct up *u, struct blob_conn *c, int force, int resume)
{
	struct blob_props pp;
	struct blob_err e;
	uint64_t want = u->size + 512;

	if (blob_get_props(c, &pp, &e) < 0) {
		blob_report(&u->b, "cannot read the blob's properties", &e);
		return EXIT_ERROR;
	}
	if (pp.exists && strcmp(pp.type, "PageBlob") != 0) {
		if (!force) {
			tool_err(u->b.url, "exists and is a %s, not a page blob "
				 "(use -f to replace it)",
				 pp.type[0] ? pp.type : "blob of unknown type");
			return EXIT_ERROR;
		}
		pp.exists = 0;
	} else if (pp.exists && pp.size != want) {
		if (!force) {
			tool_err(u->b.url, "exists with size %llu; this disk "
				 "needs %llu (%llu and the 512-byte footer); use "
				 "-f to replace it", (unsigned long long)pp.size,
				 (unsigned long long)want,
				 (unsigned long long)u->size);
			return EXIT_ERROR;
		}
		pp.exists = 0;
	}
	if (!pp.exists) {
		if (blob_create_page(c, want, &e) < 0) {
			blob_report(&u->b, "cannot create the page blob", &e);
			return EXIT_ERROR;
		}
		return EXIT_OK;
	}
	/* A page blob of the right size. */
	if (blob_page_ranges(c, &u->have, &u->nhave, &e) < 0) {
		blob_report(&u->b, "cannot list the blob's pages", &e);
		return EXIT_ERROR;
	}
	if (resume || u->nhave == 0)
		return EXIT_OK;
	if (!force) {
		tool_err(u->b.url, "already exists and holds data (use -f to "
			 "replace it, or --resume to finish an interrupted "
			 "upload)");
		return EXIT_ERROR;
	}
	/* Cleared rather than recreated: a managed disk's upload URL allows
	 * page writes only. */
	if (blob_clear_pages(c, 0, want, &e) < 0) {
		blob_report(&u->b, "cannot clear the blob", &e);
		return EXIT_ERROR;
	}
	free(u->have);
	u->have = NULL;
	u->nhave = 0;
	return EXIT_OK;
}

static int
upload(struct up *u, int conns, int force, int resume)
{
	struct blob_conn *c = blob_conn_new(&u->b);
	struct blob_progress_hook hook = { NULL, NULL };
	struct blob_pool *p;
	struct blob_err e;
	uint8_t foot[512];
	uint64_t eoff = 0;
	int rc, r;

	if (!c) {
		tool_err(NULL, "cannot start libcurl");
		return EXIT_ERROR;
	}
	if ((rc = prepare_blob(u, c, force, resume)) != EXIT_OK)
		goto out;
	u->total = data_bytes(u);
	p = blob_pool_start(&u->b, conns, put_job, u, hook);
	if (!p) {
		tool_err(NULL, "cannot start %d connections", conns);
		rc = EXIT_ERROR;
		goto out;
	}
	rc = send_disk(u, p);
	if (rc != EXIT_OK)
		blob_pool_abort(p);
	r = blob_pool_finish(p, &e, &eoff);
	if (rc == EXIT_OK && r == 0)
		progress_update(&u->pr, u->total, u->total);
	progress_end(&u->pr);
	if (rc != EXIT_OK)
		goto out;
	if (r < 0) {
		char what[96];
		snprintf(what, sizeof(what), "cannot write the pages at %llu",
			 (unsigned long long)eoff);
		blob_report(&u->b, what, &e);
		rc = EXIT_ERROR;
		goto out;
	}
	/* Last: the footer, which makes the blob a disk. */
	if ((r = vhd_fixed_footer(u->size, VHD_FOOTER_MAX_GEOMETRY, foot)) < 0) {
		rc = tool_lib_err(u->s.path, r);
		goto out;
	}
	if (blob_put_pages(c, foot, sizeof(foot), u->size, &e) < 0) {
		blob_report(&u->b, "cannot write the footer", &e);
		rc = EXIT_ERROR;
		goto out;
	}
	char a[32], b[32];
	printf("%s: uploaded %s of data to a %s fixed VHD blob (%llu requests, "
	       "%llu retried)\n", u->b.url, human_size(u->b.sent, a),
	       human_size(u->size, b), (unsigned long long)u->b.requests,
	       (unsigned long long)u->b.retried);
out:
	blob_conn_free(c);
	return rc;
}

/* Options taken by both upload and download. */
int
blob_common_opt(const char *use, char **argv, int c, const char *arg,
		struct blob *b, int *conns)
{
	char *end;
	long v;

	switch (c) {
	case 'c':
		v = strtol(arg, &end, 10);
		if (*end || v < 1 || v > 64)
			return tool_usage(use, argv[0], "--connections takes 1 "
					  "to 64, not '%s'", arg);
		*conns = (int)v;
		return EXIT_OK;
	case 'A':
		b->ca_file = arg;
		return EXIT_OK;
	case 'R':
		v = strtol(arg, &end, 10);
		if (*end || v < 0 || v > 100)
			return tool_usage(use, argv[0], "--retries takes 0 to "
					  "100, not '%s'", arg);
		b->retries = (int)v;
		return EXIT_OK;
	case 'T':
		v = strtol(arg, &end, 10);
		if (*end || v < 1 || v > 3600)
			return tool_usage(use, argv[0], "--timeout takes 1 to "
					  "3600 seconds, not '%s'", arg);
		b->timeout = v;
		return EXIT_OK;
	}
	return -1;
}

int
cmd_upload(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "force",       no_argument,       NULL, 'f' },
		{ "resume",      no_argument,       NULL, 'r' },
		{ "connections", required_argument, NULL, 'c' },
		{ "from",        required_argument, NULL, 'F' },
		{ "ca-file",     required_argument, NULL, 'A' },
		{ "retries",     required_argument, NULL, 'R' },
		{ "timeout",     required_argument, NULL, 'T' },
		{ "no-sparse",   no_argument,       NULL, 'N' },
		{ "print-size",  no_argument,       NULL, 'S' },
		{ "progress",    optional_argument, NULL, 'p' },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct up u;
	struct blob opt;
	int c, force = 0, resume = 0, conns = 4, from = -1;
	int pmode = PROGRESS_OFF, rc, retries = 8, print_size = 0;
	long timeout = 60;

	memset(&u, 0, sizeof(u));
	memset(&opt, 0, sizeof(opt));
	opt.retries = retries;
	opt.timeout = timeout;
	u.sparse = 1;
	u.s.e = NULL;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":frc:F:ph", lopts, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'r': resume = 1; break;
		case 'N': u.sparse = 0; break;
		case 'S': print_size = 1; break;
		case 'F':
			if (strcmp(optarg, "raw") == 0)
				from = 0;
			else if (strcmp(optarg, "vhd") == 0)
				from = 1;
			else
				return tool_usage(usage, argv[0], "unknown "
					"format '%s' (use raw or vhd)", optarg);
			break;
		case 'c': case 'A': case 'R': case 'T':
			if ((rc = blob_common_opt(usage, argv, c, optarg, &opt,
						  &conns)) != EXIT_OK)
				return rc;
			break;
		case 'p':
			if ((rc = tool_progress_opt(usage, argv, optarg,
						     &pmode)) != EXIT_OK)
				return rc;
			break;
		case 'h':
			fputs(usage, stdout);
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(usage, argv, c);
		}
	}
	if (print_size) {
		if (argc - optind != 1)
			return tool_usage(usage, argv[0], "--print-size takes "
					  "SRC only");
		rc = tool_src_open(&u.s, argv[optind], from);
		if (rc == EXIT_OK)
			printf("%llu\n", (unsigned long long)
			       (tool_azure_size(u.s.size) + 512));
		tool_src_close(&u.s);
		return rc;
	}
	if (argc - optind != 2)
		return tool_usage(usage, argv[0], argc - optind < 2 ?
				  "missing SRC or URL" : "too many arguments");
	if (force && resume)
		return tool_usage(usage, argv[0], "-f and --resume contradict "
				  "each other");
	rc = blob_open_url(&u.b, argv[optind + 1], &opt, "upload");
	if (rc != EXIT_OK)
		return rc;
	if ((rc = tool_src_open(&u.s, argv[optind], from)) != EXIT_OK)
		goto out;
	if (u.s.size > VHD_MAX_DISK_SIZE) {
		tool_err(u.s.path, "size %llu is larger than the VHD limit of "
			 "2040 GiB", (unsigned long long)u.s.size);
		rc = EXIT_ERROR;
		goto out;
	}
	u.size = tool_azure_size(u.s.size);
	tool_catch_signals(0);
	signal(SIGPIPE, SIG_IGN);
	progress_init(&u.pr, pmode, 1);
	rc = upload(&u, conns, force, resume);
out:
	tool_src_close(&u.s);
	free(u.have);
	blob_free(&u.b);
	return rc;
}
