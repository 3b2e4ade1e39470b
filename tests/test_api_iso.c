/* test_api_iso.c - the public header alone compiles as strict ISO C11
 * (built with -std=c11 -pedantic) and its basic promises hold. */
#include <stdio.h>
#include <string.h>
#include "vhd.h"

int
main(void)
{
	struct vhd_info info;
	struct vhd_open_opts oo = { VHD_OPEN_RDONLY, NULL };
	struct vhd_create_opts co = { VHD_TYPE_DYNAMIC, 0, 0, 0, NULL, NULL };
	struct vhd *v = NULL;
	int bad = 0;

	(void)oo;
	memset(&info, 0, sizeof(info));
	vhd_close(NULL);                            /* NULL is fine */
	if (strcmp(vhd_type_name(VHD_TYPE_FIXED), "fixed") != 0)
		bad++;
	if (vhd_open(&v, "/nonexistent/x.vhd", 0) >= 0 || v != NULL)
		bad++;
	if (strlen(vhd_errmsg()) == 0)
		bad++;
	if (vhd_create_io(NULL, &co) >= 0)
		bad++;
	if (VHD_MAX_DISK_SIZE != 0xFF000000ull * 512)
		bad++;
	if (bad)
		printf("%d failures\n", bad);
	return bad != 0;
}
