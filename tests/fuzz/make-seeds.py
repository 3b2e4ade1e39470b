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
