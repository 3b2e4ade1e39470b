/* vhdx_write.c - writing VHDX (MS-VHDX v1.0): the read-write open's
 * replay write-back, data writes, zeroing and unmapping, the clean close.
 *
 * Every metadata change (BAT entries, sector bitmap bits) goes through the
 * log as Hyper-V does, in whole 4 KiB sectors of the file (SPEC.md, "VHDX
 * writes"):
 *   0. the first change of a session: new FileWriteGuid, DataWriteGuid
 *      and LogGuid in the non-current header with sequence + 1, flush;
 *   1. payload data (new blocks at the end of the file, extended first),
 *      flush;
 *   2. one log entry holding every changed metadata sector (its Tail is
 *      itself: everything before it is applied), flush;
 *   3. the sectors written at their final place, flush.
 * A crash before 2 is durable leaves the old metadata (new blocks leaked
 * past the end); after it, the next open replays the entry, which writes
 * the same bytes again.  The clean close writes a header with no LogGuid
 * (sequence + 1) after a flush.  Writes after a failure in step 3 are
 * refused: the log then holds the truth, and a reopen replays it. */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"

#define SEC VHDX_LOG_SECTOR
#define TX_MAX 48u              /* data sectors of one log entry */
#define TX_BLOCK 20u            /* at most one block's part of a write */

static const uint8_t zero16[16];

static struct vhdx *
X(struct vhd *v)
{
	return v->fmt;
}

static int
sync_file(struct vhd *v, struct vhdx *x)
{
	int r;

	if (!(v->flags & VHD_OPEN_UNSAFE_NOSYNC) && (r = vhd_file_sync(v)) < 0)
		return r;
	x->flushed_end = x->file_end;
	return 0;
}

void
vhdx_encode_header(uint8_t h[4096], const struct vhdx *x, uint64_t seq)
{
	memset(h, 0, 4096);
	memcpy(h, "head", 4);
	put_le64(h + 8, seq);
	memcpy(h + 16, x->file_guid, 16);
	memcpy(h + 32, x->data_guid, 16);
	memcpy(h + 48, x->log_guid, 16);
	put_le16(h + 64, 0);
	put_le16(h + 66, 1);
	put_le32(h + 68, x->log_len);
	put_le64(h + 72, x->log_off);
	put_le32(h + 4, vhdx_crc32c_skip(h, 4096, 4));
}

int
vhdx_write_header(struct vhd *v, struct vhdx *x, int slot, uint64_t seq)
{
	uint8_t h[4096];

	vhdx_encode_header(h, x, seq);
	return vhd_file_write(v, h, sizeof(h), slot == 1 ? VHDX_HEADER1_OFF :
			      VHDX_HEADER2_OFF);
}

/* The non-current header takes x's fields with the next sequence number,
 * then becomes current (a torn write leaves the other one current). */
static int
update_header(struct vhd *v, struct vhdx *x)
{
	int slot = x->header == 1 ? 2 : 1, r;

	if ((r = vhdx_write_header(v, x, slot, x->seq + 1)) < 0 ||
	    (r = sync_file(v, x)) < 0)
		return r;
	x->seq++;
	x->header = slot;
	return 0;
}

int
vhdx_new_guid(uint8_t g[16])
{
	int r = vhd_random_bytes(g, 16);

	if (r < 0)
		return vhd_err(-r, "no random bytes for a GUID: %s",
			       strerror(-r));
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40);    /* version 4 */
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
	return 0;
}

/* Step 0: before the session's first change: new FileWriteGuid and
 * LogGuid; with data (a change the disk's reader sees) a new
 * DataWriteGuid too, once per session (MS-VHDX 2.2.2: DataWriteGuid
 * changes before the first change of the disk's content, so a metadata-
 * only change such as a new parent locator keeps the children of this
 * image valid).  A merge chooses the target's next DataWriteGuid ahead
 * (next_data_guid). */
