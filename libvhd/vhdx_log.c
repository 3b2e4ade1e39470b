/* vhdx_log.c - replaying a VHDX log in memory (MS-VHDX 2.3).
 *
 * The log is a circular buffer of 4 KiB sectors at the header's
 * LogOffset.  An entry is a 64-byte header ("loge", CRC-32C of the whole
 * entry, EntryLength, Tail, SequenceNumber, DescriptorCount, LogGuid,
 * FlushedFileOffset, LastFileOffset), its descriptors (32 bytes each,
 * after the header in the same and following sectors: "zero" ZeroLength,
 * FileOffset, SequenceNumber; "desc" TrailingBytes, LeadingBytes,
 * FileOffset, SequenceNumber), then one 4 KiB data sector per "desc"
 * ("data", SequenceHigh, 4084 bytes, SequenceLow; the sector written is
 * LeadingBytes + those 4084 bytes + TrailingBytes).
 *
 * The active sequence is the run of valid entries with consecutive
 * sequence numbers that ends with the highest sequence number, whose last
 * entry's Tail names an entry of the run; replay applies the entries
 * from that tail entry on, in order.  Here they become patches over the
 * file's bytes: nothing is written (a read-only open leaves the file as
 * it is, as QEMU cannot: it refuses a dirty image read-only).
 */
#include <stdio.h>
#include <stdlib.h>
#include "vhdx.h"

struct entry {
	uint32_t pos;           /* byte offset in the log */
	uint32_t len;
	uint32_t tail;
	uint64_t seq;
	uint32_t ndesc;
	uint64_t flushed, last;
};

uint32_t
vhdx_log_desc_sectors(uint32_t ndesc)
{
	/* the header takes the room of two descriptors */
	return (ndesc + 2 + 127) / 128;
}
#define desc_sectors vhdx_log_desc_sectors

/* Is the entry at pos (in the doubled buffer L of the log) valid?  Fills
 * e.  Invalid entries are simply not part of any sequence. */
static int
entry_valid(const uint8_t *L, uint32_t log_len, uint32_t pos,
	    const uint8_t guid[16], struct entry *e)
{
	const uint8_t *h = L + pos;
	uint32_t ds, ndata = 0;

	if (memcmp(h, "loge", 4) != 0)
		return 0;
	e->pos = pos;
	e->len = get_le32(h + 8);
	e->tail = get_le32(h + 12);
	e->seq = get_le64(h + 16);
	e->ndesc = get_le32(h + 24);
	e->flushed = get_le64(h + 48);
	e->last = get_le64(h + 56);
	if (e->len == 0 || e->len % VHDX_LOG_SECTOR || e->len > log_len ||
	    e->seq == 0 || memcmp(h + 32, guid, 16) != 0 ||
	    e->tail % VHDX_LOG_SECTOR || e->tail >= log_len ||
	    e->ndesc > log_len / 32)
		return 0;
	ds = desc_sectors(e->ndesc);
	if ((uint64_t)ds * VHDX_LOG_SECTOR > e->len)
		return 0;
	if (vhdx_crc32c_skip(h, e->len, 4) != get_le32(h + 4))
		return 0;
	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = h + 64 + 32 * i;
		if (get_le64(d + 24) != e->seq || get_le64(d + 16) %
		    VHDX_LOG_SECTOR)
			return 0;
		if (memcmp(d, "zero", 4) == 0) {
			if (get_le64(d + 8) % VHDX_LOG_SECTOR)
				return 0;
		} else if (memcmp(d, "desc", 4) == 0) {
			uint64_t off = (uint64_t)(ds + ndata) * VHDX_LOG_SECTOR;
			const uint8_t *s = h + off;
			if (off + VHDX_LOG_SECTOR > e->len ||
			    memcmp(s, "data", 4) != 0 ||
			    ((uint64_t)get_le32(s + 4) << 32 |
			     get_le32(s + 4092)) != e->seq)
				return 0;
			ndata++;
		} else {
			return 0;
		}
	}
	return 1;
}

static int
add_patch(struct vhdx *x, uint64_t off, uint64_t len, const uint8_t *d8,
	  const uint8_t *data, const uint8_t *t4)
{
	struct vhdx_patch *p = realloc(x->patch, (x->npatch + 1) * sizeof(*p));

	if (!p)
		return vhd_err(ENOMEM, "no memory");
	x->patch = p;
	p += x->npatch;
	p->off = off;
	p->len = len;
	p->data = NULL;
	if (data) {
		if (!(p->data = malloc(VHDX_LOG_SECTOR)))
			return vhd_err(ENOMEM, "no memory");
		memcpy(p->data, d8, 8);
		memcpy(p->data + 8, data + 8, 4084);
		memcpy(p->data + 4092, t4, 4);
	}
	x->npatch++;
	return 0;
}

