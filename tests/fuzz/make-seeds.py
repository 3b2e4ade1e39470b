#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_locator and fuzz_nbd.

    python3 tests/fuzz/make-seeds.py        (from the top of the tree)

The fuzz_open seeds are small images made by vhdtool and qemu-io (see
tests/fuzz/README.md); these two targets take inputs that no tool writes.
"""
import os
import struct

TOP = os.path.dirname(os.path.abspath(__file__))


def put(name, data):
    with open(os.path.join(TOP, "seeds", name), "wb") as f:
        f.write(data)


# ---- fuzz_locator: a 1024-byte dynamic header, then locator data --------

def header(parent_name, locators):
    """locators: list of (code, data bytes, space_in_sectors)."""
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    struct.pack_into(">Q", h, 8, 0xFFFFFFFFFFFFFFFF)
    struct.pack_into(">Q", h, 16, 1536)
    struct.pack_into(">I", h, 24, 0x00010000)
    struct.pack_into(">I", h, 28, 16)
    struct.pack_into(">I", h, 32, 2 * 1024 * 1024)
    name = parent_name.encode("utf-16-be")[:512]
    h[64:64 + len(name)] = name
    blob = bytearray()
    off = 1024
    for i, (code, data, sectors) in enumerate(locators):
        space = len(data) if not sectors else (len(data) + 511) // 512
        struct.pack_into(">4sIIIQ", h, 576 + 24 * i, code, space, len(data),
                         0, off + len(blob))
        blob += data
        blob += bytes(-len(blob) % 512)
    return bytes(h) + bytes(blob)


def u16le(s):
    return s.encode("utf-16-le")


put("locator/windows.bin", header("parent.vhd", [
    (b"W2ku", u16le("C:\\vms\\disks\\parent.vhd"), 0),
    (b"W2ru", u16le(".\\parent.vhd"), 0),
]))
put("locator/sectors.bin", header("..\\base\\parent.vhd", [
    (b"W2ru", u16le("..\\base\\parent.vhd"), 1),
    (b"Wi2r", b"..\\base\\parent.vhd", 1),
    (b"Wi2k", b"D:\\base\\parent.vhd", 1),
]))
put("locator/mac.bin", header("p\u00e9re \U0001F600.vhd", [
    (b"MacX", b"file://localhost/Users/me/p%C3%A9re.vhd", 0),
    (b"MacX", b"file://./sub/parent.vhd", 0),
    (b"Mac ", b"\x00" * 30 + b"alias", 0),
]))
put("locator/name-only.bin", header("/abs/dir/parent.vhd", []))

# ---- fuzz_nbd: client bytes after the greeting --------------------------

IHAVEOPT = 0x49484156454F5054
REQ = 0x25609513


def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def name(s):
    return struct.pack(">I", len(s)) + s


def go(export=b"", infos=(1, 2, 3), o=7):
    return opt(o, name(export) + struct.pack(">H", len(infos)) +
               b"".join(struct.pack(">H", i) for i in infos))


def meta(o, export=b"", queries=(b"base:allocation",)):
    return opt(o, name(export) + struct.pack(">I", len(queries)) +
               b"".join(name(q) for q in queries))


def req(cmd, off, length, flags=0, cookie=1, data=b""):
    return struct.pack(">IHHQQI", REQ, flags, cmd, cookie, off, length) + data


FLAGS = struct.pack(">I", 3)     # FIXED_NEWSTYLE | NO_ZEROES
K = 1024
rw = (req(0, 0, 8 * K) + req(1, 4 * K, 512, 1, 2, b"\xab" * 512) +
      req(0, 4 * K - 100, 1000, 0, 3) + req(6, 64 * K, 128 * K, 0, 4) +
      req(6, 300 * K, 4 * K, 2 | 16, 5) + req(4, 192 * K, 64 * K, 0, 6) +
      req(5, 0, 64 * K, 0, 7) + req(3, 0, 0, 0, 8))

put("nbd/structured.bin", FLAGS + opt(8) + meta(10) + meta(9, b"rw", (b"base:",))
    + opt(3) + go(o=6) + go() + rw + req(7, 0, 1024 * K, 0, 9) +
    req(7, 0, 1024 * K, 8, 10) + req(0, 0, 64 * K, 4, 11) + req(2, 0, 0))
put("nbd/simple.bin", FLAGS + opt(5) + opt(99, b"x") + go(b"rw", ()) + rw +
    req(0, 1024 * K, 4 * K, 0, 12) + req(0, 2 ** 63, 512, 0, 13) + req(2, 0, 0))
put("nbd/export-name.bin", struct.pack(">I", 1) + opt(1, b"ro") + rw +
    req(2, 0, 0))
put("nbd/readonly-go.bin", FLAGS + opt(8) + meta(10, b"ro") + go(b"ro") +
    rw + req(7, 0, 4096, 0, 14) + req(2, 0, 0))
put("nbd/abort.bin", FLAGS + go(b"nosuch") + opt(10, b"\x00" * 3) + opt(2))


# ---- fuzz_open: a VHDX with a log to replay (MS-VHDX v1.0) --------------
# 4 MiB, the most fuzz_open takes: identifier, two headers naming a log,
# two region tables, the log at 1 MiB (one entry: a BAT page rewritten),
# the BAT at 2 MiB, the metadata region at 3 MiB; an 8 MiB disk of 1 MiB
# blocks whose block 0 the replayed BAT marks PAYLOAD_BLOCK_ZERO.

def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def sealed(b):
    b[4:8] = struct.pack("<I", crc32c(bytes(b)))
    return b


def msguid(s):
    import uuid
    return uuid.UUID(s).bytes_le


def vhdx_seed():
    M = 1 << 20
    img = bytearray(4 * M)
    img[0:8] = b"vhdxfile"
    log_guid = msguid("11111111-2222-3333-4444-555555555555")
    for i, off in enumerate((64 * K, 128 * K)):
        h = bytearray(4096)
        h[0:4] = b"head"
        struct.pack_into("<Q", h, 8, i + 1)
        h[48:64] = log_guid
        struct.pack_into("<HHIQ", h, 64, 0, 1, M, M)
        img[off:off + 4096] = sealed(h)
    r = bytearray(64 * K)
    r[0:4] = b"regi"
    struct.pack_into("<I", r, 8, 2)
    r[16:32] = msguid("2DC27766-F623-4200-9D64-115E9BFD4A08")
    struct.pack_into("<QII", r, 32, 2 * M, M, 1)
    r[48:64] = msguid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    struct.pack_into("<QII", r, 64, 3 * M, M, 1)
    sealed(r)
    img[192 * K:256 * K] = r
    img[256 * K:320 * K] = r
    m = 3 * M
    img[m:m + 8] = b"metadata"
    items = [("CAA16737-FA36-4D43-B3B6-33F0AA44E76B", struct.pack("<II", M, 0)),
             ("2FA54224-CD1B-4876-B211-5DBED83BF4B8", struct.pack("<Q", 8 * M)),
             ("BECA12AB-B2E6-4523-93EF-C309E000C746", b"\x42" * 16),
             ("8141BF1D-A96F-4709-BA47-F233A8FAAB5F", struct.pack("<I", 512)),
             ("CDA348C7-445D-4471-9CC9-E9885251C556", struct.pack("<I", 4096))]
    struct.pack_into("<H", img, m + 10, len(items))
    off = 64 * K
    for i, (g, data) in enumerate(items):
        e = m + 32 + 32 * i
        img[e:e + 16] = msguid(g)
        struct.pack_into("<III", img, e + 16, off, len(data), 4)
        img[m + off:m + off + len(data)] = data
        off += 4096
    # The log entry: header + one descriptor in sector 0, one data sector.
    page = bytearray(4096)
    struct.pack_into("<Q", page, 0, 2)            # block 0: ZERO
    e = bytearray(8192)
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, 8192, 0, 1, 1, 0,
                     log_guid, 4 * M, 4 * M)
    struct.pack_into("<4s4s8sQQ", e, 64, b"desc", bytes(page[4092:]),
                     bytes(page[:8]), 2 * M, 1)
    struct.pack_into("<4sI", e, 4096, b"data", 0)
    e[4096 + 8:4096 + 4092] = page[8:4092]
    struct.pack_into("<I", e, 4096 + 4092, 1)
    img[M:M + 8192] = sealed(e)
    return bytes(img)


put("open/vhdx-log.vhdx", vhdx_seed())