static int
go_live(struct vhd *v, struct vhdx *x, int data)
{
	int r;

	if (x->broken)
		return vhd_err(EIO, "'%s': an earlier metadata update failed "
			       "midway; reopen the image (its log then "
			       "completes the update)", v->path);
	if (x->live && (x->data_live || !data))
		return 0;
	if (x->log_len < VHDX_MIB)
		return vhd_err(ENOTSUP, "'%s': header %d: the image has no log "
			       "(LogLength %u) to write its metadata through",
			       v->path, x->header, x->log_len);
	if (!x->live && ((r = vhdx_new_guid(x->file_guid)) < 0 ||
			 (r = vhdx_new_guid(x->log_guid)) < 0))
		return r;
	if (data && x->has_next_data_guid)
		memcpy(x->data_guid, x->next_data_guid, 16);
	else if (data && (r = vhdx_new_guid(x->data_guid)) < 0)
		return r;
	if ((r = update_header(v, x)) < 0)
		return r;
	if (!x->live) {
		x->log_seq = 1;
		x->log_head = 0;
		x->live = 1;
	}
	if (data)
		x->data_live = 1;
	return 0;
}

/* ---- transactions: metadata sectors changed together ---- */

struct undo {
	uint64_t idx, old;
};

struct tx {
	unsigned n;
	uint64_t off[TX_MAX];
	uint8_t *sec[TX_MAX];
	struct undo *undo;
	size_t nundo, cap;
	uint64_t file_end;      /* x->file_end when the tx began */
};

static void
tx_reset(struct tx *t, const struct vhdx *x)
{
	for (unsigned i = 0; i < t->n; i++)
		free(t->sec[i]);
	t->n = 0;
	t->nundo = 0;
	t->file_end = x->file_end;
}

static void
tx_free(struct tx *t)
{
	for (unsigned i = 0; i < t->n; i++)
		free(t->sec[i]);
	free(t->undo);
}

/* Puts the in-memory BAT back as it was before t (nothing reached its
 * final place). */
static void
tx_revert(struct vhdx *x, struct tx *t)
{
	while (t->nundo > 0) {
		t->nundo--;
		x->bat[t->undo[t->nundo].idx] = t->undo[t->nundo].old;
	}
}

/* The 4 KiB sector of the file at off, as t changes it. */
static int
tx_sector(struct vhd *v, struct tx *t, uint64_t off, uint8_t **out)
{
	int r;

	for (unsigned i = 0; i < t->n; i++)
		if (t->off[i] == off) {
			*out = t->sec[i];
			return 0;
		}
	if (t->n == TX_MAX)     /* callers reserve room: not reached */
		return vhd_err(EINVAL, "'%s': metadata update too large",
			       v->path);
	if (!(t->sec[t->n] = malloc(SEC)))
		return vhd_err(ENOMEM, "no memory");
	if ((r = vhdx_file_read(v, t->sec[t->n], SEC, off)) < 0) {
		free(t->sec[t->n]);
		return r;
	}
	t->off[t->n] = off;
	*out = t->sec[t->n++];
	return 0;
}

static int
bat_set(struct vhd *v, struct vhdx *x, struct tx *t, uint64_t idx,
	uint64_t e)
{
	uint64_t off = x->bat_off + idx * 8;
	uint8_t *s;
	int r;

	if (t->nundo == t->cap) {
		size_t c = t->cap ? 2 * t->cap : 16;
		struct undo *u = realloc(t->undo, c * sizeof(*u));
		if (!u)
			return vhd_err(ENOMEM, "no memory");
		t->undo = u;
		t->cap = c;
	}
	if ((r = tx_sector(v, t, off / SEC * SEC, &s)) < 0)
		return r;
	t->undo[t->nundo].idx = idx;
	t->undo[t->nundo++].old = x->bat[idx];
	x->bat[idx] = e;
	put_le64(s + off % SEC, e);
	return 0;
}