static int
apply_entry(struct vhd *v, struct vhdx *x, const uint8_t *L,
	    const struct entry *e)
{
	const uint8_t *h = L + e->pos;
	uint32_t ds = desc_sectors(e->ndesc), ndata = 0;
	int r;

	if (e->flushed > v->file_size)
		return vhd_err(EBADMSG, "'%s': log entry %llu at log offset %u: "
			       "FlushedFileOffset %llu is past the end of the "
			       "file (%llu bytes): the file was truncated",
			       v->path, (unsigned long long)e->seq, e->pos,
			       (unsigned long long)e->flushed,
			       (unsigned long long)v->file_size);
	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = h + 64 + 32 * i;
		uint64_t off = get_le64(d + 16);
		int zero = memcmp(d, "zero", 4) == 0;
		uint64_t n = zero ? get_le64(d + 8) : VHDX_LOG_SECTOR;
		if (off > VHDX_FILE_MAX || n > VHDX_FILE_MAX - off)
			return vhd_err(EBADMSG, "'%s': log entry %llu: "
				       "descriptor %u: %llu bytes at %llu: "
				       "expected a range below %llu", v->path,
				       (unsigned long long)e->seq, i,
				       (unsigned long long)n,
				       (unsigned long long)off,
				       (unsigned long long)VHDX_FILE_MAX);
		if (zero) {
			r = add_patch(x, off, n, NULL, NULL, NULL);
		} else {
			const uint8_t *s = h + (uint64_t)(ds + ndata++) *
					   VHDX_LOG_SECTOR;
			r = add_patch(x, off, n, d + 8, s, d + 4);
		}
		if (r < 0)
			return r;
		if (off + x->patch[x->npatch - 1].len > x->eof)
			x->eof = off + x->patch[x->npatch - 1].len;
	}
	if (e->last > VHDX_FILE_MAX)
		return vhd_err(EBADMSG, "'%s': log entry %llu: LastFileOffset: "
			       "expected at most %llu, found %llu", v->path,
			       (unsigned long long)e->seq,
			       (unsigned long long)VHDX_FILE_MAX,
			       (unsigned long long)e->last);
	if (e->last > x->eof)
		x->eof = e->last;
	x->log_entries++;
	return 0;
}

void
vhdx_log_free(struct vhdx *x)
{
	for (size_t i = 0; i < x->npatch; i++)
		free(x->patch[i].data);
	free(x->patch);
	x->patch = NULL;
	x->npatch = 0;
}

/* Each slot's entry, validated once: 1 valid (in ent[slot]), 0 not. */
struct scan {
	const uint8_t *L;
	struct vhdx *x;
	struct entry *ent;
	int8_t *valid;          /* -1 not yet known */
	uint8_t *seen;          /* slot already inside a followed run */
};

static int
slot_valid(struct scan *sc, uint32_t s)
{
	if (sc->valid[s] < 0)
		sc->valid[s] = (int8_t)entry_valid(sc->L, sc->x->log_len,
						   s * VHDX_LOG_SECTOR,
						   sc->x->log_guid, &sc->ent[s]);
	return sc->valid[s];
}

/* The run of valid entries with consecutive sequence numbers starting at
 * slot s, into run[]; returns its length.  Its slots are marked seen: a
 * run starting inside it is a suffix, ending with the same entry. */
static uint32_t
follow(struct scan *sc, uint32_t s, struct entry *run, uint32_t max)
{
	uint32_t n = 0, slot = s;

	while (n < max && slot_valid(sc, slot)) {
		if (n > 0 && sc->ent[slot].seq != run[n - 1].seq + 1)
			break;
		run[n] = sc->ent[slot];
		sc->seen[slot] = 1;
		slot = (uint32_t)(((uint64_t)slot * VHDX_LOG_SECTOR +
				   run[n].len) % sc->x->log_len /
				  VHDX_LOG_SECTOR);
		n++;
		if (slot == s)
			break;
	}
	return n;
}

int
vhdx_log_replay(struct vhd *v, struct vhdx *x)
{
	static const uint8_t zero16[16];
	uint32_t slots, best_n = 0;
	struct entry *run = NULL, *best = NULL;
	struct scan sc = { NULL, x, NULL, NULL, NULL };
	uint8_t *L = NULL;
	int r = 0;

	x->eof = v->file_size;
	if (memcmp(x->log_guid, zero16, 16) == 0 || x->log_len == 0)
		return 0;
	if (x->log_len > VHDX_LOG_MAX)
		return vhd_err(ENOTSUP, "'%s': header %d: a log of %u bytes to "
			       "replay (at most %llu supported)", v->path,
			       x->header, x->log_len,
			       (unsigned long long)VHDX_LOG_MAX);
	slots = x->log_len / VHDX_LOG_SECTOR;
	L = malloc((size_t)x->log_len * 2);
	run = calloc(slots, sizeof(*run));
	best = calloc(slots, sizeof(*best));
	sc.ent = calloc(slots, sizeof(*sc.ent));
	sc.valid = malloc(slots);
	sc.seen = calloc(slots, 1);
	if (!L || !run || !best || !sc.ent || !sc.valid || !sc.seen) {
		r = vhd_err(ENOMEM, "no memory");
		goto out;
	}
	if ((r = vhd_file_read(v, L, x->log_len, x->log_off)) < 0)
		goto out;
	memcpy(L + x->log_len, L, x->log_len);  /* entries may wrap */
	memset(sc.valid, -1, slots);
	sc.L = L;
	for (uint32_t s = 0; s < slots; s++) {
		if (sc.seen[s])
			continue;
		uint32_t n = follow(&sc, s, run, slots);
		if (n == 0)
			continue;
		/* The last entry's tail must be an entry of the run; replay
		 * starts there. */
		uint32_t t = n;
		for (uint32_t i = 0; i < n; i++)
			if (run[i].pos == run[n - 1].tail)
				t = i;
		if (t == n)
			continue;
		if (best_n == 0 || run[n - 1].seq > best[best_n - 1].seq) {
			memcpy(best, run + t, (n - t) * sizeof(*run));
			best_n = n - t;
		}
	}
	for (uint32_t i = 0; i < best_n && r == 0; i++)
		r = apply_entry(v, x, L, &best[i]);
out:
	free(L);
	free(run);
	free(best);
	free(sc.ent);
	free(sc.valid);
	free(sc.seen);
	if (r < 0)
		vhdx_log_free(x);
	return r;
}
