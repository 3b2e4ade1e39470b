/*
 * cmd_download.c - vhdtool download: fetch an Azure page blob that holds a
 * fixed VHD into a sparse raw file or a dynamic VHD, reading only its page
 * ranges (Get Page Ranges), on several connections.
 *
 * Nothing is created locally until the blob has answered: its properties,
 * its footer (a fixed VHD footer whose size is the blob's size less 512)
 * and its page list.  On any later failure the partial DST is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blob.h"
#include "tool.h"

#define GRANULE 4096u

static const char usage[] =
	"usage: vhdtool download [-f] [--connections N] [--to raw|vhd]\n"
	"                        [--ca-file FILE] [--retries N] [--timeout SECS]\n"
	"                        [-p] URL DST\n";

static const char help[] =
	"Fetch the Azure page blob at URL, a fixed VHD (as vhdtool upload or Azure\n"
	"writes it), into DST: a dynamic VHD if DST's name ends in .vhd, else a\n"
	"sparse raw image (as convert decides; --to overrides).  Only the blob's\n"
	"page ranges are read, in parallel; the footer is checked first.\n"
	"Credentials as for vhdtool upload: a SAS token in URL, or\n"
	"AZURE_STORAGE_KEY (and AZURE_STORAGE_ACCOUNT) in the environment.\n\n"
	"  -f, --force           replace DST if it exists\n"
	"  -O, --to raw|vhd      DST's format\n"
	"  -c, --connections N   requests in parallel (default 4, at most 64)\n"
	"      --ca-file FILE    trust the CA certificates in FILE (PEM) for HTTPS\n"
	"                        (also taken from CURL_CA_BUNDLE)\n"
	"      --retries N       retries of a failed request (default 8)\n"
	"      --timeout SECS    give up a request after SECS without progress\n"
	"                        (default 60)\n"
	"  -p, --progress[=auto|always]\n"
	"                        show progress (auto: only on a terminal)\n"
	"  -h, --help            show this help\n\n"
	"On failure or interruption the partial DST is removed.\n"
	"Exit status: 0 done, 1 error, 2 usage error, 3 not a VHD blob.\n";

struct down {
	struct blob b;
	const char *path;
	struct vhd *v;          /* VHD output */
	int fd;                 /* raw output */
	int created;
	uint64_t size;          /* disk size */
	uint64_t total;
	struct progress pr;
	char werr[300];         /* a local write error */
};

static int
write_run(void *arg, const char *buf, size_t n, uint64_t off)
{
	struct down *d = arg;

	if (d->v)
		return vhd_pwrite(d->v, buf, n, off);
	ssize_t w = pwrite(d->fd, buf, n, (off_t)off);
	return w == (ssize_t)n ? 0 : w < 0 ? -errno : -EIO;
}

/* Write the non-zero granules of buf, [off, off+n). */
static int
write_data(struct down *d, const char *buf, size_t n, uint64_t off)
{
	return tool_nonzero_runs(buf, n, off, GRANULE, write_run, d);
}

static int
get_job(struct blob_conn *c, struct blob_job *j, void *arg,
	struct blob_err *e)
{
	struct down *d = arg;
	int r;

	if (blob_read(c, j->buf, j->len, j->off, e) < 0)
		return -1;
	if ((r = write_data(d, j->buf, j->len, j->off)) < 0) {
		memset(e, 0, sizeof(*e));
		snprintf(e->msg, sizeof(e->msg), "local write error: %s",
			 strerror(-r));
		snprintf(d->werr, sizeof(d->werr), "%s", strerror(-r));
		return -1;
	}
	return 0;
}

static void
on_progress(void *arg, uint64_t done)
{
	struct down *d = arg;
	progress_update(&d->pr, done, d->total);
}