/* Steps 1-3 for t's sectors (see the top of the file). */
static int
tx_commit(struct vhd *v, struct vhdx *x, struct tx *t)
{
	uint32_t ds, len;
	uint8_t *e;
	int r;

	if (t->n == 0) {
		tx_reset(t, x);
		return 0;
	}
	ds = vhdx_log_desc_sectors(t->n);
	len = (ds + t->n) * SEC;
	if (!(e = calloc(1, len))) {
		r = vhd_err(ENOMEM, "no memory");
		goto undo;
	}
	if ((r = sync_file(v, x)) < 0)
		goto undo;
	if (x->log_head + (uint64_t)len > x->log_len)
		x->log_head = 0;
	memcpy(e, "loge", 4);
	put_le32(e + 8, len);
	put_le32(e + 12, x->log_head);
	put_le64(e + 16, x->log_seq);
	put_le32(e + 24, t->n);
	memcpy(e + 32, x->log_guid, 16);
	put_le64(e + 48, x->flushed_end);
	put_le64(e + 56, x->file_end);
	for (unsigned i = 0; i < t->n; i++) {
		uint8_t *d = e + 64 + 32 * i, *s = e + (ds + i) * SEC;
		memcpy(d, "desc", 4);
		memcpy(d + 4, t->sec[i] + SEC - 4, 4);
		memcpy(d + 8, t->sec[i], 8);
		put_le64(d + 16, t->off[i]);
		put_le64(d + 24, x->log_seq);
		memcpy(s, "data", 4);
		put_le32(s + 4, (uint32_t)(x->log_seq >> 32));
		memcpy(s + 8, t->sec[i] + 8, SEC - 12);
		put_le32(s + SEC - 4, (uint32_t)x->log_seq);
	}
	put_le32(e + 4, vhdx_crc32c_skip(e, len, 4));
	/* A failed entry write is overwritten by the next entry (same place,
	 * same sequence number); if it did land whole, replaying it gives a
	 * consistent image (its data was flushed first). */
	r = vhd_file_write(v, e, len, x->log_off + x->log_head);
	free(e);
	if (r < 0 || (r = sync_file(v, x)) < 0)
		goto undo;
	for (unsigned i = 0; i < t->n && r == 0; i++)
		r = vhd_file_write(v, t->sec[i], SEC, t->off[i]);
	if (r == 0)
		r = sync_file(v, x);
	if (r < 0) {
		x->broken = 1;
		tx_reset(t, x);
		return r;
	}
	x->log_head += len;
	x->log_seq++;
	tx_reset(t, x);
	return 0;
undo:
	tx_revert(x, t);
	tx_reset(t, x);
	return r;
}

/* ---- allocation ---- */

/* len bytes (a multiple of 1 MiB) at the end of the file, extended to
 * hold them (zeros). */
static int
alloc_space(struct vhd *v, struct vhdx *x, uint64_t len, uint64_t *off)
{
	uint64_t end = x->file_end + len;
	int r;

	if (end > VHDX_FILE_MAX)
		return vhd_err(ENOSPC, "'%s': the file would exceed %llu bytes",
			       v->path, (unsigned long long)VHDX_FILE_MAX);
	if ((r = v->io->ops->truncate(v->io, end)) < 0)
		return vhd_err(-r, "'%s': cannot extend the file to %llu "
			       "bytes: %s", v->path, (unsigned long long)end,
			       strerror(-r));
	*off = x->file_end;
	x->file_end = end;
	v->file_size = x->eof = end;
	return 0;
}

/* Sets the bits of sectors [s0, s1) of block blk in its chunk's sector
 * bitmap (allocated if need be), in t. */
