/* abi.c - what keeps the ABI stable: the run-time version, the size member
 * of the structs that may grow, and the version of a backend's ops. */
#include <stddef.h>
#include "internal.h"

unsigned
vhd_version(void)
{
	return VHD_VERSION_NUMBER;
}

const char *
vhd_version_string(void)
{
	return VHD_VERSION_STRING;
}

/* The struct_size member comes first in every struct that has one. */
static size_t
size_member(const void *s)
{
	size_t n;

	memcpy(&n, s, sizeof(n));
	return n;
}

int
vhd_struct_in(void *dst, size_t known, size_t min, const void *src,
	      const char *what)
{
	size_t n = size_member(src);

	if (n < min)
		return vhd_err(EINVAL, "struct %s: size member is %zu, "
			       "not sizeof(struct %s) (at least %zu)",
			       what, n, what, min);
	for (size_t i = known; i < n; i++)
		if (((const unsigned char *)src)[i] != 0)
			return vhd_err(EINVAL, "struct %s: members past byte "
				       "%zu are set, which libvhd %s does "
				       "not know", what, known,
				       VHD_VERSION_STRING);
	memset(dst, 0, known);
	memcpy(dst, src, n < known ? n : known);
	return 0;
}

int
vhd_struct_out_ok(const void *dst, size_t min, const char *what)
{
	size_t n = size_member(dst);

	if (n < min)
		return vhd_err(EINVAL, "struct %s: size member is %zu, "
			       "not sizeof(struct %s) (at least %zu)",
			       what, n, what, min);
	return 0;
}

void
vhd_struct_out(void *dst, const void *src, size_t known)
{
	size_t n = size_member(dst);

	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       (n < known ? n : known) - sizeof(size_t));
	if (n > known)
		memset((char *)dst + known, 0, n - known);
}

int
vhd_io_check(const struct vhd_io *io, const char *fn)
{
	const struct vhd_io_ops *o;

	if (!io || !io->ops)
		return vhd_err(EINVAL, "%s: no I/O backend", fn);
	o = io->ops;
	if (o->version != VHD_IO_OPS_VERSION)
		return vhd_err(EINVAL, "%s: '%s': I/O ops version %u is not "
			       "one libvhd %s knows (%u)", fn,
			       io->name ? io->name : "backend", o->version,
			       VHD_VERSION_STRING, VHD_IO_OPS_VERSION);
	if (!o->pread || !o->pwrite || !o->flush || !o->get_size ||
	    !o->truncate || !o->close)
		return vhd_err(EINVAL, "%s: '%s': I/O ops lack a required "
			       "member (only punch may be NULL)", fn,
			       io->name ? io->name : "backend");
	return 0;
}
