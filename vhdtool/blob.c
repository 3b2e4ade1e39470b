/*
 * blob.c - Azure Blob service requests for page blobs over libcurl, with
 * Shared Key signing (Nettle: HMAC-SHA256, MD5, base64) and retries.  See
 * blob.h; the connections working in parallel are in blob_pool.c.
 *
 * Shared Key (Microsoft's "Authorize with Shared Key", version 2009-09-19
 * and later): the signature is base64(HMAC-SHA256(key, string-to-sign)),
 * where string-to-sign is
 *   VERB \n Content-Encoding \n Content-Language \n Content-Length \n
 *   Content-MD5 \n Content-Type \n Date \n If-Modified-Since \n If-Match \n
 *   If-None-Match \n If-Unmodified-Since \n Range \n
 *   canonicalized x-ms-* headers (lower-case, sorted, "name:value\n")
 *   "/" account path, then "\nparam:value" per query parameter, sorted.
 * Content-Length is empty when zero (versions 2015-02-21 and later).  We
 * send x-ms-date rather than Date and x-ms-range rather than Range, so
 * those lines stay empty.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include "blob.h"
#include "tool.h"

struct blob_conn {
	struct blob *b;
	CURL *h;
	char errbuf[CURL_ERROR_SIZE];
};

/* What one request gathered. */
struct resp {
	long status;
	char code[64];
	char type[32];
	uint64_t clen;
	int have_clen;
	double retry_after;
	char *body;             /* errors and page lists */
	size_t len, cap;
	char *out;              /* Get Blob: the caller's buffer */
	size_t outlen, outgot;
};

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

int
blob_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* ---- URL and credentials ---- */

static int
set_why(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return -1;
}

int
blob_init(struct blob *b, const char *url, char *why, size_t n)
{
	const char *p, *host, *q;
	size_t hl;

	memset(b, 0, sizeof(*b));
	b->retries = 8;
	b->timeout = 60;
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return set_why(why, n, "not a blob URL (expected https://ACCOUNT"
			       ".blob.core.windows.net/CONTAINER/BLOB?SAS)");
	hl = strcspn(host, "/?#");
	p = host + hl;
	if (hl == 0)
		return set_why(why, n, "not a blob URL: no host");
	q = strchr(p, '?');
	size_t pl = q ? (size_t)(q - p) : strcspn(p, "#");
	/* A path with a container and a blob name: "/c/b" at least. */
	const char *slash = pl > 1 ? memchr(p + 1, '/', pl - 1) : NULL;
	if (*p != '/' || !slash || slash + 1 >= p + pl)
		return set_why(why, n, "not a blob URL: the path must name a "
			       "container and a blob (/CONTAINER/BLOB)");
	b->url = strndup(url, (size_t)(p - url) + pl);
	b->path = strndup(p, pl);
	if (q && q[1]) {
		b->query = strndup(q + 1, strcspn(q + 1, "#"));
	}
	if (!b->url || !b->path || (q && q[1] && !b->query))
		return set_why(why, n, "out of memory");
	if (b->query && (strstr(b->query, "sig=") == b->query ||
			 strstr(b->query, "&sig=")))
		return 0;       /* a SAS: nothing else needed */
	/* Shared Key from the environment, never the command line. */
	const char *key = getenv("AZURE_STORAGE_KEY");
	const char *acct = getenv("AZURE_STORAGE_ACCOUNT");
	if (!key || !*key)
		return set_why(why, n, "no credentials: the URL has no SAS token "
			       "and AZURE_STORAGE_KEY is not set");
	if (acct && *acct) {
		b->account = strdup(acct);
	} else {
		/* ACCOUNT.blob.core.windows.net */
		size_t al = strcspn(host, ".:/?");
		if (al == 0 || host[al] != '.' || isdigit((unsigned char)host[0]))
			return set_why(why, n, "no account name: set "
				       "AZURE_STORAGE_ACCOUNT");
		b->account = strndup(host, al);
	}
	struct base64_decode_ctx dc;
	size_t kl = sizeof(b->key), sl = strlen(key);
	base64_decode_init(&dc);
	if (sl > 4 * sizeof(b->key) / 3 ||
	    !base64_decode_update(&dc, &kl, b->key, sl, key) ||
	    !base64_decode_final(&dc) || kl == 0)
		return set_why(why, n, "AZURE_STORAGE_KEY is not a base64 "
			       "account key");
	b->keylen = kl;
	return 0;
}