static int
bitmap_set(struct vhd *v, struct vhdx *x, struct tx *t, uint64_t blk,
	   uint64_t s0, uint64_t s1)
{
	uint64_t cr = x->chunk_ratio, chunk = blk / cr;
	uint64_t sbi = chunk * (cr + 1) + cr, e = x->bat[sbi], off;
	uint64_t first = (blk % cr) * (x->block_size / x->lss);
	int r;

	if (BAT_STATE(e) != SB_PRESENT) {
		if ((r = alloc_space(v, x, VHDX_MIB, &off)) < 0 ||
		    (r = bat_set(v, x, t, sbi, SB_PRESENT |
				 (off / VHDX_MIB) << 20)) < 0)
			return r;
		e = x->bat[sbi];
	}
	for (uint64_t b = first + s0; b < first + s1; ) {
		uint64_t byte = b / 8, soff = BAT_OFF(e) + byte / SEC * SEC;
		uint8_t *s;
		if ((r = tx_sector(v, t, soff, &s)) < 0)
			return r;
		for (; b < first + s1 && b / 8 / SEC == byte / SEC; b++)
			s[b / 8 % SEC] |= (uint8_t)(1u << (b % 8));
	}
	return 0;
}

/* ---- writes ---- */

static int
data_write(struct vhd *v, const uint8_t *buf, size_t n, uint64_t off)
{
	int r;

	if (buf)
		return vhd_file_write(v, buf, n, off);
	if ((r = vhd_io_zero(v->io, off, n)) < 0)
		return vhd_err(-r, "'%s': cannot write zeros at offset %llu: "
			       "%s", v->path, (unsigned long long)off,
			       strerror(-r));
	return 0;
}

/* [boff, boff+k) of block blk (buf NULL: zeros), the block's changes to
 * t.  Differencing blocks the parent shows through are written in whole
 * logical sectors, their edges completed from what the chain shows. */
static int
write_block(struct vhd *v, struct vhdx *x, struct tx *t, uint64_t blk,
	    uint64_t boff, const uint8_t *buf, uint64_t k)
{
	uint64_t idx = blk + blk / x->chunk_ratio, e = x->bat[idx], off;
	uint64_t bstart = blk * x->block_size, blen = x->block_size;
	unsigned st = BAT_STATE(e);
	int r;

	if (bstart + blen > v->size)
		blen = v->size - bstart;
	if (st == PB_FULLY_PRESENT)
		return data_write(v, buf, k, BAT_OFF(e) + boff);
	if (!x->has_parent || (st != PB_NOT_PRESENT &&
				st != PB_PARTIALLY_PRESENT) ||
	    (boff == 0 && k == blen)) {
		/* A new block: zeros where not written (the extension). */
		if ((r = alloc_space(v, x, x->block_size, &off)) < 0)
			return r;
		if (buf && (r = data_write(v, buf, k, off + boff)) < 0)
			return r;
		return bat_set(v, x, t, idx, PB_FULLY_PRESENT |
			       (off / VHDX_MIB) << 20);
	}
	/* The parent shows through: whole 4 KiB pages (as Hyper-V writes
	 * them; libvhdi misreads a run of clear bits that starts inside a
	 * page), bits set; the edge pages completed from what the chain
	 * shows (read before the block's state changes in memory). */
	uint64_t lss = VHDX_LOG_SECTOR, a = boff / lss * lss;
	uint64_t b = (boff + k + lss - 1) / lss * lss;
	uint64_t ha = a < boff ? a + lss : a;           /* aligned middle */
	uint64_t hb = (boff + k) / lss * lss;
	uint8_t *head = NULL, *tail = NULL;
	if (ha > hb)            /* inside one sector: the tail's merge */
		ha = hb = a;
	r = 0;
	if (a < ha || hb < b) {
		if (!(head = malloc(2 * lss)))
			return vhd_err(ENOMEM, "no memory");
		tail = head + lss;
	}
	if (a < ha)
		r = vhd_read_level(v, head, lss, bstart + a);
	if (r == 0 && hb < b)
		r = vhd_read_level(v, tail, lss, bstart + hb);
	if (r < 0)
		goto out;
	if (st == PB_NOT_PRESENT) {
		if ((r = alloc_space(v, x, x->block_size, &off)) < 0 ||
		    (r = bat_set(v, x, t, idx, PB_PARTIALLY_PRESENT |
				 (off / VHDX_MIB) << 20)) < 0)
			goto out;
	} else {
		off = BAT_OFF(e);
	}
	if (a < ha) {
		uint64_t ce = boff + k < ha ? boff + k : ha;
		if (buf)
			memcpy(head + (boff - a), buf, ce - boff);
		else
			memset(head + (boff - a), 0, ce - boff);
		if ((r = vhd_file_write(v, head, lss, off + a)) < 0)
			goto out;
	}
	if (ha < hb && (r = data_write(v, buf ? buf + (ha - boff) : NULL,
				       hb - ha, off + ha)) < 0)
		goto out;
	if (hb < b) {
		uint64_t cs = boff > hb ? boff : hb;
		if (buf)
			memcpy(tail + (cs - hb), buf + (cs - boff),
			       boff + k - cs);
		else
			memset(tail + (cs - hb), 0, boff + k - cs);
		if ((r = vhd_file_write(v, tail, lss, off + hb)) < 0)
			goto out;
	}
	if (b > blen)            /* the disk ends inside the page */
		b = blen;
	r = bitmap_set(v, x, t, blk, a / x->lss, (b + x->lss - 1) / x->lss);
out:
	free(head);
	return r;
}

