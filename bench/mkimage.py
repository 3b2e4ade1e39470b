#!/usr/bin/python3
"""mkimage.py FILE SIZE CHUNK [SEED]
mkimage.py --fill IMAGE NBLOCKS [BLOCK_SIZE]
mkimage.py --realign SRC DST

The first form writes a raw disk image of SIZE bytes made of CHUNK-byte
chunks that alternate between pseudo-random data (first) and written
zeros, so half the disk is data and half is zeros.  Deterministic for a
given SEED.

The second takes a dynamic or differencing VHD that has no block yet
(as `vhdtool create` makes it) and stores blocks 0..NBLOCKS-1 in it, in
order, each with a full bitmap: every 10th block holds only zeros (so
`compact` has blocks to free and others to move), the others start with
their 8-byte number.  With BLOCK_SIZE (a power of two, 512 bytes to
256 MiB) the image is first laid out afresh for that block size: BAT
resized, parent locators moved behind it (`vhdtool create --parent` has
no --block-size).  For the scaling benchmark: an image with 10^6 small
blocks in seconds, instead of 10^6 allocating writes.

The third copies the dynamic VHD SRC (no parent locators), as QEMU lays
it out (block data 512 bytes past a page boundary), to DST with the same
blocks and contents laid out as Windows and vhdtool do: each block's
bitmap placed so that its data starts on a 4 KiB boundary.  For the
write rows: the same image in both layouts.
"""
import os
import random
import struct
import sys