void
blob_free(struct blob *b)
{
	free(b->url);
	free(b->query);
	free(b->account);
	free(b->path);
	memset(b->key, 0, sizeof(b->key));
	memset(b, 0, sizeof(*b));
}

struct blob_conn *
blob_conn_new(struct blob *b)
{
	struct blob_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->b = b;
	c->h = curl_easy_init();
	if (!c->h) {
		free(c);
		return NULL;
	}
	return c;
}

void
blob_conn_free(struct blob_conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	free(c);
}

/* ---- one request ---- */

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct resp *r = arg;
	size_t n = size * nmemb;
	char line[256];
	char *v;

	if (n >= sizeof(line))
		return n;
	memcpy(line, data, n);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue or a retry): start over. */
		r->status = 0;
		sscanf(line, "HTTP/%*s %ld", &r->status);
		r->code[0] = r->type[0] = '\0';
		r->have_clen = 0;
		r->retry_after = 0;
		return n;
	}
	v = strchr(line, ':');
	if (!v)
		return n;
	*v++ = '\0';
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(line, "x-ms-error-code") == 0)
		snprintf(r->code, sizeof(r->code), "%s", v);
	else if (strcasecmp(line, "x-ms-blob-type") == 0)
		snprintf(r->type, sizeof(r->type), "%s", v);
	else if (strcasecmp(line, "content-length") == 0) {
		r->clen = strtoull(v, NULL, 10);
		r->have_clen = 1;
	} else if (strcasecmp(line, "retry-after") == 0)
		r->retry_after = atof(v);
	return n;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct resp *r = arg;
	size_t n = size * nmemb;

	if (r->out && r->status / 100 == 2) {
		if (n > r->outlen - r->outgot)
			return 0;       /* more than asked for: fail */
		memcpy(r->out + r->outgot, data, n);
		r->outgot += n;
		return n;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		if (cap > (256u << 20))
			return 0;
		char *nb = realloc(r->body, cap);
		if (!nb)
			return 0;
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static void
b64(const uint8_t *in, size_t n, char *out)
{
	base64_encode_raw(out, n, in);
	out[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A query parameter: name and value, the value unencoded. */
struct param {
	const char *name, *value;
};

/* The Shared Key "Authorization:" header line into hdr (see the top of
 * this file for the string to sign); all: the x-ms-* headers, sorted. */
static int
sign(const struct blob *b, const char *method, size_t blen, const char *md5,
     const char **all, size_t na, const struct param *qp, size_t nq,
     char *hdr, size_t hn)
{
	struct hmac_sha256_ctx hc;
	uint8_t mac[SHA256_DIGEST_SIZE];
	char sig[BASE64_ENCODE_RAW_LENGTH(SHA256_DIGEST_SIZE) + 1];
	char *sts = NULL;
	size_t cap;
	FILE *f = open_memstream(&sts, &cap);

	if (!f)
		return -1;
	fprintf(f, "%s\n\n\n", method);
	if (blen)
		fprintf(f, "%zu", blen);
	fprintf(f, "\n%s\n\n\n\n\n\n\n\n", md5 ? md5 : "");
	for (size_t i = 0; i < na; i++)
		fprintf(f, "%s\n", all[i]);
	fprintf(f, "/%s%s", b->account, b->path);
	/* Parameters sorted by name (callers give them sorted). */
	for (size_t i = 0; i < nq; i++)
		fprintf(f, "\n%s:%s", qp[i].name, qp[i].value);
	if (fclose(f) != 0 || !sts) {
		free(sts);
		return -1;
	}
	hmac_sha256_set_key(&hc, b->keylen, b->key);
	hmac_sha256_update(&hc, strlen(sts), (const uint8_t *)sts);
	hmac_sha256_digest(&hc, sizeof(mac), mac);
	b64(mac, sizeof(mac), sig);
	snprintf(hdr, hn, "Authorization: SharedKey %s:%s", b->account, sig);
	free(sts);
	return 0;
}

/*
 * One attempt: method on the blob with the given query parameters and
 * x-ms-* headers ("name:value", lower-case names), an optional body.
 * Returns the curl code; r holds the answer.
 */
static CURLcode
attempt(struct blob_conn *c, const char *method, const struct param *qp,
	size_t nq, const char **xh, size_t nx, const void *body, size_t blen,
	const char *md5, struct resp *r)
{
	struct blob *b = c->b;
	struct curl_slist *hl = NULL;
	char date[64], hdr[512], *url = NULL;
	const char *all[16];
	size_t na = 0, cap;
	FILE *f;
	CURLcode cc;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "x-ms-date:%a, %d %b %Y %H:%M:%S GMT", &tm);
	all[na++] = date;
	all[na++] = "x-ms-version:" BLOB_API_VERSION;
	for (size_t i = 0; i < nx && na < 16; i++)
		all[na++] = xh[i];
	qsort(all, na, sizeof(all[0]), cmp_str);

	/* The URL: path plus our parameters plus the SAS token. */
	f = open_memstream(&url, &cap);
	if (!f)
		return CURLE_OUT_OF_MEMORY;
	fputs(b->url, f);
	for (size_t i = 0; i < nq; i++) {
		char *e = curl_easy_escape(c->h, qp[i].value, 0);
		fprintf(f, "%c%s=%s", i ? '&' : '?', qp[i].name, e ? e : "");
		curl_free(e);
	}
	if (b->query)
		fprintf(f, "%c%s", nq ? '&' : '?', b->query);
	fclose(f);

	for (size_t i = 0; i < na; i++)
		hl = curl_slist_append(hl, all[i]);
	if (b->keylen) {
		if (sign(b, method, blen, md5, all, na, qp, nq, hdr,
			 sizeof(hdr)) < 0) {
			free(url);
			curl_slist_free_all(hl);
			return CURLE_OUT_OF_MEMORY;
		}
		hl = curl_slist_append(hl, hdr);
	}
	if (md5) {
		snprintf(hdr, sizeof(hdr), "Content-MD5: %s", md5);
		hl = curl_slist_append(hl, hdr);
	}
	/* No Content-Type of curl's choosing (it would be signed), no
	 * 100-continue round trip. */
	hl = curl_slist_append(hl, "Content-Type:");
	hl = curl_slist_append(hl, "Expect:");

	CURL *h = c->h;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, b->timeout);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (b->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, b->ca_file);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)blen);
	}
	c->errbuf[0] = '\0';
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	free(url);
	return cc;
}

