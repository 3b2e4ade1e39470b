#!/usr/bin/env python3
"""craft.py - change VHDX images the way the tests need, by the MS-VHDX
specification (v1.0): no VHDX library, only the on-disk layout.

  craft.py sector4k FILE            logical and physical sector size 4096
  craft.py dirty FILE               log entries to replay (unclean shutdown):
                                    see dirty() for what they change
  craft.py dirty-wrap FILE          the same, wrapping round the log's end
  craft.py damage FILE CASE         one damaged field (CASES below)
  craft.py cases                    the names of the damage cases
  craft.py diff CHILD PARENT        make CHILD (a dynamic VHDX of PARENT's
                                    size and block size) a differencing
                                    image of PARENT: see diff()
  craft.py zero-block FILE N        payload block N: PAYLOAD_BLOCK_ZERO
"""
import struct
import sys
import uuid

MIB = 1 << 20
GUIDS = {
    'bat': '2DC27766-F623-4200-9D64-115E9BFD4A08',
    'meta': '8B7CA206-4790-4B9A-B8FE-575F050F886E',
    'file_params': 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B',
    'disk_size': '2FA54224-CD1B-4876-B211-5DBED83BF4B8',
    'lss': '8141BF1D-A96F-4709-BA47-F233A8FAAB5F',
    'pss': 'CDA348C7-445D-4471-9CC9-E9885251C556',
    'page83': 'BECA12AB-B2E6-4523-93EF-C309E000C746',
}


def guid(name):
    return uuid.UUID(GUIDS[name]).bytes_le


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = _table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def seal(buf, off, n):
    """Recompute the CRC-32C at off+4 of the n-byte structure at off."""
    buf[off + 4:off + 8] = b'\0' * 4
    buf[off + 4:off + 8] = struct.pack('<I', crc32c(bytes(buf[off:off + n])))


class Image:
    def __init__(self, path):
        self.path = path
        self.b = bytearray(open(path, 'rb').read())
        h = [self.header(o) for o in (64 * 1024, 128 * 1024)]
        self.hoff = 64 * 1024 if h[0][0] >= h[1][0] else 128 * 1024
        _, self.log_len, self.log_off = self.header(self.hoff)
        self.regions = {}
        for t in (192 * 1024, 256 * 1024):
            n = struct.unpack_from('<I', self.b, t + 8)[0]
            for i in range(n):
                e = t + 16 + 32 * i
                for k in ('bat', 'meta'):
                    if self.b[e:e + 16] == guid(k):
                        self.regions.setdefault(k, []).append(e)
        self.bat = struct.unpack_from('<Q', self.b, self.regions['bat'][0] + 16)[0]
        self.meta = struct.unpack_from('<Q', self.b, self.regions['meta'][0] + 16)[0]
        self.items, self.entries = {}, {}
        n = struct.unpack_from('<H', self.b, self.meta + 10)[0]
        for i in range(n):
            e = self.meta + 32 + 32 * i
            for k in ('file_params', 'disk_size', 'lss', 'pss', 'page83'):
                if self.b[e:e + 16] == guid(k):
                    self.items[k] = self.meta + struct.unpack_from('<I', self.b, e + 16)[0]
                    self.entries[k] = e

    def header(self, off):
        seq, = struct.unpack_from('<Q', self.b, off + 8)
        ll, lo = struct.unpack_from('<IQ', self.b, off + 68)
        return seq, ll, lo

    def save(self):
        open(self.path, 'wb').write(self.b)

    def bat_entry(self, i):
        return struct.unpack_from('<Q', self.b, self.bat + 8 * i)[0]

    def present(self):
        """Indexes of the BAT entries of fully present blocks."""
        out, i = [], 0
        while self.bat + 8 * i + 8 <= len(self.b) and i < 4096:
            if self.bat_entry(i) & 7 == 6:
                out.append(i)
            i += 1
        return out


def sector4k(img):
    struct.pack_into('<I', img.b, img.items['lss'], 4096)
    struct.pack_into('<I', img.b, img.items['pss'], 4096)