def mkraw(path, size, chunk, seed):
    rng = random.Random(seed)
    zeros = bytes(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        off, i = 0, 0
        while off < size:
            n = min(chunk, size - off)
            buf = rng.randbytes(n) if i % 2 == 0 else zeros[:n]
            os.pwrite(fd, buf, off)
            off += n
            i += 1
    finally:
        os.close(fd)


def die(msg):
    sys.stderr.write("mkimage.py: %s\n" % msg)
    sys.exit(1)


def checksum(b):
    return ~sum(b) & 0xFFFFFFFF


def up(x, a):
    return (x + a - 1) // a * a


def fill(path, nblocks, new_bs):
    fd = os.open(path, os.O_RDWR)
    try:
        fsize = os.fstat(fd).st_size
        footer = os.pread(fd, 512, fsize - 512)
        if footer[:8] != b"conectix":
            die("%s: no VHD footer at the end" % path)
        dtype, = struct.unpack(">I", footer[60:64])
        vsize, = struct.unpack(">Q", footer[48:56])
        hoff, = struct.unpack(">Q", footer[16:24])
        if dtype not in (3, 4):
            die("%s: not a dynamic or differencing VHD" % path)
        hdr = bytearray(os.pread(fd, 1024, hoff))
        if hdr[:8] != b"cxsparse":
            die("%s: no dynamic header at %d" % (path, hoff))
        bat_off, = struct.unpack(">Q", hdr[16:24])
        entries, bs = struct.unpack(">II", hdr[28:36])
        bat = os.pread(fd, entries * 4, bat_off)
        if bat != b"\xff" * (entries * 4):
            die("%s: already has blocks" % path)
        locs = []
        for i in range(8):
            e = hdr[576 + 24 * i:600 + 24 * i]
            code, space, length, _, off = struct.unpack(">IIIIQ", e)
            if code:
                locs.append((i, space, length, os.pread(fd, length, off)))
        if new_bs:
            if new_bs & (new_bs - 1) or not 512 <= new_bs <= 1 << 28:
                die("block size %d: not a power of two from 512 to 256M" % new_bs)
            bs = new_bs
            entries = (vsize + bs - 1) // bs
        if nblocks > entries:
            die("%s: %d blocks do not fit (%d entries)" % (path, nblocks, entries))
        # Metadata: footer copy, header, BAT, locators, then the blocks.
        bat_off = hoff + 1024
        pos = up(bat_off + entries * 4, 512)
        for i, space, length, data in locs:
            ext = max(space * 512, up(length, 512))
            os.pwrite(fd, data, pos)
            hdr[576 + 24 * i + 16:576 + 24 * i + 24] = struct.pack(">Q", pos)
            pos += ext
        pos = up(pos, 4096)
        hdr[16:24] = struct.pack(">Q", bat_off)
        hdr[28:36] = struct.pack(">II", entries, bs)
        hdr[36:40] = b"\0\0\0\0"
        hdr[36:40] = struct.pack(">I", checksum(hdr))
        os.pwrite(fd, bytes(hdr), hoff)
        bm = up((bs // 512 + 7) // 8, 512)
        stride = bm + bs
        bmap = b"\xff" * bm
        zero = bytes(bs - 8)
        batbuf = bytearray(b"\xff" * (entries * 4))
        per = max(1, (8 << 20) // stride)
        i = 0
        while i < nblocks:
            k = min(per, nblocks - i)
            buf = bytearray()
            for j in range(i, i + k):
                struct.pack_into(">I", batbuf, 4 * j, (pos + (j - i) * stride) // 512)
                buf += bmap
                buf += b"\0" * 8 if j % 10 == 9 else struct.pack(">Q", j + 1)
                buf += zero
            os.pwrite(fd, bytes(buf), pos)
            pos += k * stride
            i += k
        os.pwrite(fd, bytes(batbuf), bat_off)
        os.pwrite(fd, footer, pos)
        os.ftruncate(fd, pos + 512)
    finally:
        os.close(fd)


def realign(src, dst):
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fsize = os.fstat(fi).st_size
        footer = os.pread(fi, 512, fsize - 512)
        hoff, = struct.unpack(">Q", footer[16:24])
        if footer[:8] != b"conectix" or struct.unpack(">I", footer[60:64])[0] != 3:
            die("%s: not a dynamic VHD" % src)
        hdr = os.pread(fi, 1024, hoff)
        if any(struct.unpack(">I", hdr[576 + 24 * i:580 + 24 * i])[0] for i in range(8)):
            die("%s: has parent locators" % src)
        bat_off, = struct.unpack(">Q", hdr[16:24])
        entries, bs = struct.unpack(">II", hdr[28:36])
        bat = struct.unpack(">%dI" % entries, os.pread(fi, entries * 4, bat_off))
        bm = up((bs // 512 + 7) // 8, 512)
        # Same header offset and BAT offset: only the BAT entries change.
        pos = up(bat_off + entries * 4, 512)
        new = []
        for i, e in enumerate(bat):
            if e == 0xFFFFFFFF:
                new.append(e)
                continue
            at = up(pos + bm, 4096) - bm
            os.pwrite(fo, os.pread(fi, bm + bs, e * 512), at)
            new.append(at // 512)
            pos = at + bm + bs
        os.pwrite(fo, footer, 0)
        os.pwrite(fo, hdr, hoff)
        os.pwrite(fo, struct.pack(">%dI" % entries, *new)
                  + b"\xff" * (up(entries * 4, 512) - entries * 4), bat_off)
        os.pwrite(fo, footer, pos)
        os.ftruncate(fo, pos + 512)
    finally:
        os.close(fi)
        os.close(fo)


def main():
    a = sys.argv[1:]
    if a and a[0] == "--realign":
        if len(a) != 3:
            die("usage: mkimage.py --realign SRC DST")
        realign(a[1], a[2])
        return
    if a and a[0] == "--fill":
        if len(a) not in (3, 4):
            die("usage: mkimage.py --fill IMAGE NBLOCKS [BLOCK_SIZE]")
        fill(a[1], int(a[2]), int(a[3]) if len(a) > 3 else 0)
        return
    if len(a) not in (3, 4):
        die("usage: mkimage.py FILE SIZE CHUNK [SEED]")
    mkraw(a[0], int(a[1]), int(a[2]), int(a[3]) if len(a) > 3 else 1)


if __name__ == "__main__":
    main()