static int
retryable_status(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 ||
	       s == 504;
}

static int
retryable_curl(CURLcode cc, int reached)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		/* Network loss in the middle, not a wrong host. */
		return reached;
	default:
		return 0;
	}
}

static void
pause_for(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A request with retries.  want: the success status (200, 201, 206...);
 * ok404: a 404 is an answer, not an error. */
static int
request(struct blob_conn *c, const char *method, const struct param *qp,
	size_t nq, const char **xh, size_t nx, const void *body, size_t blen,
	const char *md5, struct resp *r, struct blob_err *e)
{
	struct blob *b = c->b;
	unsigned seed = (unsigned)(uintptr_t)c ^ (unsigned)time(NULL);

	for (int n = 0;; n++) {
		char *out = r->out;
		size_t outlen = r->outlen;
		free(r->body);
		memset(r, 0, sizeof(*r));
		r->out = out;
		r->outlen = outlen;
		CURLcode cc = attempt(c, method, qp, nq, xh, nx, body, blen,
				      md5, r);
		pthread_mutex_lock(&count_lock);
		b->requests++;
		b->sent += blen;
		if (n)
			b->retried++;
		if (cc == CURLE_OK || r->status)
			b->reached = 1;
		pthread_mutex_unlock(&count_lock);
		int again;
		if (cc == CURLE_OK && r->status / 100 == 2)
			return 0;
		if (cc == CURLE_OK)
			again = retryable_status(r->status);
		else
			again = retryable_curl(cc, b->reached);
		if (!again || n >= b->retries) {
			memset(e, 0, sizeof(*e));
			e->status = cc == CURLE_OK ? r->status : 0;
			e->transport = (int)cc;
			snprintf(e->code, sizeof(e->code), "%s", r->code);
			if (cc != CURLE_OK)
				snprintf(e->msg, sizeof(e->msg), "%s",
					 c->errbuf[0] ? c->errbuf :
					 curl_easy_strerror(cc));
			if (n && again)
				snprintf(e->msg + strlen(e->msg),
					 sizeof(e->msg) - strlen(e->msg),
					 "%sgave up after %d retries",
					 e->msg[0] ? "; " : "", n);
			return -1;
		}
		/* Backoff: Retry-After when given, else 0.25 s doubling up to
		 * 30 s, with jitter so connections do not retry in step. */
		double d = r->retry_after > 0 ? r->retry_after :
			   0.25 * (double)(1u << (n < 7 ? n : 7));
		if (d > 30)
			d = 30;
		d *= 1.0 + (double)(rand_r(&seed) % 250) / 1000.0;
		pause_for(d);
	}
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* ---- operations ---- */

int
blob_get_props(struct blob_conn *c, struct blob_props *p, struct blob_err *e)
{
	struct resp r = { 0 };
	int rc = request(c, "HEAD", NULL, 0, NULL, 0, NULL, 0, NULL, &r, e);

	memset(p, 0, sizeof(*p));
	resp_free(&r);
	if (rc < 0) {
		/* HEAD has no body: the code comes in x-ms-error-code, which
		 * a SAS-authorised 404 may leave out. */
		if (e->status == 404 && (!e->code[0] ||
					 strcmp(e->code, "BlobNotFound") == 0))
			return 0;
		return -1;
	}
	p->exists = 1;
	p->size = r.clen;
	snprintf(p->type, sizeof(p->type), "%s", r.type);
	return 0;
}

int
blob_create_page(struct blob_conn *c, uint64_t size, struct blob_err *e)
{
	char len[80];
	const char *xh[2];
	struct resp r = { 0 };
	int rc;

	snprintf(len, sizeof(len), "x-ms-blob-content-length:%llu",
		 (unsigned long long)size);
	xh[0] = len;
	xh[1] = "x-ms-blob-type:PageBlob";
	rc = request(c, "PUT", NULL, 0, xh, 2, NULL, 0, NULL, &r, e);
	resp_free(&r);
	return rc;
}

int
blob_put_pages(struct blob_conn *c, const void *buf, size_t n, uint64_t off,
	       struct blob_err *e)
{
	static const struct param qp[] = { { "comp", "page" } };
	char range[80], md5s[32];
	const char *xh[2];
	struct md5_ctx mc;
	uint8_t d[MD5_DIGEST_SIZE];
	struct resp r = { 0 };
	int rc;

	md5_init(&mc);
	md5_update(&mc, n, buf);
	md5_digest(&mc, sizeof(d), d);
	b64(d, sizeof(d), md5s);
	snprintf(range, sizeof(range), "x-ms-range:bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + n - 1));
	xh[0] = "x-ms-page-write:update";
	xh[1] = range;
	rc = request(c, "PUT", qp, 1, xh, 2, buf, n, md5s, &r, e);
	resp_free(&r);
	return rc;
}

int
blob_clear_pages(struct blob_conn *c, uint64_t off, uint64_t n,
		 struct blob_err *e)
{
	static const struct param qp[] = { { "comp", "page" } };
	char range[80];
	const char *xh[2];
	struct resp r = { 0 };
	int rc;

	snprintf(range, sizeof(range), "x-ms-range:bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + n - 1));
	xh[0] = "x-ms-page-write:clear";
	xh[1] = range;
	rc = request(c, "PUT", qp, 1, xh, 2, NULL, 0, NULL, &r, e);
	resp_free(&r);
	return rc;
}

/* The text of the next <tag>...</tag> after *p, advancing *p; NULL. */
static const char *
xml_next(const char **p, const char *tag, char *val, size_t vn)
{
	char open[64], close[64];
	const char *a, *z;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(*p, open);
	if (!a)
		return NULL;
	a += strlen(open);
	z = strstr(a, close);
	if (!z)
		return NULL;
	snprintf(val, vn, "%.*s", (int)(z - a), a);
	*p = z + strlen(close);
	return val;
}

static int
add_range(struct blob_range **v, size_t *n, size_t *cap, uint64_t s,
	  uint64_t end)
{
	if (*n && (*v)[*n - 1].end >= s) {
		if (end > (*v)[*n - 1].end)
			(*v)[*n - 1].end = end;
		return 0;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct blob_range *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	(*v)[*n].start = s;
	(*v)[*n].end = end;
	(*n)++;
	return 0;
}

int
blob_page_ranges(struct blob_conn *c, struct blob_range **out, size_t *n,
		 struct blob_err *e)
{
	struct blob_range *v = NULL;
	size_t cap = 0;
	char marker[1024] = "";

	*n = 0;
	do {
		/* Sorted by name: comp before marker. */
		struct param qp[2] = { { "comp", "pagelist" },
				       { "marker", marker } };
		struct resp r = { 0 };
		if (request(c, "GET", qp, marker[0] ? 2 : 1, NULL, 0, NULL, 0,
			    NULL, &r, e) < 0) {
			resp_free(&r);
			free(v);
			return -1;
		}
		const char *p = r.body ? r.body : "";
		char val[64];
		marker[0] = '\0';
		/* <PageList><PageRange><Start>S</Start><End>E</End></PageRange>
		 * ... <NextMarker>M</NextMarker></PageList>; ClearRange only
		 * comes with a snapshot diff, which we do not ask for. */
		for (;;) {
			const char *pr = strstr(p, "<PageRange>");
			if (!pr)
				break;
			p = pr;
			char sv[64];
			if (!xml_next(&p, "Start", sv, sizeof(sv)) ||
			    !xml_next(&p, "End", val, sizeof(val)))
				break;
			uint64_t s = strtoull(sv, NULL, 10);
			uint64_t en = strtoull(val, NULL, 10) + 1;
			if (add_range(&v, n, &cap, s, en) < 0) {
				resp_free(&r);
				free(v);
				snprintf(e->msg, sizeof(e->msg), "out of memory");
				return -1;
			}
		}
		p = r.body ? r.body : "";
		xml_next(&p, "NextMarker", marker, sizeof(marker));
		resp_free(&r);
	} while (marker[0]);
	*out = v;
	return 0;
}

int
blob_read(struct blob_conn *c, void *buf, size_t n, uint64_t off,
	  struct blob_err *e)
{
	char range[80];
	const char *xh[1];
	struct resp r = { 0 };
	int rc;

	snprintf(range, sizeof(range), "x-ms-range:bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + n - 1));
	xh[0] = range;
	r.out = buf;
	r.outlen = n;
	rc = request(c, "GET", NULL, 0, xh, 1, NULL, 0, NULL, &r, e);
	if (rc == 0 && r.outgot != n) {
		memset(e, 0, sizeof(*e));
		snprintf(e->msg, sizeof(e->msg), "short read at %llu: %zu of "
			 "%zu bytes", (unsigned long long)off, r.outgot, n);
		rc = -1;
	}
	resp_free(&r);
	return rc;
}

void
blob_report(const struct blob *b, const char *what, const struct blob_err *e)
{
	const char *hint = "";

	if (e->status == 403)
		hint = b->keylen ? " (check AZURE_STORAGE_KEY and "
			"AZURE_STORAGE_ACCOUNT)" : " (check the SAS token: "
			"its permissions and expiry)";
	else if (e->status == 404 && strcmp(e->code, "ContainerNotFound") == 0)
		hint = " (the container does not exist: create it first)";
	else if (e->transport == CURLE_PEER_FAILED_VERIFICATION)
		hint = " (to trust the server's CA: --ca-file FILE or "
			"CURL_CA_BUNDLE)";
	else if (e->status == 0 && !b->reached)
		hint = " (is the host name right and reachable?)";
	if (e->status == 404 && strcmp(e->code, "ContainerNotFound") == 0)
		tool_err(b->url, "%s: container not found (HTTP 404)%s", what,
			 hint);
	else if (e->status == 403)
		tool_err(b->url, "%s: access denied (HTTP 403%s%s)%s", what,
			 e->code[0] ? " " : "", e->code, hint);
	else if (e->status)
		tool_err(b->url, "%s: HTTP %ld%s%s%s%s", what, e->status,
			 e->code[0] ? " " : "", e->code, e->msg[0] ? ": " : "",
			 e->msg);
	else
		tool_err(b->url, "%s: %s%s", what, e->msg, hint);
}
