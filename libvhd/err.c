/* err.c - the thread's last error message (see vhd_errmsg in vhd.h). */
#include <stdarg.h>
#include <stdio.h>
#include "vhd.h"

static _Thread_local char errbuf[1024];

const char *
vhd_errmsg(void)
{
	return errbuf[0] ? errbuf : "no error";
}
