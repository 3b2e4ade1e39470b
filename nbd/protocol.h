/*
 * protocol.h - NBD wire constants and byte-order helpers for vhdnbd.
 *
 * Values from the NBD protocol document (NetworkBlockDevice/nbd
 * doc/proto.md), fixed newstyle negotiation only.  Every integer on the
 * wire is big-endian.  Error numbers are the protocol's own values, not
 * the host's errno (they coincide on Linux but the wire must not depend
 * on that).
 */
#ifndef VHDNBD_PROTOCOL_H
#define VHDNBD_PROTOCOL_H

#include <stdint.h>

/* Handshake. */
#define NBD_MAGIC               UINT64_C(0x4e42444d41474943)  /* "NBDMAGIC" */
#define NBD_IHAVEOPT            UINT64_C(0x49484156454F5054)  /* "IHAVEOPT" */
#define NBD_REP_MAGIC           UINT64_C(0x0003e889045565a9)

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Options. */
#define NBD_OPT_EXPORT_NAME       1u
#define NBD_OPT_ABORT             2u
#define NBD_OPT_LIST              3u
#define NBD_OPT_STARTTLS          5u
#define NBD_OPT_INFO              6u
#define NBD_OPT_GO                7u
#define NBD_OPT_STRUCTURED_REPLY  8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT  10u

/* Option replies; errors have bit 31 set. */
#define NBD_REP_ACK               1u
#define NBD_REP_SERVER            2u
#define NBD_REP_INFO              3u
#define NBD_REP_META_CONTEXT      4u
#define NBD_REP_ERR(n)            (UINT32_C(0x80000000) | (n))
#define NBD_REP_ERR_UNSUP         NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY        NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID       NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM      NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD      NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN       NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN      NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG       NBD_REP_ERR(9)

/* NBD_REP_INFO payload types (NBD_OPT_INFO / NBD_OPT_GO). */
#define NBD_INFO_EXPORT           0u
#define NBD_INFO_NAME             1u
#define NBD_INFO_DESCRIPTION      2u
#define NBD_INFO_BLOCK_SIZE       3u

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_CACHE        (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* Requests and replies. */
#define NBD_REQUEST_MAGIC          UINT32_C(0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC     UINT32_C(0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C(0x668e33ef)
#define NBD_REQUEST_SIZE           28   /* magic 4, flags 2, type 2, cookie 8,
					   offset 8, length 4 */
#define NBD_SIMPLE_REPLY_SIZE      16
#define NBD_STRUCTURED_REPLY_SIZE  20

/* Commands. */
#define NBD_CMD_READ              0u
#define NBD_CMD_WRITE             1u
#define NBD_CMD_DISC              2u
#define NBD_CMD_FLUSH             3u
#define NBD_CMD_TRIM              4u
#define NBD_CMD_CACHE             5u
#define NBD_CMD_WRITE_ZEROES      6u
#define NBD_CMD_BLOCK_STATUS      7u

/* Command flags. */
#define NBD_CMD_FLAG_FUA          (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE      (1u << 1)
#define NBD_CMD_FLAG_DF           (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE      (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO    (1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE        (1u << 0)
#define NBD_REPLY_TYPE_NONE        0u
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_OFFSET_HOLE 2u
#define NBD_REPLY_TYPE_BLOCK_STATUS 5u
#define NBD_REPLY_TYPE_ERROR       ((1u << 15) + 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) + 2)

/* base:allocation status bits. */
#define NBD_STATE_HOLE            (1u << 0)
#define NBD_STATE_ZERO            (1u << 1)

/* Error values on the wire. */
#define NBD_EPERM                 1u
#define NBD_EIO                   5u
#define NBD_ENOMEM                12u
#define NBD_EINVAL                22u
#define NBD_ENOSPC                28u
#define NBD_EOVERFLOW             75u
#define NBD_ENOTSUP               95u
#define NBD_ESHUTDOWN             108u

/* Strings (export names, messages) MUST be no longer than 4096 bytes. */
#define NBD_MAX_STRING            4096u

static inline uint16_t
nbd_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
nbd_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

static inline void
nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
nbd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}

#endif
