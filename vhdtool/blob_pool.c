/*
 * blob_pool.c - the connections of vhdtool upload and download working in
 * parallel: N threads, each with its own connection (blob.c), take jobs
 * (an offset, a length, a 4 MiB buffer) from a ring the main thread fills.
 * 2N buffers circulate, so the main thread reads the next ones while N
 * requests are in flight.  The first failure stops the rest: jobs still
 * queued are dropped, and blob_pool_finish reports it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blob.h"

struct worker;
struct blob_pool {
	struct blob *b;
	blob_job_fn fn;
	void *arg;
	struct blob_progress_hook hook;
	int nthreads, nconns;
	pthread_t *threads;
	struct worker *ws;
	struct blob_conn **conns;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct blob_job *q;     /* ring of queued jobs */
	size_t qcap, qhead, qtail;
	char **free_bufs;
	size_t nfree, nbufs;
	int closing, failed, busy;
	struct blob_err err;
	uint64_t err_off, done;
};

struct worker {
	struct blob_pool *p;
	struct blob_conn *c;
};

static void *
pool_worker(void *arg)
{
	struct worker *w = arg;
	struct blob_pool *p = w->p;
	struct blob_err e;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->qhead == p->qtail && !p->closing)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->qhead == p->qtail)
			break;
		struct blob_job j = p->q[p->qtail % p->qcap];
		p->qtail++;
		p->busy++;
		int skip = p->failed;
		pthread_mutex_unlock(&p->lock);
		int r = skip ? 0 : p->fn(w->c, &j, p->arg, &e);
		pthread_mutex_lock(&p->lock);
		p->busy--;
		p->free_bufs[p->nfree++] = j.buf;
		if (r < 0 && !p->failed) {
			p->failed = 1;
			p->err = e;
			p->err_off = j.off;
		}
		if (!skip && r == 0) {
			p->done += j.len;
			if (p->hook.fn)
				p->hook.fn(p->hook.arg, p->done);
		}
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct blob_pool *
blob_pool_start(struct blob *b, int n, blob_job_fn fn, void *arg,
		struct blob_progress_hook hook)
{
	struct blob_pool *p = calloc(1, sizeof(*p));
	struct worker *ws;

	if (!p)
		return NULL;
	p->b = b;
	p->fn = fn;
	p->arg = arg;
	p->hook = hook;
	/* Two buffers per connection: one in flight, one being filled. */
	p->nbufs = (size_t)n * 2;
	p->qcap = p->nbufs;
	p->q = calloc(p->qcap, sizeof(*p->q));
	p->free_bufs = calloc(p->nbufs, sizeof(char *));
	p->threads = calloc((size_t)n, sizeof(pthread_t));
	p->conns = calloc((size_t)n, sizeof(*p->conns));
	ws = calloc((size_t)n, sizeof(*ws));
	if (!p->q || !p->free_bufs || !p->threads || !p->conns || !ws)
		goto fail;
	for (size_t i = 0; i < p->nbufs; i++) {
		p->free_bufs[i] = malloc(BLOB_MAX_PUT);
		if (!p->free_bufs[i])
			goto fail;
		p->nfree++;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (int i = 0; i < n; i++) {
		p->conns[i] = blob_conn_new(b);
		if (!p->conns[i])
			goto fail;
	}
	/* The workers keep their struct worker until they exit. */
	for (int i = 0; i < n; i++) {
		ws[i].p = p;
		ws[i].c = p->conns[i];
		if (pthread_create(&p->threads[i], NULL, pool_worker,
				   &ws[i]) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0)
		goto fail;
	p->ws = ws;
	p->nconns = n;
	return p;
fail:
	for (int i = 0; p->conns && i < n; i++)
		blob_conn_free(p->conns[i]);
	for (size_t i = 0; p->free_bufs && i < p->nfree; i++)
		free(p->free_bufs[i]);
	free(p->q);
	free(p->free_bufs);
	free(p->threads);
	free(p->conns);
	free(ws);
	free(p);
	return NULL;
}

char *
blob_pool_buffer(struct blob_pool *p)
{
	char *b = NULL;

	pthread_mutex_lock(&p->lock);
	while (p->nfree == 0 && !p->failed)
		pthread_cond_wait(&p->cond, &p->lock);
	if (!p->failed)
		b = p->free_bufs[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	return b;
}

int
blob_pool_push(struct blob_pool *p, uint64_t off, size_t len, char *buf)
{
	int r = 0;

	pthread_mutex_lock(&p->lock);
	if (p->failed || p->closing) {
		p->free_bufs[p->nfree++] = buf;
		r = -1;
	} else {
		struct blob_job *j = &p->q[p->qhead % p->qcap];
		j->off = off;
		j->len = len;
		j->buf = buf;
		p->qhead++;
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return r;
}

void
blob_pool_abort(struct blob_pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = 1;
		memset(&p->err, 0, sizeof(p->err));
		snprintf(p->err.msg, sizeof(p->err.msg), "interrupted");
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int
blob_pool_finish(struct blob_pool *p, struct blob_err *e, uint64_t *off)
{
	int n = p->nthreads, rc;

	pthread_mutex_lock(&p->lock);
	p->closing = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < n; i++)
		pthread_join(p->threads[i], NULL);
	rc = p->failed ? -1 : 0;
	if (rc < 0) {
		*e = p->err;
		if (off)
			*off = p->err_off;
	}
	for (int i = 0; i < p->nconns; i++)
		blob_conn_free(p->conns[i]);
	for (size_t i = 0; i < p->nfree; i++)
		free(p->free_bufs[i]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->ws);
	free(p->q);
	free(p->free_bufs);
	free(p->threads);
	free(p->conns);
	free(p);
	return rc;
}
