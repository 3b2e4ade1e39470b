/* progress.c - the progress line of convert, merge, compact and resize:
 * percent, bytes done of total, and rate, redrawn in place on a terminal
 * at most ten times a second.  Not a terminal: nothing, unless asked with
 * --progress=always (then a plain line every few seconds). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tool.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
progress_mode(const char *arg)
{
	if (!arg || strcmp(arg, "auto") == 0)
		return PROGRESS_AUTO;
	if (strcmp(arg, "always") == 0)
		return PROGRESS_ALWAYS;
	if (strcmp(arg, "never") == 0)
		return PROGRESS_OFF;
	return -1;
}

void
progress_init(struct progress *p, int mode, int bytes)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO);
	p->on = mode == PROGRESS_ALWAYS || (mode == PROGRESS_AUTO && p->tty);
	p->bytes = bytes;
	p->start = p->last = now();
}

static void
draw(struct progress *p, uint64_t done, uint64_t total, double t)
{
	char a[32], b[32], c[32];
	double el = t - p->start;
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;

	if (p->bytes) {
		double rate = el > 0 ? (double)done / el : 0;
		fprintf(stderr, "%s%5.1f%%  %s / %s  %s/s%s", p->tty ? "\r" : "",
			pct, human_size(done, a), human_size(total, b),
			human_size((uint64_t)rate, c), p->tty ? "   " : "\n");
	} else {
		/* compact and resize count blocks (scanned or moved). */
		fprintf(stderr, "%s%5.1f%%  %llu / %llu blocks%s", p->tty ? "\r" : "",
			pct, (unsigned long long)done,
			(unsigned long long)total, p->tty ? "   " : "\n");
	}
	fflush(stderr);
	p->drawn = 1;
}

void
progress_update(struct progress *p, uint64_t done, uint64_t total)
{
	double t;

	if (!p->on)
		return;
	/* The end is shown once, however often the caller reports it. */
	if (p->drawn && p->done >= p->total && done >= total)
		return;
	t = now();
	if (done < total && t - p->last < (p->tty ? 0.1 : 5.0))
		return;
	p->last = t;
	p->done = done;
	p->total = total;
	draw(p, done, total, t);
}

void
progress_cb(void *arg, uint64_t done, uint64_t total)
{
	progress_update(arg, done, total);
}

void
progress_end(struct progress *p)
{
	if (!p->on || !p->drawn)
		return;
	if (p->tty)
		fputc('\n', stderr);
	fflush(stderr);
}
