/* azure.c - Azure's upload rules for VHDs (vhdtool check --azure): a fixed
 * VHD whose disk size is a whole number of MiB, so the file is N MiB plus
 * the 512-byte footer, and at least 20 MiB.  Each broken rule is reported
 * with what to do about it. */
#include <stdio.h>
#include <sys/stat.h>
#include "tool.h"

#define MIB (UINT64_C(1) << 20)

static void
add(void (*fn)(void *, const char *), void *arg, int *n, const char *msg)
{
	fn(arg, msg);
	(*n)++;
}

int
azure_check(const char *file, void (*fn)(void *, const char *), void *arg)
{
	struct vhd *v;
	struct vhd_info in = { .struct_size = sizeof in };
	struct stat st;
	char m[600];
	int n = 0, r;

	r = vhd_open(&v, file, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT |
		     VHD_OPEN_NOLOCK);
	if (r < 0) {
		add(fn, arg, &n, "azure: cannot be uploaded: it does not open "
		    "as a VHD");
		return n;
	}
	r = vhd_get_info(v, &in);
	vhd_close(v);
	if (r < 0 || stat(file, &st) < 0) {
		add(fn, arg, &n, "azure: cannot be uploaded: unreadable");
		return n;
	}
	if (in.type != VHD_TYPE_FIXED) {
		snprintf(m, sizeof(m), "azure: a %s disk: Azure takes fixed VHDs "
			 "only (vhdtool convert --azure %s NEW.vhd)",
			 vhd_type_name(in.type), file);
		add(fn, arg, &n, m);
	}
	if (in.virtual_size % MIB) {
		snprintf(m, sizeof(m), "azure: disk size %llu is not a whole "
			 "number of MiB (next: %llu; vhdtool resize %s %lluM)",
			 (unsigned long long)in.virtual_size,
			 (unsigned long long)((in.virtual_size / MIB + 1) * MIB),
			 file, (unsigned long long)(in.virtual_size / MIB + 1));
		add(fn, arg, &n, m);
	}
	if (in.virtual_size < 20 * MIB) {
		snprintf(m, sizeof(m), "azure: disk size %llu is below Azure's "
			 "minimum of 20 MiB (20971520 bytes)",
			 (unsigned long long)in.virtual_size);
		add(fn, arg, &n, m);
	}
	if (in.type == VHD_TYPE_FIXED &&
	    (uint64_t)st.st_size != in.virtual_size + 512) {
		snprintf(m, sizeof(m), "azure: file size %llu: expected the disk "
			 "size plus a 512-byte footer (%llu)",
			 (unsigned long long)st.st_size,
			 (unsigned long long)(in.virtual_size + 512));
		add(fn, arg, &n, m);
	}
	if (in.virtual_size != in.original_size) {
		/* Not an Azure rule, but readers that use it (libvhdi) would
		 * see another size. */
		snprintf(m, sizeof(m), "warning: azure: original size %llu "
			 "differs from the disk size %llu",
			 (unsigned long long)in.original_size,
			 (unsigned long long)in.virtual_size);
		fn(arg, m);
	}
	return n;
}
