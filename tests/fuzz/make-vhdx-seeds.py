#!/usr/bin/env python3
"""Seeds for fuzz_vhdx (tests/fuzz/seeds/vhdx): VHDX images made by
tests/vhdx/gen.py with a compact layout (metadata at 1 MiB, BAT at 2 MiB,
blocks, bitmaps or the log at 3 and 4 MiB), packed the way fuzz_vhdx.c
unpacks them.  Deterministic.

    python3 tests/fuzz/make-vhdx-seeds.py [OUTDIR]
"""
import os
import struct
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', 'vhdx'))
import gen      # noqa: E402
import craft    # noqa: E402

MIB = 1 << 20
# (input offset, length, image offset), as fv_map in fuzz_vhdx.c.
MAP = [(1, 4096, 64 << 10), (1 + 4096, 4096, 128 << 10),
       (1 + 8192, 4096, 192 << 10), (1 + 12288, 4096, 256 << 10),
       (1 + 16384, 4096, 1 << 20), (1 + 20480, 4096, (1 << 20) + (64 << 10)),
       (1 + 24576, 8192, 2 << 20), (1 + 32768, 16384, 3 << 20),
       (1 + 49152, 4096, 4 << 20)]


def pack(img, ctl=7):
    out = bytearray(1 + 49152 + 4096)
    out[0] = ctl
    for i, n, at in MAP:
        chunk = img[at:at + n]
        out[i:i + len(chunk)] = chunk
    return bytes(out.rstrip(b'\0')) or bytes([ctl])


def make(tmp, name, **kw):
    layout = kw.pop('layout', (MIB, 0, MIB, 2 * MIB, 3 * MIB))
    d = gen.Disk(name, layout=layout, **kw)
    p = os.path.join(tmp, name + '.vhdx')
    d.path = p
    d.write(p)
    return d, p


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'seeds', 'vhdx')
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    seeds = {}
    M = MIB
    full = ('full', [(0, 4096, 1), (M - 512, 512, 2)])
    _, p = make(tmp, 'dynamic-512', size=8 * M, bs=M,
                blocks={0: full, 1: 'zero', 2: 'undefined', 3: 'unmapped'})
    seeds['dynamic-512'] = open(p, 'rb').read()
    _, p = make(tmp, 'dynamic-4096', size=8 * M, bs=M, lss=4096, pss=4096,
                blocks={5: full, 1: 'zero'})
    seeds['dynamic-4096'] = open(p, 'rb').read()
    _, p = make(tmp, 'fixed', size=M - 1024, bs=M, kind='fixed',
                blocks={0: ('full', [(512, 512, 3)])})
    seeds['fixed'] = open(p, 'rb').read()
    _, p = make(tmp, 'shuffled', size=3 * M, bs=2 * M, shuffle=True, current=2,
                blocks={0: ('full', [(0, 4096, 4)])})
    seeds['shuffled'] = open(p, 'rb').read()
    par, _ = make(tmp, 'parent', size=8 * M, bs=M, blocks={0: full})
    _, p = make(tmp, 'diff', size=8 * M, bs=M, kind='diff', parent=par,
                blocks={0: ('partial', [(0, 1024, 5), (8192, 512, 6)]),
                        1: 'zero', 2: 'unmapped'})
    seeds['diff'] = open(p, 'rb').read()
    # A log at 3 MiB to replay: it writes a 4 KiB sector of block 0's data
    # and points BAT entry 1 at a block past the file's end (4 MiB), whose
    # first sector it writes too.
    _, p = make(tmp, 'dirty', size=8 * M, bs=M, blocks={},
                layout=(3 * M, M, M, 2 * M, 3 * M))
    b = bytearray(open(p, 'rb').read())
    b += b'\0' * (5 * M - len(b))
    lg = bytes(range(16))
    bat = bytearray(b[2 * M:2 * M + 4096])
    struct.pack_into('<Q', bat, 8, (4 << 20) | 6)
    e = craft.log_entry(None, 3, [('data', 2 * M, bytes(bat)),
                                  ('data', 4 * M, bytes([0x5a]) * 4096),
                                  ('zero', 4 * M + 8192, 4096)],
                        5 * M, 5 * M, lg)
    b[3 * M:3 * M + len(e)] = e
    for h in (64 << 10, 128 << 10):
        b[h + 48:h + 64] = lg
        craft.seal(b, h, 4096)
    seeds['dirty'] = bytes(b)
    for k, img in seeds.items():
        open(os.path.join(out, k + '.bin'), 'wb').write(pack(img))
    open(os.path.join(out, 'unsealed.bin'), 'wb').write(pack(seeds['dynamic-512'], 0))


if __name__ == '__main__':
    main()
