/* crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of VHDX headers, region tables and log entries (MS-VHDX 2.2.2:
 * "CRC-32C ... computed over the entire structure with the Checksum field
 * set to zero").  Bytewise table; a VHDX open checksums a few hundred KiB. */
#include "vhdx.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void
make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
}

uint32_t
vhdx_crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
	pthread_once(&table_once, make_table);
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t
vhdx_crc32c_skip(const uint8_t *p, size_t n, size_t skip)
{
	static const uint8_t zero4[4];
	uint32_t c = vhdx_crc32c_update(0, p, skip);

	c = vhdx_crc32c_update(c, zero4, 4);
	return vhdx_crc32c_update(c, p + skip + 4, n - skip - 4);
}
