#!/usr/bin/python3
# Edges where other NBD servers had bugs (raw socket, no client library):
#   edges.py SOCKET SIZE        SIZE: the export's size (a 2040 GiB image)
# - unknown options (NBD_OPT_EXTENDED_HEADERS, which newer libnbd sends by
#   default) get ERR_UNSUP and negotiation goes on;
# - a repeated NBD_OPT_STRUCTURED_REPLY gets ERR_INVALID, and 1,000 of
#   them do not end the session;
# - BLOCK_STATUS of the maximum length (2^32 - 1) at the start and at the
#   end of the image, for both contexts, with and without REQ_ONE;
# - WRITE_ZEROES of 128 MiB and of almost 4 GiB.
import socket
import struct
import sys

SOCK, SIZE = sys.argv[1], int(sys.argv[2])
IHAVEOPT = 0x49484156454F5054
ERR = 1 << 31
OPT_GO, OPT_SR, OPT_SET_META, OPT_EXTENDED_HEADERS = 7, 8, 10, 11
CMD_READ, CMD_WRITE, CMD_WZ, CMD_BS = 0, 1, 6, 7
F_REQ_ONE = 8
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(SOCK)


def recv(n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise SystemExit("FAIL: server closed the connection")
        b += x
    return b


def replies(opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
    out = []
    while True:
        _, o, typ, n = struct.unpack(">QIII", recv(20))
        assert o == opt, "reply to option %d, expected %d" % (o, opt)
        out.append((typ, recv(n)))
        if typ == 1 or typ & ERR:
            return out


recv(18)
s.sendall(struct.pack(">I", 3))
r = replies(OPT_EXTENDED_HEADERS)
check(len(r) == 1 and r[0][0] == ERR + 1, "EXTENDED_HEADERS: %r" % r)
r = replies(OPT_SR)
check(r == [(1, b"")], "first STRUCTURED_REPLY: %r" % r)
r = replies(OPT_SR)
check(len(r) == 1 and r[0][0] == ERR + 3, "repeated STRUCTURED_REPLY: %r" % r)
# Many repeats: each refused, the session goes on.
s.sendall(struct.pack(">QII", IHAVEOPT, OPT_SR, 0) * 1000)
bad = 0
for _ in range(1000):
    _, o, typ, n = struct.unpack(">QIII", recv(20))
    recv(n)
    bad += typ != ERR + 3
check(bad == 0, "%d of 1000 repeated STRUCTURED_REPLY not ERR_INVALID" % bad)
r = replies(OPT_EXTENDED_HEADERS, b"x")
check(r[0][0] == ERR + 1, "EXTENDED_HEADERS with data: %r" % r)
qs = [b"base:allocation", b"qemu:allocation-depth"]
data = struct.pack(">I", 0) + struct.pack(">I", len(qs)) + b"".join(
    struct.pack(">I", len(q)) + q for q in qs)
r = replies(OPT_SET_META, data)
ids = {d[4:]: struct.unpack(">I", d[:4])[0] for t, d in r if t == 4}
check(set(ids) == set(qs) and r[-1][0] == 1, "SET_META_CONTEXT: %r" % r)
r = replies(OPT_GO, struct.pack(">IH", 0, 0))
check(r[-1][0] == 1, "GO: %r" % r)
exp = [d for t, d in r if t == 3 and d[:2] == b"\0\0"]
check(exp and struct.unpack(">Q", exp[0][2:10])[0] == SIZE, "export size")

cookie = 0


def request(typ, off, length, flags=0, payload=b""):
    global cookie
    cookie += 1
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off, length) + payload)
    chunks = []
    while True:
        magic = struct.unpack(">I", recv(4))[0]
        if magic == 0x67446698:
            err, ck = struct.unpack(">IQ", recv(12))
            assert ck == cookie
            return err, chunks
        assert magic == 0x668e33ef, "bad magic %x" % magic
        fl, typ_, ck, n = struct.unpack(">HHQI", recv(16))
        assert ck == cookie
        p = recv(n)
        chunks.append((typ_, p))
        if fl & 1:
            err = struct.unpack(">I", p[:4])[0] if typ_ & 0x8000 else 0
            return err, chunks


def block_status(off, length, flags=0):
    err, chunks = request(CMD_BS, off, length, flags)
    check(err == 0, "BLOCK_STATUS %d+%d flags %d: error %d" % (off, length, flags, err))
    if err:
        raise SystemExit(1)
    out = {}
    for typ, p in chunks:
        check(typ == 5, "chunk type %d" % typ)
        ctx = struct.unpack(">I", p[:4])[0]
        ext = [struct.unpack(">II", p[i:i + 8]) for i in range(4, len(p), 8)]
        total = sum(e[0] for e in ext)
        check(ext and all(e[0] > 0 for e in ext), "empty extent in %r" % ext[:4])
        check(0 < total <= length, "extents of %d+%d sum to %d" % (off, length, total))
        if flags & F_REQ_ONE:
            check(len(ext) == 1, "REQ_ONE gave %d extents" % len(ext))
        out[ctx] = ext
    check(set(out) == set(ids.values()), "contexts answered: %r" % list(out))
    return out


MAXLEN = 0xffffffff
a, d = ids[b"base:allocation"], ids[b"qemu:allocation-depth"]
for off in (0, SIZE - MAXLEN, SIZE // 2 + 512):
    for fl in (0, F_REQ_ONE):
        out = block_status(off, MAXLEN, fl)
        check(out[a][0][1] == 3 and out[d][0][1] == 0,
              "fresh image at %d not a hole of depth 0: %r" % (off, out))

# Data far out, then the maximum length over it.
far = SIZE - (1 << 33)
err, _ = request(CMD_WRITE, far + 4096, 4096, 0, b"\x5a" * 4096)
check(err == 0, "write at %d: %d" % (far, err))
out = block_status(far - (1 << 31), MAXLEN)
ext = out[a]
check(ext[0] == ((1 << 31), 3), "first extent before the data: %r" % ext[:3])
check(ext[1][1] == 0, "data extent: %r" % ext[:3])
check(out[d][1][1] == 1, "depth of the data: %r" % out[d][:3])

# WRITE_ZEROES of 128 MiB over the data, then of almost 4 GiB.
err, _ = request(CMD_WZ, far, 128 << 20)
check(err == 0, "WRITE_ZEROES 128 MiB: %d" % err)
err, chunks = request(CMD_READ, far + 4096, 4096)
got = b"".join(p[8:] for t, p in chunks if t == 1)
holes = [p for t, p in chunks if t == 2]
check(err == 0 and (got == b"\0" * 4096 or holes), "zeroed data reads back: %r" % got[:8])
err, _ = request(CMD_WZ, 1 << 30, MAXLEN - 511)
check(err == 0, "WRITE_ZEROES of %d: %d" % (MAXLEN - 511, err))
err, _ = request(CMD_WZ, SIZE - (256 << 20), 256 << 20, 16)   # FAST_ZERO
check(err in (0, 95), "WRITE_ZEROES FAST_ZERO 256 MiB: %d" % err)
out = block_status(0, 4096)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 0, 0, 0))
if failures:
    sys.exit(1)
print("edges: all checks passed")
