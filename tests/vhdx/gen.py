#!/usr/bin/env python3
"""gen.py - VHDX images written from nothing, by the MS-VHDX specification
(v1.0), one per case of the format a reader must handle, each with the
disk content it must read as.  No VHDX library: only the on-disk layout.

  gen.py cases                  the case names, one a line, then a tab and
                                the judges that can read it (qemu, vhdi, 7z)
  gen.py make CASE DIR          DIR/CASE.vhdx (and its parents), and
                                DIR/CASE.json: the virtual size, the sector
                                size, the type, the current header's
                                DataWriteGuid and the disk's non-zero
                                extents [offset, length, tag]
  gen.py verify JSON FILE [--probe]
                                FILE (a raw disk) holds exactly what JSON
                                says: every extent's bytes and zeros
                                elsewhere (holes skipped by SEEK_DATA);
                                --probe reads the extents and 64 KiB either
                                side of each only (for FUSE mounts of big
                                disks)
  gen.py qemu-io JSON IMAGE     the same as --probe, read by qemu-io
  gen.py map JSON MAPJSON       `vhdtool map --json`: every extent of data
                                lies in runs mapped as data

What the cases cover: fixed, dynamic and differencing; logical sectors 512
and 4096 (physical 512 and 4096); every block size 1 MiB .. 256 MiB; the
current header in slot 1 or 2 (the other one valid with a lower sequence
number and another DataWriteGuid, or damaged with a higher one); region
and metadata entries in any order with unknown optional ones; the BAT's
sector-bitmap entries (chunk ratio) crossed; every payload block state
(0 not present, 1 undefined, 2 zero, 3 unmapped - these three with a
stale file offset at non-zero bytes, which must not be read -, 6 fully
and 7 partially present); sizes not a multiple of the block size; disks
up to 64 TiB.

Data: the 16 bytes at virtual offset o of an extent with tag t are
(t, o) as two little-endian 64-bit integers, so a byte read from the wrong
place never passes.
"""
import array
import json
import os
import struct
import sys
import uuid
import zlib

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
G = {
    'bat': '2DC27766-F623-4200-9D64-115E9BFD4A08',
    'meta': '8B7CA206-4790-4B9A-B8FE-575F050F886E',
    'file_params': 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B',
    'disk_size': '2FA54224-CD1B-4876-B211-5DBED83BF4B8',
    'page83': 'BECA12AB-B2E6-4523-93EF-C309E000C746',
    'lss': '8141BF1D-A96F-4709-BA47-F233A8FAAB5F',
    'pss': 'CDA348C7-445D-4471-9CC9-E9885251C556',
    'parent_loc': 'A8D35F2D-B30B-454D-ABF7-D3D84834AB0C',
    'loc_type': 'B04AEFB7-D19E-4A81-B789-25B8E9445913',
    'unknown': '5E1F0C3A-7A7B-4B8B-9E3D-0D1C2B3A4958',   # made up: optional
}


def g(name):
    return uuid.UUID(G[name]).bytes_le


def did(case, n):
    """A deterministic GUID (bytes on disk) per case and purpose."""
    return uuid.uuid5(uuid.NAMESPACE_URL, 'libvhd-gen/%s/%d' % (case, n)).bytes_le


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def sealed(buf):
    """buf with its CRC-32C (at 4, computed with the field zero) filled in."""
    buf = bytearray(buf)
    buf[4:8] = b'\0' * 4
    buf[4:8] = struct.pack('<I', crc32c(bytes(buf)))
    return bytes(buf)


