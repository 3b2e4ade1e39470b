/*
 * blob.h - a small client of the Azure Blob service REST protocol, enough
 * to write and read page blobs (vhdtool upload and download).
 *
 * Requests (x-ms-version BLOB_API_VERSION):
 *   Get Blob Properties  HEAD  blob
 *   Put Blob             PUT   blob             x-ms-blob-type: PageBlob
 *   Put Page             PUT   blob?comp=page   x-ms-page-write: update|clear
 *   Get Page Ranges      GET   blob?comp=pagelist
 *   Get Blob             GET   blob             x-ms-range: bytes=A-B
 * Authorization: the URL's SAS token (query string) as it is, or Shared Key
 * with AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY from the environment.
 * Transient failures (408, 429, 500, 502, 503, 504, timeouts, dropped
 * connections) are retried with exponential backoff, honouring
 * Retry-After.  Messages never show the query string (a SAS signature).
 */
#ifndef VHDTOOL_BLOB_H
#define VHDTOOL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#define BLOB_API_VERSION "2021-08-06"
#define BLOB_PAGE        512u
#define BLOB_MAX_PUT     (4u << 20)   /* Put Page update: at most 4 MiB */

struct blob {
	char *url;          /* scheme://host[:port]/container/blob, no query */
	char *query;        /* the SAS token without '?', or NULL */
	char *account;      /* Shared Key: the account name */
	uint8_t key[128];   /* Shared Key: the decoded account key */
	size_t keylen;
	char *path;         /* the URL's path, as sent */
	const char *ca_file;/* trust these CAs (PEM) for HTTPS, or NULL */
	int retries;        /* per request */
	long timeout;       /* seconds without progress before giving up */
	int reached;        /* some request got an HTTP answer */
	/* Counters (all connections; updated under the caller's lock or
	 * atomically by blob.c). */
	uint64_t sent, requests, retried;
};

struct blob_conn;

/* The outcome of a request that failed: an HTTP status with the service's
 * error code, or a transport error (status 0). */
struct blob_err {
	long status;
	int transport;      /* the CURLcode when status is 0 */
	char code[64];
	char msg[256];
};

struct blob_props {
	int exists;
	uint64_t size;
	char type[32];      /* "PageBlob", "BlockBlob", "AppendBlob" */
};

struct blob_range {
	uint64_t start, end;    /* [start, end) */
};

/* Parses url and finds the credentials: 0, or -1 with a reason in why. */
int blob_init(struct blob *b, const char *url, char *why, size_t n);
void blob_free(struct blob *b);

struct blob_conn *blob_conn_new(struct blob *b);
void blob_conn_free(struct blob_conn *c);

/* Each: 0, or -1 with e filled in. */
int blob_get_props(struct blob_conn *c, struct blob_props *p,
		   struct blob_err *e);
int blob_create_page(struct blob_conn *c, uint64_t size, struct blob_err *e);
int blob_put_pages(struct blob_conn *c, const void *buf, size_t n,
		   uint64_t off, struct blob_err *e);
int blob_clear_pages(struct blob_conn *c, uint64_t off, uint64_t n,
		     struct blob_err *e);
/* The written page ranges, ascending, merged; *out is malloc'ed. */
int blob_page_ranges(struct blob_conn *c, struct blob_range **out,
		     size_t *n, struct blob_err *e);
int blob_read(struct blob_conn *c, void *buf, size_t n, uint64_t off,
	      struct blob_err *e);

/* "vhdtool: URL: what: reason (hint)" for a failed request. */
void blob_report(const struct blob *b, const char *what,
		 const struct blob_err *e);

/* Options shared by upload and download (cmd_upload.c): -c/--connections
 * 'c', --ca-file 'A', --retries 'R', --timeout 'T'.  EXIT_OK, EXIT_USAGE
 * after the message, or -1 when c is none of them. */
int blob_common_opt(const char *usage, char **argv, int c, const char *arg,
		    struct blob *b, int *conns);

/* Global set-up of libcurl (call once, before threads). */
int blob_global_init(void);

/* A pool of worker threads, each with its own connection, running fn on
 * the jobs queued; buffers of BLOB_MAX_PUT bytes circulate between the
 * queue and the caller. */
struct blob_job {
	uint64_t off;
	size_t len;
	char *buf;
};
typedef int (*blob_job_fn)(struct blob_conn *c, struct blob_job *j,
			   void *arg, struct blob_err *e);
struct blob_pool;
struct blob_progress_hook {
	void (*fn)(void *arg, uint64_t done);
	void *arg;
};
struct blob_pool *blob_pool_start(struct blob *b, int n, blob_job_fn fn,
				  void *arg, struct blob_progress_hook hook);
/* A free buffer (waits for one), or NULL after a job failed. */
char *blob_pool_buffer(struct blob_pool *p);
/* Queue a job on a buffer blob_pool_buffer gave: 0, or -1 after a job
 * failed (the buffer is taken back either way). */
int blob_pool_push(struct blob_pool *p, uint64_t off, size_t len, char *buf);
/* Stop taking jobs (no more will come): failing jobs still queued fail. */
void blob_pool_abort(struct blob_pool *p);
/* Waits for the queue, joins the threads: 0, or -1 with the first
 * failure in e (and what it was doing in *off). */
int blob_pool_finish(struct blob_pool *p, struct blob_err *e, uint64_t *off);

#endif
