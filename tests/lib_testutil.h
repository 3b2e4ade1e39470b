/* lib_testutil.h - helpers shared by the library's unit tests. */
#ifndef LIB_TESTUTIL_H
#define LIB_TESTUTIL_H
#include <stddef.h>
#include <stdint.h>
#include "largefile.h"
#include "vhd.h"
#include "vhd_test.h"

/* A vhd_check report function: each problem that is not a warning is
 * printed and counted in *(int *)arg. */
void tu_count_problem(void *arg, const char *msg);
/* A new image in a memory backend (caller closes). */
struct vhd_io *tu_mem_image(enum vhd_type type, uint64_t size, uint32_t bs);
/* Opens a copy of the memory backend's bytes (so the original stays). */
int tu_open_copy(struct vhd **out, struct vhd_io *io, unsigned flags);
/* A fresh private directory (malloc'd path). */
char *tu_tmpdir(void);
void tu_rmrf(const char *dir);
/* Pseudo-random bytes, reproducible from the seed. */
void tu_fill(uint8_t *p, size_t n, uint32_t *seed);
uint32_t tu_rand(uint32_t *seed);

/* Big-endian fields of raw image bytes, decoded by the tests themselves
 * (not by the library whose output they judge). */
uint32_t tu_be32(const uint8_t *p);
uint64_t tu_be64(const uint8_t *p);
void tu_put_be32(uint8_t *p, uint32_t v);
/* The whole of a file (malloc'd, its size in *n), and a file written with
 * exactly n bytes; both abort the test on any failure. */
uint8_t *tu_slurp(const char *path, size_t *n);
void tu_spill(const char *path, const uint8_t *p, size_t n);

struct tu_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};
void tu_sha256_init(struct tu_sha256 *s);
void tu_sha256_update(struct tu_sha256 *s, const void *p, size_t n);
void tu_sha256_hex(struct tu_sha256 *s, char out[65]);
#endif