def log_entry(img, seq, descs, flushed, last, log_guid, tail=0):
    """descs: ('data', file_offset, 4096 bytes) or ('zero', off, len)."""
    nd = len(descs)
    dsec = (nd + 2 + 127) // 128
    data = [d for d in descs if d[0] == 'data']
    length = (dsec + len(data)) * 4096
    e = bytearray(length)
    struct.pack_into('<4sIIIQII16sQQ', e, 0, b'loge', 0, length, tail, seq,
                     nd, 0, log_guid, flushed, last)
    k = 0
    for i, d in enumerate(descs):
        o = 64 + 32 * i
        if d[0] == 'zero':
            struct.pack_into('<4sIQQQ', e, o, b'zero', 0, d[2], d[1], seq)
        else:
            s = d[2]
            struct.pack_into('<4s4s8sQQ', e, o, b'desc', s[4092:4096], s[0:8],
                             d[1], seq)
            so = (dsec + k) * 4096
            struct.pack_into('<4sI', e, so, b'data', seq >> 32)
            e[so + 8:so + 4092] = s[8:4092]
            struct.pack_into('<I', e, so + 4092, seq & 0xFFFFFFFF)
            k += 1
    seal(e, 0, length)
    return e


def dirty(img, flushed_past_eof=False, wrap=False, last=None, desc_off=None):
    """A 1 MiB block of 0x77 appended to the file (unreferenced), then log
    entries that (1) rewrite the first 4 KiB of the first present block with a
    byte ramp, (2) zero 8 KiB of the second present block, (3) point the
    first absent block of the BAT's first 4 KiB page at the appended MiB.
    Needs 1 MiB blocks and at least two present blocks."""
    bs = struct.unpack_from('<I', img.b, img.items['file_params'])[0]
    assert bs == MIB, 'dirty needs 1 MiB blocks'
    pres = img.present()
    assert len(pres) >= 2, 'dirty needs two present blocks'
    absent = next(i for i in range(512) if img.bat_entry(i) & 7 != 6)
    while len(img.b) % MIB:
        img.b.append(0)
    new = len(img.b)
    img.b += b'\x77' * MIB
    ramp = bytes((i * 7 + 3) % 251 for i in range(4096))
    b0 = (img.bat_entry(pres[0]) >> 20) * MIB
    b1 = (img.bat_entry(pres[1]) >> 20) * MIB
    page = bytearray(img.b[img.bat:img.bat + 4096])
    struct.pack_into('<Q', page, 8 * absent, (new // MIB) << 20 | 6)
    flushed = len(img.b) + (MIB if flushed_past_eof else 0)
    lg = uuid.uuid4().bytes_le
    # Two entries, sequence numbers 5 and 6, both naming the first as the
    # tail: at the log's start, or (wrap) the first in the last 8 KiB of
    # the log and the second wrapping round to its start.
    first = img.log_len - 8192 if wrap else 0
    e1 = log_entry(img, 5, [('data', b0 if desc_off is None else desc_off, ramp),
                            ('zero', b1 + 4096, 8192)],
                   flushed, len(img.b) if last is None else last, lg, tail=first)
    e2 = log_entry(img, 6, [('data', img.bat, bytes(page))],
                   flushed, len(img.b), lg, tail=first)
    assert len(e1) == 8192
    second = 0 if wrap else 8192
    img.b[img.log_off + first:img.log_off + first + 8192] = e1
    img.b[img.log_off + second:img.log_off + second + len(e2)] = e2
    img.b[img.hoff + 48:img.hoff + 64] = lg
    seal(img.b, img.hoff, 4096)


def diff(img, parent_path):
    """Turn a dynamic image into a differencing one whose parent is
    parent_path: HasParent set, a parent locator item (parent_linkage =
    the parent's DataWriteGuid, relative_path .\\NAME, absolute_win32_path
    C:\\vms\\NAME), the BAT's sector bitmap entry of chunk 0 pointing at an
    appended bitmap block.  Block 1 becomes partially present: only its
    first half's sectors are set in the bitmap (the rest reads from the
    parent).  Needs 1 MiB blocks and
    512-byte sectors (chunk ratio 4096)."""
    par = Image(parent_path)
    fp = img.items['file_params']
    bs, flags = struct.unpack_from('<II', img.b, fp)
    assert bs == MIB
    struct.pack_into('<I', img.b, fp + 4, flags | 2)
    # The parent locator item.
    name = parent_path.rsplit('/', 1)[-1]
    dwg = uuid.UUID(bytes_le=bytes(par.b[par.hoff + 32:par.hoff + 48]))
    kv = [('parent_linkage', '{%s}' % dwg),  # lower case: libvhdi reads no other
          ('relative_path', '.\\' + name),
          ('absolute_win32_path', 'C:\\vms\\' + name)]
    blob = bytearray(20 + 12 * len(kv))
    blob[0:16] = uuid.UUID('B04AEFB7-D19E-4A81-B789-25B8E9445913').bytes_le
    struct.pack_into('<HH', blob, 16, 0, len(kv))
    for i, (k, v) in enumerate(kv):
        kb, vb = k.encode('utf-16-le'), v.encode('utf-16-le')
        ko = len(blob)
        blob += kb
        vo = len(blob)
        blob += vb
        struct.pack_into('<IIHH', blob, 20 + 12 * i, ko, vo, len(kb), len(vb))
    n = struct.unpack_from('<H', img.b, img.meta + 10)[0]
    end = 64 * 1024
    for i in range(n):
        o, ln = struct.unpack_from('<II', img.b, img.meta + 32 + 32 * i + 16)
        end = max(end, o + ln)
    off = (end + 4095) // 4096 * 4096
    img.b[img.meta + off:img.meta + off + len(blob)] = blob
    e = img.meta + 32 + 32 * n
    img.b[e:e + 16] = uuid.UUID('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C').bytes_le
    struct.pack_into('<IIII', img.b, e + 16, off, len(blob), 4, 0)
    struct.pack_into('<H', img.b, img.meta + 10, n + 1)
    # The sector bitmap block of chunk 0 (BAT entry 4096), appended.
    while len(img.b) % MIB:
        img.b.append(0)
    sbo = len(img.b)
    bm = bytearray(MIB)
    for sec in range(2048, 2048 + 1024):      # block 1, first half
        bm[sec // 8] |= 1 << (sec % 8)
    # Fully present blocks have every bit set too, as Hyper-V keeps them
    # (libvhdi reads a differencing image's sectors by the bitmap alone).
    for blk in img.present():
        if blk != 1 and blk < 4096:
            bm[blk * 256:(blk + 1) * 256] = b'\xff' * 256
    img.b += bm
    struct.pack_into('<Q', img.b, img.bat + 8 * 4096, (sbo // MIB) << 20 | 6)
    e1 = img.bat_entry(1)
    assert e1 & 7 == 6, 'block 1 must be present'
    struct.pack_into('<Q', img.b, img.bat + 8, (e1 & ~7) | 7)


def zero_block(img, blk):
    """Set payload block blk (below the chunk ratio) to PAYLOAD_BLOCK_ZERO."""
    struct.pack_into('<Q', img.b, img.bat + 8 * blk, 2)


def regions(img, fn):
    """fn(entry offset, region name) on both region tables, resealed."""
    for t in (192 * 1024, 256 * 1024):
        n = struct.unpack_from('<I', img.b, t + 8)[0]
        for i in range(n):
            e = t + 16 + 32 * i
            for k in ('bat', 'meta'):
                if img.b[e:e + 16] == guid(k):
                    fn(e, k)
        seal(img.b, t, 65536)


def table_count(img, n):
    for t in (192 * 1024, 256 * 1024):
        struct.pack_into('<I', img.b, t + 8, n)
        seal(img.b, t, 65536)


def both(img, fn):
    for off in (64 * 1024, 128 * 1024):
        fn(off)


CASES = {
    'header-signatures': lambda i: both(i, lambda o: i.b.__setitem__(slice(o, o + 4), b'heaX')),
    'header-checksums': lambda i: both(i, lambda o: i.b.__setitem__(o + 100, i.b[o + 100] ^ 1)),
    'header-version': lambda i: both(i, lambda o: (struct.pack_into('<H', i.b, o + 66, 2), seal(i.b, o, 4096))),
    'header-log-offset': lambda i: both(i, lambda o: (struct.pack_into('<Q', i.b, o + 72, 12345), seal(i.b, o, 4096))),
    'region-signatures': lambda i: [i.b.__setitem__(slice(t, t + 4), b'regX') for t in (192 * 1024, 256 * 1024)],
    'region-bat-offset': lambda i: [(struct.pack_into('<Q', i.b, e + 16, i.bat + 4096), seal(i.b, e - 16 - 32 * ((e - t - 16) // 32), 65536))
                                    for e, t in zip(i.regions['bat'], (192 * 1024, 256 * 1024))],
    'region-bat-past-eof': lambda i: [(struct.pack_into('<Q', i.b, e + 16, (len(i.b) // MIB + 8) * MIB), seal(i.b, t, 65536))
                                      for e, t in zip(i.regions['bat'], (192 * 1024, 256 * 1024))],
    'metadata-signature': lambda i: i.b.__setitem__(slice(i.meta, i.meta + 8), b'metadatX'),
    'metadata-block-size': lambda i: struct.pack_into('<I', i.b, i.items['file_params'], 3 * MIB),
    'metadata-sector-size': lambda i: struct.pack_into('<I', i.b, i.items['lss'], 1024),
    'metadata-disk-size': lambda i: struct.pack_into('<Q', i.b, i.items['disk_size'], 65 << 40),
    'bat-state': lambda i: struct.pack_into('<Q', i.b, i.bat, 4),
    'bat-past-eof': lambda i: struct.pack_into('<Q', i.b, i.bat, ((len(i.b) // MIB + 16) << 20) | 6),
    'bat-overlap': lambda i: struct.pack_into('<Q', i.b, i.bat + 8 * next(k for k in range(512) if i.bat_entry(k) & 7 != 6),
                                              i.bat_entry(i.present()[0])),
    'bat-in-metadata': lambda i: struct.pack_into('<Q', i.b, i.bat, (i.meta // MIB) << 20 | 6),
    'log-truncated': lambda i: dirty(i, flushed_past_eof=True),
    'header-log-version': lambda i: both(i, lambda o: (struct.pack_into('<H', i.b, o + 64, 1), seal(i.b, o, 4096))),
    'header-log-length': lambda i: both(i, lambda o: (struct.pack_into('<I', i.b, o + 68, 12345), seal(i.b, o, 4096))),
    'header-log-outside': lambda i: both(i, lambda o: (struct.pack_into('<I', i.b, o + 68, 64 << 20), seal(i.b, o, 4096))),
    'region-entry-count': lambda i: table_count(i, 3000),
    'region-bat-length': lambda i: regions(i, lambda e, k: k == 'bat' and struct.pack_into('<I', i.b, e + 24, 0)),
    'region-meta-unaligned': lambda i: regions(i, lambda e, k: k == 'meta' and struct.pack_into('<Q', i.b, e + 16, i.meta + 4096)),
    'region-overlap': lambda i: regions(i, lambda e, k: k == 'meta' and struct.pack_into('<Q', i.b, e + 16, i.bat)),
    'region-missing-bat': lambda i: regions(i, lambda e, k: k == 'bat' and i.b.__setitem__(e, i.b[e] ^ 0x10)),
    'region-log-overlap': lambda i: both(i, lambda o: (struct.pack_into('<Q', i.b, o + 72, i.bat), seal(i.b, o, 4096))),
    'metadata-entry-count': lambda i: struct.pack_into('<H', i.b, i.meta + 10, 3000),
    'metadata-item-offset': lambda i: struct.pack_into('<I', i.b, i.entries['file_params'] + 16, 100),
    'metadata-item-length': lambda i: struct.pack_into('<I', i.b, i.entries['disk_size'] + 20, 4),
    'metadata-item-past-end': lambda i: struct.pack_into('<I', i.b, i.entries['lss'] + 16, (1 << 20) - 2),
    'metadata-duplicate': lambda i: i.b.__setitem__(slice(i.entries['pss'], i.entries['pss'] + 16), guid('lss')),
    'metadata-missing': lambda i: (i.b.__setitem__(i.entries['page83'], i.b[i.entries['page83']] ^ 1),
                                   struct.pack_into('<I', i.b, i.entries['page83'] + 24, 0)),
    'metadata-reserved-flags': lambda i: struct.pack_into('<I', i.b, i.items['file_params'] + 4, 8),
    'metadata-physical-sector': lambda i: struct.pack_into('<I', i.b, i.items['pss'], 1000),
    'metadata-disk-size-unaligned': lambda i: struct.pack_into('<Q', i.b, i.items['disk_size'], (64 << 20) + 100),
    'metadata-no-locator': lambda i: struct.pack_into('<I', i.b, i.items['file_params'] + 4, 2),
    'bat-partial-in-dynamic': lambda i: struct.pack_into('<Q', i.b, i.bat, (i.bat_entry(i.present()[0]) & ~7) | 7),
    'bat-region-short': lambda i: struct.pack_into('<Q', i.b, i.items['disk_size'], 64 << 40),
    'log-descriptor-range': lambda i: dirty(i, desc_off=1 << 50),
    'log-last-offset': lambda i: dirty(i, last=1 << 50),
}


def main():
    if sys.argv[1] == 'cases':
        print('\n'.join(CASES))
        return
    cmd, path = sys.argv[1], sys.argv[2]
    img = Image(path)
    if cmd == 'sector4k':
        sector4k(img)
    elif cmd == 'dirty':
        dirty(img)
    elif cmd == 'dirty-wrap':
        dirty(img, wrap=True)
    elif cmd == 'diff':
        diff(img, sys.argv[3])
    elif cmd == 'zero-block':
        zero_block(img, int(sys.argv[3]))
    elif cmd == 'damage':
        CASES[sys.argv[3]](img)
    else:
        sys.exit('unknown command ' + cmd)
    img.save()


if __name__ == '__main__':
    main()