/* Properties and footer: the disk size, or an exit code. */
static int
check_blob(struct down *d, struct blob_conn *c)
{
	struct blob_props pp;
	struct blob_err e;
	struct vhd_info in = { .struct_size = sizeof in };
	uint8_t foot[512];

	if (blob_get_props(c, &pp, &e) < 0) {
		blob_report(&d->b, "cannot read the blob's properties", &e);
		return EXIT_ERROR;
	}
	if (!pp.exists) {
		tool_err(d->b.url, "no such blob (HTTP 404)");
		return EXIT_ERROR;
	}
	if (strcmp(pp.type, "PageBlob") != 0) {
		tool_err(d->b.url, "is a %s, not a page blob holding a VHD",
			 pp.type[0] ? pp.type : "blob of unknown type");
		return EXIT_DAMAGED;
	}
	if (pp.size < 1024 || pp.size % 512) {
		tool_err(d->b.url, "size %llu cannot be a fixed VHD (a multiple "
			 "of 512 with a 512-byte footer)",
			 (unsigned long long)pp.size);
		return EXIT_DAMAGED;
	}
	if (blob_read(c, foot, sizeof(foot), pp.size - 512, &e) < 0) {
		blob_report(&d->b, "cannot read the footer", &e);
		return EXIT_ERROR;
	}
	if (vhd_footer_parse(foot, &in) < 0) {
		tool_err(d->b.url, "no valid VHD footer in its last 512 bytes "
			 "(an interrupted upload? vhdtool upload --resume "
			 "finishes it)");
		return EXIT_DAMAGED;
	}
	if (in.type != VHD_TYPE_FIXED || in.virtual_size != pp.size - 512) {
		tool_err(d->b.url, "footer describes a %s disk of %llu bytes; "
			 "a blob of %llu bytes holds a fixed disk of %llu",
			 vhd_type_name(in.type),
			 (unsigned long long)in.virtual_size,
			 (unsigned long long)pp.size,
			 (unsigned long long)(pp.size - 512));
		return EXIT_DAMAGED;
	}
	d->size = in.virtual_size;
	return EXIT_OK;
}