static int
write_range(struct vhd *v, struct vhdx *x, struct tx *t, const uint8_t *buf,
	    size_t n, uint64_t off)
{
	int r;

	while (n > 0) {
		uint64_t blk = off / x->block_size, boff = off % x->block_size;
		uint64_t k = x->block_size - boff < n ? x->block_size - boff : n;
		if (t->n + TX_BLOCK > TX_MAX && (r = tx_commit(v, x, t)) < 0)
			return r;
		if ((r = write_block(v, x, t, blk, boff, buf, k)) < 0)
			return r;
		if (buf)
			buf += k;
		off += k;
		n -= (size_t)k;
	}
	return 0;
}

int
vhdx_write(struct vhd *v, const uint8_t *buf, size_t n, uint64_t off)
{
	struct vhdx *x = X(v);
	struct tx t;
	int r;

	if ((r = go_live(v, x, 1)) < 0)
		return r;
	memset(&t, 0, sizeof(t));
	tx_reset(&t, x);
	r = write_range(v, x, &t, buf, n, off);
	if (r == 0)
		r = tx_commit(v, x, &t);
	else
		tx_revert(x, &t);
	tx_free(&t);
	return r;
}

/* Does [boff, boff+k) of block blk read as zeros without a write?  Only
 * where this file answers with zeros for the whole block. */
static int
reads_zero(const struct vhdx *x, uint64_t blk)
{
	unsigned st = BAT_STATE(x->bat[blk + blk / x->chunk_ratio]);

	return st == PB_ZERO || st == PB_UNMAPPED || st == PB_UNDEFINED ||
	       (st == PB_NOT_PRESENT && !x->has_parent);
}

#define PUNCH_MAX 1024u

/* Commits t, then gives back the space of the blocks no longer in the BAT
 * (durably so) where the file system can; that space is never reused by
 * this session: allocations go to the end of the file. */
static int
commit_punch(struct vhd *v, struct vhdx *x, struct tx *t,
	     const uint64_t *punch, size_t *npunch)
{
	int r = tx_commit(v, x, t);

	for (size_t i = 0; r == 0 && i < *npunch && v->io->ops->punch; i++)
		(void)v->io->ops->punch(v->io, punch[i], x->block_size);
	*npunch = 0;
	return r;
}