def pattern(tag, off, n):
    """The n bytes at virtual offset off (both multiples of 16) of tag."""
    a = array.array('Q', [0]) * (n // 8)
    a[0::2] = array.array('Q', [tag]) * (n // 16)
    a[1::2] = array.array('Q', range(off, off + n, 16))
    if sys.byteorder != 'little':
        a.byteswap()
    return a.tobytes()


class Disk:
    """One VHDX file.  blocks: {block: spec}, spec one of
    'absent' (0), 'undefined' (1), 'zero' (2), 'unmapped' (3),
    ('full', [(start, len, tag)...]) (6: the block's bytes, relative to
    the block, zeros elsewhere), ('partial', [(start, len, tag)...]) (7:
    the ranges are the sectors this file holds; the rest is the
    parent's).  Unlisted blocks are absent (dynamic, differencing) or
    full of zeros (fixed)."""

    def __init__(self, name, size, bs, lss=512, pss=4096, kind='dynamic',
                 blocks=None, parent=None, current=1, other='older',
                 shuffle=False, layout=(MIB, MIB, 2 * MIB, 3 * MIB, 0)):
        # layout: log offset and length, metadata and BAT offsets, and
        # where blocks start (0: after the BAT).
        self.layout = layout
        self.name, self.size, self.bs, self.lss, self.pss = name, size, bs, lss, pss
        self.kind, self.blocks, self.parent = kind, blocks or {}, parent
        self.current, self.other, self.shuffle = current, other, shuffle
        self.cr = (1 << 23) * lss // bs
        self.nblocks = (size + bs - 1) // bs
        self.data_guid = did(name, 1)

    def bat_index(self, blk):
        return blk + blk // self.cr

    def extents(self):
        """[(virtual offset, length, tag)] this file holds, and the
        ranges it answers for ([(off, len)]: every block not absent)."""
        ext, own = [], []
        for blk in sorted(self.blocks):
            spec = self.blocks[blk]
            base = blk * self.bs
            if spec == 'absent':
                continue
            if spec in ('undefined', 'zero', 'unmapped'):
                own.append((base, min(self.bs, self.size - base)))
                continue
            kind, rng = spec
            if kind == 'full':
                own.append((base, min(self.bs, self.size - base)))
            for s, n, t in rng:
                n = min(n, self.size - base - s)      # inside the disk
                if kind == 'partial':
                    own.append((base + s, n))
                if t:
                    ext.append((base + s, n, t))
        if self.kind == 'fixed':
            own = [(0, self.size)]
        return ext, own

    def write(self, path):
        bs, lss = self.bs, self.lss
        f = open(path, 'wb')
        # File type identifier.
        ident = bytearray(64 * KIB)
        ident[0:8] = b'vhdxfile'
        cr = 'libvhd tests/vhdx/gen.py'.encode('utf-16-le')
        ident[8:8 + len(cr)] = cr
        f.write(ident)
        log_off, log_len, meta_off, bat_off, data_off = self.layout
        meta_len = MIB
        if self.kind == 'diff':
            nbat = (self.nblocks + self.cr - 1) // self.cr * (self.cr + 1)
        else:
            nbat = self.nblocks + (self.nblocks - 1) // self.cr
        bat_len = (nbat * 8 + MIB - 1) // MIB * MIB
        nxt = data_off or bat_off + bat_len
        unknown_off = nxt       # an optional region of no known kind
        if self.shuffle:
            nxt += MIB

        # Headers: the current one and the other (older, or newer but
        # damaged).
        def header(seq, dwg, fwg, damage=False):
            h = bytearray(4 * KIB)
            h[0:4] = b'head'
            struct.pack_into('<Q16s16s16sHHIQ', h, 8, seq, fwg, dwg,
                             b'\0' * 16, 0, 1, log_len, log_off)
            h = bytearray(sealed(h))
            if damage:
                h[200] ^= 0x40
            return bytes(h)
        cur = header(10, self.data_guid, did(self.name, 2))
        if self.other == 'older':
            oth = header(9, did(self.name, 3), did(self.name, 4))
        else:
            oth = header(11, did(self.name, 3), did(self.name, 4), damage=True)
        hs = (cur, oth) if self.current == 1 else (oth, cur)
        f.seek(64 * KIB)
        f.write(hs[0])
        f.seek(128 * KIB)
        f.write(hs[1])

        # Region table (and its copy).
        ents = [g('bat') + struct.pack('<QII', bat_off, bat_len, 1),
                g('meta') + struct.pack('<QII', meta_off, meta_len, 1)]
        if self.shuffle:
            ents = [g('unknown') + struct.pack('<QII', unknown_off, MIB, 0)] + ents[::-1]
        rt = bytearray(64 * KIB)
        rt[0:4] = b'regi'
        struct.pack_into('<I', rt, 8, len(ents))
        for i, e in enumerate(ents):
            rt[16 + 32 * i:48 + 32 * i] = e
        rt = sealed(rt)
        for o in (192 * KIB, 256 * KIB):
            f.seek(o)
            f.write(rt)

        # Metadata: table, then the items from 64 KiB.
        items = [('file_params', struct.pack('<II', bs, (self.kind == 'fixed') |
                                             (self.kind == 'diff') << 1), 0),
                 ('disk_size', struct.pack('<Q', self.size), 2),
                 ('page83', did(self.name, 5), 2),
                 ('lss', struct.pack('<I', lss), 2),
                 ('pss', struct.pack('<I', self.pss), 0)]
        if self.kind == 'diff':
            items.append(('parent_loc', self.locator(), 0))
        if self.shuffle:
            items = [('unknown', b'optional, unknown item', 0)] + items[::-1]
        mt = bytearray(64 * KIB)
        mt[0:8] = b'metadata'
        struct.pack_into('<H', mt, 10, len(items))
        data = bytearray()
        for i, (k, v, flags) in enumerate(items):
            off = 64 * KIB + len(data)
            data += v + b'\0' * (-len(v) % 8)
            # IsUser bit 1, IsVirtualDisk bit 1, IsRequired bit 2.
            fl = 4 if k != 'unknown' else 0
            if k in ('disk_size', 'page83', 'lss', 'pss'):
                fl |= 2
            mt[32 + 32 * i:48 + 32 * i] = g(k)
            struct.pack_into('<III', mt, 48 + 32 * i, off, len(v), fl)
        f.seek(meta_off)
        f.write(mt + data)

        # Payload blocks and the BAT.
        bat = [0] * nbat
        stale = nxt              # non-zero bytes no entry may read
        if not data_off:
            f.seek(stale)
            f.write(b'\xee' * MIB)
            nxt += MIB
        bitmaps = {}
        for blk in range(self.nblocks):
            spec = self.blocks.get(blk, 'full' if self.kind == 'fixed' else 'absent')
            i = self.bat_index(blk)
            if spec == 'absent':
                continue
            st = {'undefined': 1, 'zero': 2, 'unmapped': 3}.get(spec) if isinstance(spec, str) else None
            if st:
                bat[i] = (stale // MIB) << 20 | st
                continue
            kind, rng = (spec, []) if spec == 'full' else spec
            boff = nxt
            nxt += bs
            bat[i] = (boff // MIB) << 20 | (6 if kind == 'full' else 7)
            for s, n, t in rng:
                if t:
                    f.seek(boff + s)
                    f.write(pattern(t, blk * bs + s, n))
            if kind == 'full' and self.kind == 'diff':
                rng = [(0, bs, 0)]      # Hyper-V sets every bit
            if self.kind == 'diff':
                c = blk // self.cr
                bm = bitmaps.setdefault(c, bytearray(MIB))
                for s, n, _ in rng:
                    for sec in range(s // lss, (s + n) // lss):
                        bit = (blk % self.cr) * (bs // lss) + sec
                        bm[bit // 8] |= 1 << (bit % 8)
        for c, bm in sorted(bitmaps.items()):
            f.seek(nxt)
            f.write(bm)
            bat[c * (self.cr + 1) + self.cr] = (nxt // MIB) << 20 | 6
            nxt += MIB
        f.seek(bat_off)
        f.write(struct.pack('<%dQ' % nbat, *bat))
        f.truncate(nxt)
        f.close()

    def locator(self):
        p = self.parent
        name = os.path.basename(p.path)
        kv = [('parent_linkage', '{%s}' % uuid.UUID(bytes_le=p.data_guid)),
              ('relative_path', '.\\' + name),
              ('absolute_win32_path', 'C:\\Hyper-V\\Virtual Hard Disks\\' + name)]
        blob = bytearray(g('loc_type') + struct.pack('<HH', 0, len(kv)))
        blob += b'\0' * (12 * len(kv))
        for i, (k, v) in enumerate(kv):
            kb, vb = k.encode('utf-16-le'), v.encode('utf-16-le')
            ko = len(blob)
            blob += kb
            vo = len(blob)
            blob += vb
            struct.pack_into('<IIHH', blob, 20 + 12 * i, ko, vo, len(kb), len(vb))
        return bytes(blob)


def content(disk):
    """The chain's non-zero extents, the child's over its parents'."""
    ext, own = disk.extents()
    if disk.parent is None:
        return sorted(ext)
    out = []
    for o, n, t in content(disk.parent):
        # Cut the parent's extents by what this file answers for.
        pieces = [(o, o + n)]
        for a, ln in own:
            b = a + ln
            nxt = []
            for s, e in pieces:
                if e <= a or s >= b:
                    nxt.append((s, e))
                    continue
                if s < a:
                    nxt.append((s, a))
                if e > b:
                    nxt.append((b, e))
            pieces = nxt
        out += [(s, e - s, t) for s, e in pieces]
    return sorted(out + ext)


def cases():
    """{name: (judges, builder(dir) -> top Disk)}"""
    C = {}

    def add(name, judges, fn):
        C[name] = (judges, fn)

    # Dynamic: every state, for every block size and both sector sizes.
    # qemu-img 7.2 refuses 4 KiB logical sectors; libvhdi and 7-Zip read
    # them.
    for lss in (512, 4096):
        for sh in range(0, 9):
            bs = MIB << sh
            nb = 7
            size = nb * bs - 4 * lss if sh < 4 else 5 * bs + 6 * lss
            nb = (size + bs - 1) // bs
            q = bs // 4
            blocks = {0: ('full', [(0, 8 * KIB, 1), (q, 4 * KIB, 2), (bs - 4 * KIB, 4 * KIB, 3)]),
                      1: 'zero', 2: 'undefined', 3: 'unmapped',
                      nb - 1: ('full', [(0, 2 * lss, 5), (size - (nb - 1) * bs - lss, lss, 6)])}
            nm = 'dynamic-%d-%dM' % (lss, bs >> 20)
            judges = 'vhdi' + (' 7z' if bs <= 16 * MIB else '') + (' qemu' if lss == 512 else '')
            add(nm, judges, lambda d, nm=nm, size=size, bs=bs, lss=lss, blocks=blocks:
                Disk(nm, size, bs, lss, 4096 if lss == 4096 else 512, 'dynamic', blocks))
    # Fixed: every block present; sizes not a block multiple.
    for lss, bs in ((512, MIB), (512, 32 * MIB), (4096, 8 * MIB), (4096, 256 * MIB)):
        nm = 'fixed-%d-%dM' % (lss, bs >> 20)
        size = 2 * bs + 6 * lss
        blocks = {0: ('full', [(bs // 2, 64 * KIB, 7)]), 1: ('full', []),
                  2: ('full', [(0, 5 * lss, 8)])}
        add(nm, 'vhdi' + (' 7z' if bs <= 32 * MIB else '') + (' qemu' if lss == 512 else ''),
            lambda d, nm=nm, size=size, bs=bs, lss=lss, blocks=blocks:
            Disk(nm, size, bs, lss, lss, 'fixed', blocks))
    # The headers: the current one second; a newer damaged one first;
    # shuffled region and metadata tables with unknown optional entries.
    add('header2-current', 'vhdi 7z qemu', lambda d: Disk(
        'header2-current', 20 * MIB, MIB, blocks={3: ('full', [(0, MIB, 9)])},
        current=2))
    # (7-Zip 26.02 refuses the file when the newer header is damaged.)
    add('header-newer-damaged', 'vhdi qemu', lambda d: Disk(
        'header-newer-damaged', 20 * MIB, MIB, blocks={3: ('full', [(0, MIB, 9)])},
        current=1, other='damaged'))
    add('tables-shuffled', 'vhdi 7z qemu', lambda d: Disk(
        'tables-shuffled', 20 * MIB, 2 * MIB, blocks={3: ('full', [(4096, 8192, 9)])},
        shuffle=True))
    # An odd number of sectors (7-Zip 26.02 refuses those), the last
    # sector of the disk written.
    add('size-odd-512', 'vhdi qemu', lambda d: Disk(
        'size-odd-512', 7 * MIB - 1536, MIB, blocks={
            6: ('full', [(MIB - 2048, 512, 10), (MIB - 2048 + 512, 512, 11)])}))
    add('size-odd-4096', 'vhdi', lambda d: Disk(
        'size-odd-4096', 7 * MIB - 4096, MIB, 4096, 4096, blocks={
            6: ('full', [(MIB - 8192, 4096, 12)])}))
    # Across sector-bitmap entries of the BAT: chunk ratio 16 (512-byte
    # sectors, 256 MiB blocks) and 128 (4096, 256 MiB): blocks on either
    # side of each bitmap entry.
    for lss, cr in ((512, 16), (4096, 128)):
        nm = 'chunks-%d' % lss
        nb = 2 * cr + 3
        blocks = {b: ('full', [(0, 4096, 20 + b), (200 * MIB, 512 * 8, 60 + b)])
                  for b in (cr - 1, cr, cr + 1, 2 * cr, nb - 1)}
        blocks[2 * cr - 1] = 'zero'
        add(nm, 'vhdi' + (' qemu' if lss == 512 else ''),
            lambda d, nm=nm, nb=nb, lss=lss, blocks=blocks: Disk(
                nm, nb * 256 * MIB, 256 * MIB, lss, 4096, 'dynamic', blocks))
    # The format's largest disk: 64 TiB (256 MiB blocks; 32 MiB blocks
    # make a 16 MiB BAT), data in its last sectors.
    for bs in (256 * MIB, 32 * MIB):
        nm = 'size-64T-%dM' % (bs >> 20)
        nb = 64 * TIB // bs
        blocks = {0: ('full', [(0, 4096, 30)]),
                  nb // 2: ('full', [(bs - 8192, 8192, 31)]),
                  nb - 1: ('full', [(bs - 4096, 4096, 32)])}
        add(nm, 'qemu-io vhdi', lambda d, nm=nm, bs=bs, blocks=blocks: Disk(
            nm, 64 * TIB, bs, blocks=blocks))
    # Differencing: a chain of three, child over middle over base, with
    # every state in the child and partially present blocks (sector
    # bitmaps) in two chunks, for both sector sizes.  Judged by 7-Zip
    # (qemu-img cannot open differencing VHDX; libvhdi 20210425 ignores the
    # child's blocks, see SPEC.md).
    for lss in (512, 4096):
        nm = 'diff-%d' % lss

        def chain(d, nm=nm, lss=lss):
            bs = MIB
            size = 24 * MIB + 4 * lss
            full = lambda tag: ('full', [(0, bs, tag)])
            base = Disk(nm + '-base', size, bs, lss, 4096, 'dynamic',
                        {b: full(40 + b) for b in range(0, 25)})
            base.path = os.path.join(d, base.name + '.vhdx')
            mid = Disk(nm + '-mid', size, bs, lss, 4096, 'diff',
                       {2: ('partial', [(8 * lss, 8 * lss, 70), (bs - lss, lss, 71)]),
                        5: full(72), 6: 'zero'}, parent=base)
            mid.path = os.path.join(d, mid.name + '.avhdx')
            kid = Disk(nm, size, bs, lss, 4096, 'diff', {
                0: full(80), 1: 'zero', 3: ('partial', [(0, 3 * lss, 81), (64 * KIB, 128 * KIB, 82)]),
                4: ('partial', [(lss, lss, 0)]),       # a sector of zeros over the parent
                5: ('partial', [(bs // 2, 4 * lss, 83)]),   # over the middle's full block
                24: ('partial', [(0, 2 * lss, 84)])}, parent=mid)
            return kid
        add(nm, '7z', chain)
    # A differencing disk whose partially present blocks lie in two chunks
    # (512-byte sectors, 256 MiB blocks: chunk ratio 16, sector bitmaps at
    # BAT entries 16 and 33), over a dynamic parent: the bitmap of the
    # right chunk, at the right bit, answers for each sector.  Too big for
    # 7-Zip's extraction: judged by the generator's content only.
    def chunks_diff(d):
        bs, size = 256 * MIB, 20 * 256 * MIB
        base = Disk('diff-chunks-base', size, bs, 512, 4096, 'dynamic',
                    {b: ('full', [(0, 64 * KIB, 90 + b), (bs - 64 * KIB, 64 * KIB, 110 + b)])
                     for b in (14, 15, 16, 17, 19)})
        base.path = os.path.join(d, base.name + '.vhdx')
        return Disk('diff-chunks', size, bs, 512, 4096, 'diff', {
            15: ('partial', [(4096, 4096, 130)]),
            16: ('partial', [(bs - 4096, 512, 131)]),
            17: ('partial', [(0, 512, 132), (bs - 32 * KIB, 8 * KIB, 133)]),
            19: 'zero'}, parent=base)
    add('diff-chunks', '', chunks_diff)
    return C


def flatten(disk):
    out = []
    while disk is not None:
        out.append(disk)
        disk = disk.parent
    return out


def main():
    a = sys.argv[1:]
    if a[0] == 'cases':
        for k, (j, _) in cases().items():
            print('%s\t%s' % (k, j))
    elif a[0] == 'make':
        name, d = a[1], a[2]
        judges, fn = cases()[name]
        top = fn(d)
        if not hasattr(top, 'path'):
            top.path = os.path.join(d, name + '.vhdx')
        for disk in reversed(flatten(top)):
            disk.write(disk.path)
        json.dump({'size': top.size, 'lss': top.lss, 'pss': top.pss,
                   'block_size': top.bs, 'type': {'diff': 'differencing'}.get(top.kind, top.kind),
                   'data_write_guid': str(uuid.UUID(bytes_le=top.data_guid)),
                   'judges': judges.split(), 'path': top.path,
                   'extents': content(top)}, open(os.path.join(d, name + '.json'), 'w'))
    elif a[0] == 'verify':
        sys.exit(verify(json.load(open(a[1])), a[2], '--probe' in a))
    elif a[0] == 'qemu-io':
        sys.exit(qemu_io(json.load(open(a[1])), a[2]))
    elif a[0] == 'map':
        sys.exit(check_map(json.load(open(a[1])), json.load(open(a[2]))))
    else:
        sys.exit('unknown command ' + a[0])


def expected(j, a, b):
    """The disk's bytes [a, b) by the JSON's extents."""
    out = bytearray(b - a)
    for o, n, t in j['extents']:
        s, e = max(a, o), min(b, o + n)
        if s < e:
            out[s - a:e - a] = pattern(t, o, n)[s - o:e - o]
    return bytes(out)


def windows(j):
    """64 KiB-aligned windows round every extent, and the disk's first
    and last 64 KiB: what a judge that cannot read the whole disk reads."""
    w = [(0, 64 * KIB), (j['size'] - 64 * KIB, j['size'])]
    for o, n, _ in j['extents']:
        w.append((max(0, (o - 64 * KIB) // (64 * KIB) * (64 * KIB)),
                  min(j['size'], (o + n + 128 * KIB) // (64 * KIB) * (64 * KIB))))
    return sorted(set(w))


def qemu_io(j, img):
    """Read the windows with qemu-io (read -v: a hex dump; converting a
    whole 64 TiB disk takes QEMU minutes) and compare."""
    import subprocess
    for a, b in windows(j):
        out = subprocess.run(['qemu-io', '-r', '-f', 'vhdx', '-c',
                              'read -v %d %d' % (a, b - a), img],
                             check=True, capture_output=True, text=True).stdout
        got = bytearray()
        for line in out.splitlines():
            head, sep, rest = line.partition(':  ')
            if not sep or len(head) < 8:
                continue
            got += bytes.fromhex(rest[:47])
        if bytes(got) != expected(j, a, b):
            return 'qemu-io: %d..%d reads otherwise' % (a, b)
    return 0


def verify(j, path, probe):
    f = open(path, 'rb')
    fd = f.fileno()
    size = os.fstat(fd).st_size
    if size != j['size']:
        return '%s: %d bytes, expected %d' % (path, size, j['size'])
    ext = j['extents']
    want = {}
    for o, n, t in ext:
        f.seek(o)
        if f.read(n) != pattern(t, o, n):
            return '%s: the extent at %d (%d bytes, tag %d) reads wrong' % (path, o, n, t)
    # Zeros elsewhere: the gaps between extents.
    gaps, pos = [], 0
    for o, n, _ in ext:
        if o > pos:
            gaps.append((pos, o))
        pos = max(pos, o + n)
    gaps.append((pos, size))
    if probe:
        for a, b in windows(j):
            f.seek(a)
            if f.read(b - a) != expected(j, a, b):
                return '%s: %d..%d reads otherwise' % (path, a, b)
        return 0
    for s, e in gaps:
        while s < e:
            try:
                d = os.lseek(fd, s, os.SEEK_DATA)
            except OSError:
                break
            if d >= e:
                break
            h = min(os.lseek(fd, d, os.SEEK_HOLE), e)
            while d < h:
                k = min(h - d, 4 * MIB)
                f.seek(d)
                b = f.read(k)
                if b.count(0) != len(b):
                    return '%s: non-zero bytes at %d (expected zeros)' % (
                        path, d + next(i for i, x in enumerate(b) if x))
                d += k
            s = h
    return 0


def check_map(j, m):
    pos = 0
    runs = []
    for e in m:
        if e['offset'] != pos or e['length'] <= 0:
            return 'map: run %r does not follow %d' % (e, pos)
        runs.append((e['offset'], e['length'], e['zero']))
        pos += e['length']
    if pos != j['size']:
        return 'map: covers %d bytes, expected %d' % (pos, j['size'])
    for o, n, t in j['extents']:
        for ro, rn, z in runs:
            if ro < o + n and o < ro + rn and z:
                return 'map: the extent at %d (tag %d) lies in a zero run %r' % (o, t, (ro, rn))
    return 0


if __name__ == '__main__':
    main()
