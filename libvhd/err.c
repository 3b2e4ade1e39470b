/* err.c - the thread's last error message (see vhd_errmsg in vhd.h) and
 * the problem collector the validators share with check. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local char errbuf[1024];

const char *
vhd_errmsg(void)
{
	return errbuf[0] ? errbuf : "no error";
}

int
vhd_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return -err;
}

void
vhd_err_clear(void)
{
	errbuf[0] = 0;
}

int
vhd_err_is_set(void)
{
	return errbuf[0] != 0;
}

void
vhd_problem(struct vhd_problems *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->count++ == 0)
		memcpy(p->first, msg, sizeof(msg));
	if (p->fn)
		p->fn(p->arg, msg);
}

int
vhd_problems_result(struct vhd_problems *p)
{
	if (p->count == 0)
		return 0;
	if (p->fn)
		return p->count;
	return vhd_err(EBADMSG, "%s", p->first);
}