int
vhdx_zero(struct vhd *v, uint64_t off, uint64_t len, unsigned flags,
	  int discard)
{
	struct vhdx *x = X(v);
	struct tx t;
	uint64_t punch[PUNCH_MAX];
	size_t npunch = 0;
	int r, fixed = x->leave_allocated;

	/* FAST_ONLY: refused before anything changes when a part needs
	 * data writes (all of a fixed disk; partial blocks not zero). */
	for (uint64_t o = off, l = len; (flags & VHD_ZERO_FAST_ONLY) && l > 0;) {
		uint64_t blk = o / x->block_size, boff = o % x->block_size;
		uint64_t k = x->block_size - boff < l ? x->block_size - boff : l;
		uint64_t blen = v->size - blk * x->block_size < x->block_size ?
				v->size - blk * x->block_size : x->block_size;
		int whole = boff == 0 && k == blen;
		if (fixed || (flags & VHD_ZERO_NO_HOLE) ? !reads_zero(x, blk) :
		    !whole && !reads_zero(x, blk))
			return vhd_err(ENOTSUP, "'%s': zeroing needs data "
				       "writes", v->path);
		o += k;
		l -= k;
	}
	if ((r = go_live(v, x, 1)) < 0)
		return r;
	memset(&t, 0, sizeof(t));
	tx_reset(&t, x);
	while (len > 0 && r == 0) {
		uint64_t blk = off / x->block_size, boff = off % x->block_size;
		uint64_t k = x->block_size - boff < len ? x->block_size - boff
							: len;
		uint64_t blen = v->size - blk * x->block_size < x->block_size ?
				v->size - blk * x->block_size : x->block_size;
		uint64_t idx = blk + blk / x->chunk_ratio, e = x->bat[idx];
		unsigned st = BAT_STATE(e);
		if (!fixed && !(flags & VHD_ZERO_NO_HOLE) && boff == 0 &&
		    k == blen) {
			/* The whole block: its state says zeros.  A
			 * differencing disk's UNMAPPED would not promise
			 * zeros: ZERO there. */
			unsigned ns = discard && !x->has_parent ? PB_UNMAPPED
								: PB_ZERO;
			if ((t.n + TX_BLOCK > TX_MAX || npunch == PUNCH_MAX) &&
			    (r = commit_punch(v, x, &t, punch, &npunch)) < 0)
				break;
			if (st != ns)
				r = bat_set(v, x, &t, idx, ns);
			if (r == 0 && (st == PB_FULLY_PRESENT ||
				       st == PB_PARTIALLY_PRESENT))
				punch[npunch++] = BAT_OFF(e);
		} else if (!reads_zero(x, blk) || (flags & VHD_ZERO_NO_HOLE)) {
			r = write_range(v, x, &t, NULL, (size_t)k, off);
		}
		off += k;
		len -= k;
	}
	if (r == 0)
		r = commit_punch(v, x, &t, punch, &npunch);
	else
		tx_revert(x, &t);
	tx_free(&t);
	return r;
}

/* ---- the parent locator ---- */

/* The metadata region's bytes [off, off+n) (region offsets) as t
 * changes them: data, or zeros when data is NULL. */
static int
meta_put(struct vhd *v, struct vhdx *x, struct tx *t, uint64_t off,
	 const uint8_t *data, uint64_t n)
{
	uint64_t at = x->meta_off + off;
	int r;

	while (n > 0) {
		uint64_t so = at / SEC * SEC, k = SEC - (at - so);
		uint8_t *s;
		if (k > n)
			k = n;
		if ((r = tx_sector(v, t, so, &s)) < 0)
			return r;
		if (data) {
			memcpy(s + (at - so), data, k);
			data += k;
		} else {
			memset(s + (at - so), 0, k);
		}
		at += k;
		n -= k;
	}
	return 0;
}