static int
create_dst(struct down *d, int to_vhd, int force)
{
	struct stat st;
	int r;

	if (stat(d->path, &st) == 0) {
		if (!force) {
			tool_err(d->path, "already exists (use -f to replace it)");
			return EXIT_ERROR;
		}
		if (unlink(d->path) < 0) {
			tool_err(d->path, "cannot remove: %s", strerror(errno));
			return EXIT_ERROR;
		}
	}
	if (to_vhd) {
		struct vhd_create_opts co;
		memset(&co, 0, sizeof(co));
		co.struct_size = sizeof(co);
		co.type = VHD_TYPE_DYNAMIC;
		co.size = d->size;
		if ((r = vhd_create(d->path, &co)) < 0)
			return tool_lib_err(d->path, r);
		d->created = 1;
		r = vhd_open(&d->v, d->path, VHD_OPEN_RDWR | VHD_OPEN_UNSAFE_NOSYNC);
		if (r < 0)
			return tool_lib_err(d->path, r);
		return EXIT_OK;
	}
	d->fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (d->fd < 0) {
		tool_err(d->path, "cannot create: %s", strerror(errno));
		return EXIT_ERROR;
	}
	d->created = 1;
	if (ftruncate(d->fd, (off_t)d->size) < 0) {
		tool_err(d->path, "cannot set its size: %s", strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

static int
fetch(struct down *d, struct blob_range *rg, size_t nr, int conns)
{
	struct blob_progress_hook hook = { on_progress, d };
	struct blob_pool *p = blob_pool_start(&d->b, conns, get_job, d, hook);
	struct blob_err e;
	uint64_t eoff = 0;
	int rc = EXIT_OK;

	if (!p) {
		tool_err(NULL, "cannot start %d connections", conns);
		return EXIT_ERROR;
	}
	for (size_t i = 0; i < nr && rc == EXIT_OK; i++) {
		uint64_t end = rg[i].end < d->size ? rg[i].end : d->size;
		for (uint64_t o = rg[i].start; o < end && rc == EXIT_OK;) {
			uint64_t k = end - o < BLOB_MAX_PUT ? end - o : BLOB_MAX_PUT;
			char *buf = blob_pool_buffer(p);
			if (!buf || blob_pool_push(p, o, (size_t)k, buf) < 0)
				rc = EXIT_ERROR;
			o += k;
			if (tool_interrupted) {
				tool_err(d->path, "interrupted");
				rc = EXIT_ERROR;
				blob_pool_abort(p);
				blob_pool_finish(p, &e, NULL);
				return rc;
			}
		}
	}
	if (blob_pool_finish(p, &e, &eoff) < 0) {
		if (d->werr[0]) {
			tool_err(d->path, "write error: %s", d->werr);
		} else {
			char what[96];
			snprintf(what, sizeof(what), "cannot read the pages at "
				 "%llu", (unsigned long long)eoff);
			blob_report(&d->b, what, &e);
		}
		return EXIT_ERROR;
	}
	return rc;
}

static int
download(struct down *d, int conns, int to_vhd, int force)
{
	struct blob_conn *c = blob_conn_new(&d->b);
	struct blob_range *rg = NULL;
	struct blob_err e;
	size_t nr = 0;
	int rc, r;

	if (!c) {
		tool_err(NULL, "cannot start libcurl");
		return EXIT_ERROR;
	}
	if ((rc = check_blob(d, c)) != EXIT_OK)
		goto out;
	if (blob_page_ranges(c, &rg, &nr, &e) < 0) {
		blob_report(&d->b, "cannot list the blob's pages", &e);
		rc = EXIT_ERROR;
		goto out;
	}
	for (size_t i = 0; i < nr; i++)
		if (rg[i].start < d->size)
			d->total += (rg[i].end < d->size ? rg[i].end : d->size) -
				    rg[i].start;
	if ((rc = create_dst(d, to_vhd, force)) != EXIT_OK)
		goto out;
	rc = fetch(d, rg, nr, conns);
	progress_end(&d->pr);
	if (rc != EXIT_OK)
		goto out;
	if (d->v) {
		r = vhd_flush(d->v);
		vhd_close(d->v);
		d->v = NULL;
		if (r < 0) {
			rc = tool_lib_err(d->path, r);
			goto out;
		}
	} else {
		r = close(d->fd);
		d->fd = -1;
		if (r < 0) {
			tool_err(d->path, "cannot close: %s", strerror(errno));
			rc = EXIT_ERROR;
			goto out;
		}
	}
	char a[32], b[32];
	printf("%s: %s disk, %s of data fetched\n", d->path,
	       human_size(d->size, a), human_size(d->total, b));
out:
	free(rg);
	blob_conn_free(c);
	return rc;
}

int
cmd_download(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "force",       no_argument,       NULL, 'f' },
		{ "to",          required_argument, NULL, 'O' },
		{ "connections", required_argument, NULL, 'c' },
		{ "ca-file",     required_argument, NULL, 'A' },
		{ "retries",     required_argument, NULL, 'R' },
		{ "timeout",     required_argument, NULL, 'T' },
		{ "progress",    optional_argument, NULL, 'p' },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct down d;
	struct blob opt;
	int c, force = 0, conns = 4, to = -1, pmode = PROGRESS_OFF, rc;

	memset(&d, 0, sizeof(d));
	memset(&opt, 0, sizeof(opt));
	opt.retries = 8;
	opt.timeout = 60;
	d.fd = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fO:c:ph", lopts, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'O':
			if (strcmp(optarg, "raw") == 0)
				to = 0;
			else if (strcmp(optarg, "vhd") == 0)
				to = 1;
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
	if (argc - optind != 2)
		return tool_usage(usage, argv[0], argc - optind < 2 ?
				  "missing URL or DST" : "too many arguments");
	d.path = argv[optind + 1];
	if (to < 0)
		to = tool_name_is_vhd(d.path);
	if (!force && access(d.path, F_OK) == 0) {
		tool_err(d.path, "already exists (use -f to replace it)");
		return EXIT_ERROR;
	}
	rc = blob_open_url(&d.b, argv[optind], &opt, "download");
	if (rc != EXIT_OK)
		return rc;
	tool_catch_signals(0);
	signal(SIGPIPE, SIG_IGN);
	progress_init(&d.pr, pmode, 1);
	rc = download(&d, conns, to, force);
	vhd_close(d.v);
	if (d.fd >= 0)
		close(d.fd);
	if (rc != EXIT_OK && d.created)
		unlink(d.path);
	blob_free(&d.b);
	return rc;
}