int
vhdx_write_locator(struct vhd *v, struct vhdx *x, const uint8_t *item,
		   uint32_t len)
{
	uint8_t *tab = NULL;
	uint64_t end = 65536, at = x->loc_off;
	uint16_t n;
	struct tx t;
	int r, fits = 1;

	if (!x->loc_entry)
		return vhd_err(EINVAL, "'%s': not a differencing disk: no "
			       "parent locator", v->path);
	if (!(tab = malloc(65536)))
		return vhd_err(ENOMEM, "no memory");
	if ((r = vhdx_file_read(v, tab, 65536, x->meta_off)) < 0)
		goto out;
	/* In place if it overlaps no other item, else after the last item
	 * (8-byte aligned). */
	n = get_le16(tab + 10);
	for (uint32_t i = 0; i < n && i < 2047; i++) {
		const uint8_t *e = tab + 32 + 32 * i;
		uint32_t io = get_le32(e + 16), il = get_le32(e + 20);
		if (32 + 32 * i == x->loc_entry)
			continue;
		if (io + (uint64_t)il > end)
			end = io + (uint64_t)il;
		if (ranges_overlap(at, at + len, io, io + (uint64_t)il))
			fits = 0;
	}
	if (at + (uint64_t)len > x->meta_len)
		fits = 0;
	if (!fits) {
		uint64_t lend = x->loc_off + (uint64_t)x->loc_len;
		at = align_up(end > lend ? end : lend, 8);
		if (at + len > x->meta_len) {
			r = vhd_err(ENOSPC, "'%s': metadata region at %llu: no "
				    "room for a parent locator of %u bytes (%llu "
				    "of its %u bytes are in use)", v->path,
				    (unsigned long long)x->meta_off, len,
				    (unsigned long long)end, x->meta_len);
			goto out;
		}
	}
	/* The table's sector, the old item's and the new one's. */
	if ((len + x->loc_len) / SEC + 4 > TX_MAX) {
		r = vhd_err(ENAMETOOLONG, "'%s': a parent locator of %u bytes "
			    "is too large", v->path, len);
		goto out;
	}
	if ((r = go_live(v, x, 0)) < 0)
		goto out;
	memset(&t, 0, sizeof(t));
	tx_reset(&t, x);
	uint8_t ent[8];
	put_le32(ent, (uint32_t)at);
	put_le32(ent + 4, len);
	r = meta_put(v, x, &t, x->loc_off, NULL, x->loc_len);
	if (r == 0)
		r = meta_put(v, x, &t, at, item, len);
	if (r == 0)
		r = meta_put(v, x, &t, x->loc_entry + 16, ent, 8);
	if (r == 0)
		r = tx_commit(v, x, &t);
	tx_free(&t);
	if (r == 0) {
		x->loc_off = (uint32_t)at;
		x->loc_len = len;
	}
out:
	free(tab);
	return r;
}

/* ---- open and close ---- */

int
vhdx_rdwr_open(struct vhd *v, struct vhdx *x)
{
	int r;

	if (memcmp(x->log_guid, zero16, 16) != 0) {
		/* MS-VHDX 2.3.3: the log is replayed before anything else is
		 * written: its writes in order, the file extended to the last
		 * entry's LastFileOffset, flush; then a header without the
		 * log (a crash before that replays the same entries again). */
		for (size_t i = 0; i < x->npatch; i++) {
			const struct vhdx_patch *p = &x->patch[i];
			if (p->off + p->len > v->file_size &&
			    (r = v->io->ops->truncate(v->io, p->off + p->len)) < 0)
				return vhd_err(-r, "'%s': cannot extend the file "
					       "to replay its log: %s", v->path,
					       strerror(-r));
			if (p->off + p->len > v->file_size)
				v->file_size = p->off + p->len;
			if ((r = data_write(v, p->data, p->len, p->off)) < 0)
				return r;
		}
		if (x->eof > v->file_size) {
			if ((r = v->io->ops->truncate(v->io, x->eof)) < 0)
				return vhd_err(-r, "'%s': cannot extend the file "
					       "to replay its log: %s", v->path,
					       strerror(-r));
			v->file_size = x->eof;
		}
		x->file_end = v->file_size;
		if ((r = sync_file(v, x)) < 0)
			return r;
		vhdx_log_free(x);
		memset(x->log_guid, 0, 16);
		if ((r = update_header(v, x)) < 0)
			return r;
	}
	x->eof = v->file_size;
	x->file_end = align_up(v->file_size, VHDX_MIB);
	x->flushed_end = v->file_size;
	return 0;
}

int
vhdx_rdwr_close(struct vhd *v, struct vhdx *x)
{
	int r;

	if (!v->rdwr || !x->live || x->broken)
		return 0;
	if ((r = sync_file(v, x)) < 0)
		return r;
	memset(x->log_guid, 0, 16);
	if ((r = update_header(v, x)) == 0)
		x->live = x->data_live = 0;
	return r;
}
