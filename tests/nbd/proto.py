#!/usr/bin/python3
# Raw-socket NBD conformance checks against vhdnbd (no client library, so
# we can send what real clients never would).  Usage:
#   proto.py SOCKET EXPORT SIZE
# The export must be writable, at least 8 MiB, and freshly created.
# Imported (tls.py), it gives the wire constants, check() and Client, and
# runs nothing.
import socket
import struct
import sys
import time

SOCK, EXPORT, SIZE = None, b"", 0       # main() sets them from argv

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
REPMAGIC = 0x3e889045565a9
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_SR, OPT_LIST_META, OPT_SET_META = 6, 7, 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID = ERR + 1, ERR + 2, ERR + 3
REP_ERR_TLS_REQD, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG = ERR + 5, ERR + 6, ERR + 9
SIMPLE_MAGIC, STRUCT_MAGIC = 0x67446698, 0x668e33ef
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE = 0, 1, 2, 3, 4, 5
CMD_WZ, CMD_BS = 6, 7
F_FUA, F_NO_HOLE, F_DF, F_REQ_ONE, F_FAST_ZERO = 1, 2, 4, 8, 16
EPERM, EIO, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP = 1, 5, 22, 28, 75, 95

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


class Closed(Exception):
    pass


def name_data(name=b"", queries=()):
    """An export name and meta context queries (LIST/SET_META_CONTEXT)."""
    d = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    for q in queries:
        d += struct.pack(">I", len(q)) + q
    return d


def info_data(name=b"", reqs=(1, 2, 3)):
    """An export name and the information requests (INFO, GO)."""
    return (struct.pack(">I", len(name)) + name +
            struct.pack(">H", len(reqs)) + b"".join(struct.pack(">H", r) for r in reqs))


class Client:
    def __init__(self, addr=None, cflags=3, timeout=10):
        """Connects to addr (a socket path, or (host, port); default
        SOCK) and takes the fixed newstyle greeting."""
        addr = SOCK if addr is None else addr
        fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
        self.s = socket.socket(fam)
        self.s.settimeout(timeout)
        self.s.connect(addr)
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
        assert hflags & 3 == 3, "server lacks FIXED_NEWSTYLE|NO_ZEROES"
        self.s.sendall(struct.pack(">I", cflags))
        self.structured = False
        self.cookie = 0

    def recv(self, n):
        b = b""
        while len(b) < n:
            x = self.s.recv(n - len(b))
            if not x:
                raise Closed()
            b += x
        return b

    def closed(self):
        """True if the server closed the connection (EOF within 5 s)."""
        self.s.settimeout(5)
        try:
            while True:
                x = self.s.recv(65536)
                if not x:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def closed_within(self, secs):
        """Read until EOF; the bytes read, or None if still open."""
        self.s.settimeout(secs)
        got = b""
        try:
            while True:
                x = self.s.recv(65536)
                if not x:
                    return got
                got += x
        except (socket.timeout, TimeoutError):
            return None
        except OSError:
            return got

    def send_opt(self, opt, data=b"", length=None):
        n = len(data) if length is None else length
        self.s.sendall(struct.pack(">QII", IHAVEOPT, opt, n) + data)

    def reply(self, opt):
        magic, o, typ, n = struct.unpack(">QIII", self.recv(20))
        assert magic == REPMAGIC and o == opt, "bad option reply %x %d" % (magic, o)
        return typ, self.recv(n)

    def replies(self, opt, data=b""):
        """Send an option, collect replies up to ACK or an error."""
        self.send_opt(opt, data)
        out = []
        while True:
            typ, d = self.reply(opt)
            out.append((typ, d))
            if typ == REP_ACK or typ & ERR:
                return out

    def go(self, name=None, structured=False, meta=False):
        name = EXPORT if name is None else name
        if structured:
            r = self.replies(OPT_SR)
            assert r[-1][0] == REP_ACK
            self.structured = True
        if meta:
            q = b"base:allocation"
            r = self.replies(OPT_SET_META, name_data(name, [q]))
            assert r[0][0] == REP_META and r[0][1][4:] == q and r[-1][0] == REP_ACK, r
        r = self.replies(OPT_GO, info_data(name))
        assert r[-1][0] == REP_ACK, r
        return r

    def request(self, typ, off=0, length=0, flags=0, data=b""):
        self.cookie += 1
        self.s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, self.cookie,
                                   off, length) + data)
        return self.cookie

    def get_reply(self, read_len=None):
        """One whole reply: (cookie, error, data, chunks)."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == SIMPLE_MAGIC:
            err, cookie = struct.unpack(">IQ", self.recv(12))
            data = self.recv(read_len) if (read_len and err == 0) else b""
            return cookie, err, data, None
        assert magic == STRUCT_MAGIC, "bad reply magic %x" % magic
        chunks, err, data = [], 0, b""
        while True:
            flags, typ, cookie, n = struct.unpack(">HHQI", self.recv(16))
            payload = self.recv(n)
            chunks.append((typ, flags, payload))
            if typ == 1:
                data += payload[8:]
            elif typ & 0x8000:
                err = struct.unpack(">I", payload[:4])[0]
            if flags & 1:
                return cookie, err, data, chunks
            assert struct.unpack(">I", self.recv(4))[0] == STRUCT_MAGIC

    def cmd(self, typ, off=0, length=0, flags=0, data=b""):
        c = self.request(typ, off, length, flags, data)
        r = self.get_reply(length if typ == CMD_READ else None)
        assert r[0] == c, "cookie mismatch"
        return r


def still_serves(what):
    """A fresh client can negotiate and read."""
    try:
        c = Client()
        c.go()
        _, err, data, _ = c.cmd(CMD_READ, 0, 4096)
        check(err == 0 and len(data) == 4096, what + ": fresh client not served")
        c.request(CMD_DISC)
    except Exception as e:  # noqa
        check(False, "%s: server no longer serves (%r)" % (what, e))


def main():
    global SOCK, EXPORT, SIZE
    SOCK, EXPORT, SIZE = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])

    # ---- negotiation ---------------------------------------------------------
    c = Client()
    r = c.replies(0x1234, b"some data")
    check(r == [(REP_ERR_UNSUP, r[0][1])], "unknown option: %r" % r)
    r = c.replies(OPT_STARTTLS)
    check(r[0][0] == REP_ERR_POLICY, "STARTTLS: %r" % r)
    r = c.replies(OPT_LIST)
    names = [d[4:4 + struct.unpack(">I", d[:4])[0]] for t, d in r if t == REP_SERVER]
    check(EXPORT in names and r[-1][0] == REP_ACK, "LIST: %r" % r)
    r = c.replies(OPT_LIST, b"x")
    check(r[0][0] == REP_ERR_INVALID, "LIST with data: %r" % r)
    r = c.replies(OPT_SET_META, struct.pack(">II", 0, 0))
    check(r[0][0] == REP_ERR_INVALID, "SET_META_CONTEXT before STRUCTURED_REPLY: %r" % r)
    r = c.replies(OPT_INFO, info_data(b"no-such-export"))
    check(r[0][0] == REP_ERR_UNKNOWN, "INFO unknown export: %r" % r)
    r = c.replies(OPT_INFO, info_data(EXPORT)[:-1])
    check(r[0][0] == REP_ERR_INVALID, "INFO with bad length: %r" % r)
    # Options too large: skipped with ERR_TOO_BIG, negotiation continues.
    c.send_opt(0x4321, b"\0" * (1 << 20))
    typ, _ = c.reply(0x4321)
    check(typ in (REP_ERR_TOO_BIG, REP_ERR_UNSUP), "1 MiB option: %x" % typ)
    r = c.replies(OPT_SR)
    check(r == [(REP_ACK, b"")], "STRUCTURED_REPLY: %r" % r)
    # LIST_META_CONTEXT: empty query lists base:allocation with id 0.
    r = c.replies(OPT_LIST_META, name_data(EXPORT))
    check(r[0][0] == REP_META and r[0][1][4:] == b"base:allocation" and r[-1][0] == REP_ACK,
          "LIST_META_CONTEXT: %r" % r)
    q = b"x-unknown:thing"
    r = c.replies(OPT_SET_META, name_data(EXPORT, [q]))
    check(r == [(REP_ACK, b"")], "SET_META_CONTEXT unknown context: %r" % r)
    # INFO and GO give the same answers (same requests, same state).
    info = c.replies(OPT_INFO, info_data(EXPORT, (3, 1, 2)))
    go = c.replies(OPT_GO, info_data(EXPORT, (3, 1, 2)))
    check(info == go, "INFO %r != GO %r" % (info, go))
    exp = [d for t, d in info if t == REP_INFO and d[:2] == b"\0\0"]
    check(len(exp) == 1 and struct.unpack(">QH", exp[0][2:])[0] == SIZE, "INFO_EXPORT size: %r" % exp)
    flags = struct.unpack(">QH", exp[0][2:])[1]
    for bit, name in [(0, "HAS_FLAGS"), (2, "SEND_FLUSH"), (3, "SEND_FUA"), (5, "SEND_TRIM"),
                      (6, "SEND_WRITE_ZEROES"), (7, "SEND_DF"), (8, "CAN_MULTI_CONN"),
                      (10, "SEND_CACHE"), (11, "SEND_FAST_ZERO")]:
        check(flags & (1 << bit), "transmission flag %s missing (%#x)" % (name, flags))
    check(not flags & 2, "READ_ONLY set on a writable export")
    bs = [d for t, d in info if t == REP_INFO and d[:2] == b"\0\3"]
    check(bs and struct.unpack(">III", bs[0][2:]) == (1, 4096, 32 << 20), "BLOCK_SIZE: %r" % bs)
    c.request(CMD_DISC)
    check(c.closed(), "DISC did not close")

    # Unknown client flags end negotiation.
    c = Client(cflags=0x80 | 3)
    check(c.closed(), "unknown client flags accepted")
    # ABORT: acknowledged, then closed.
    c = Client()
    r = c.replies(OPT_ABORT)
    check(r == [(REP_ACK, b"")], "ABORT: %r" % r)
    check(c.closed(), "ABORT did not close")
    # Absurd option length: the server drops the connection rather than read it.
    c = Client()
    c.send_opt(0x4321, b"", length=0xffffffff)
    check(c.closed(), "4 GiB option length not refused")
    # EXPORT_NAME with and without NO_ZEROES.
    for cf, n in ((3, 10), (1, 134)):
        c = Client(cflags=cf)
        c.send_opt(OPT_EXPORT_NAME, EXPORT)
        d = c.recv(n)
        check(struct.unpack(">Q", d[:8])[0] == SIZE and d[10:] == b"\0" * (n - 10),
              "EXPORT_NAME reply with client flags %d" % cf)
        _, err, data, _ = c.cmd(CMD_READ, 0, 512)
        check(err == 0 and len(data) == 512, "read after EXPORT_NAME")
        c.request(CMD_DISC)
    # EXPORT_NAME of an unknown export: the server can only close.
    c = Client()
    c.send_opt(OPT_EXPORT_NAME, b"no-such-export")
    check(c.closed(), "EXPORT_NAME of unknown export not closed")

    # ---- transmission, simple replies --------------------------------------------
    c = Client()
    c.go()
    pat = bytes(range(256)) * 16
    _, err, _, _ = c.cmd(CMD_WRITE, 8192, 4096, F_FUA, pat)
    check(err == 0, "FUA write: %d" % err)
    _, err, data, _ = c.cmd(CMD_READ, 8192, 4096)
    check(err == 0 and data == pat, "read back")
    _, err, _, _ = c.cmd(CMD_READ, SIZE - 512, 1024)
    check(err == EINVAL, "read past end: %d" % err)
    _, err, _, _ = c.cmd(CMD_READ, (1 << 64) - 512, 1024)
    check(err == EINVAL, "read with wrapping offset: %d" % err)
    _, err, _, _ = c.cmd(CMD_WRITE, SIZE - 512, 1024, 0, b"x" * 1024)
    check(err == ENOSPC, "write past end: %d" % err)
    _, err, _, _ = c.cmd(CMD_TRIM, SIZE, 512)
    check(err == EINVAL, "trim past end: %d" % err)
    _, err, _, _ = c.cmd(CMD_WZ, SIZE - 512, 4096)
    check(err in (ENOSPC, EINVAL), "write zeroes past end: %d" % err)
    _, err, _, _ = c.cmd(CMD_READ, 0, 33 << 20)
    check(err in (EOVERFLOW, EINVAL), "33 MiB read: %d" % err)
    _, err, data, _ = c.cmd(CMD_READ, 0, 32 << 20) if SIZE >= 32 << 20 else (0, 0, b"x" * (32 << 20), 0)
    check(err == 0 and len(data) == 32 << 20, "32 MiB read")
    _, err, _, _ = c.cmd(99, 0, 512)
    check(err == EINVAL, "unknown command: %d" % err)
    _, err, _, _ = c.cmd(CMD_READ, 0, 512, 0x80)
    check(err == EINVAL, "unknown command flag: %d" % err)
    _, err, _, _ = c.cmd(CMD_BS, 0, 512)
    check(err == EINVAL, "BLOCK_STATUS without a context: %d" % err)
    _, err, _, _ = c.cmd(CMD_CACHE, 0, 65536)
    check(err == 0, "CACHE: %d" % err)
    _, err, _, _ = c.cmd(CMD_FLUSH)
    check(err == 0, "FLUSH: %d" % err)
    # Write zeroes with NO_HOLE and trim: both read back as zeros.
    _, err, _, _ = c.cmd(CMD_WZ, 8192, 1024, F_NO_HOLE)
    _, err2, _, _ = c.cmd(CMD_TRIM, 9216, 1024)
    _, err3, data, _ = c.cmd(CMD_READ, 8192, 4096)
    check(err == 0 and err2 == 0 and err3 == 0 and data == b"\0" * 2048 + pat[2048:],
          "write zeroes / trim read back (%d %d %d)" % (err, err2, err3))
    # FAST_ZERO where zeroing needs data writes: fails fast with ENOTSUP and
    # changes nothing.
    _, err, _, _ = c.cmd(CMD_WZ, 10240, 512, F_FAST_ZERO)
    _, _, data, _ = c.cmd(CMD_READ, 8192, 4096)
    check(err in (0, ENOTSUP), "FAST_ZERO: %d" % err)
    check(data[2048:2560] == (b"\0" * 512 if err == 0 else pat[2048:2560]), "FAST_ZERO changed data")

    # Pipelined requests then DISC in one send: every request is answered.
    n = 40
    buf = b""
    for i in range(n):
        buf += struct.pack(">IHHQQI", 0x25609513, 0, CMD_READ, 1000 + i, i * 4096, 4096)
    buf += struct.pack(">IHHQQI", 0x25609513, 0, CMD_DISC, 9999, 0, 0)
    c.s.sendall(buf)
    seen = set()
    try:
        for i in range(n):
            cookie, err, data, _ = c.get_reply(4096)
            check(err == 0 and len(data) == 4096, "pipelined read %d" % cookie)
            seen.add(cookie)
    except Closed:
        pass
    check(seen == set(range(1000, 1000 + n)), "DISC lost %d replies" % (n - len(seen)))
    check(c.closed(), "no close after DISC")

    # ---- structured replies ----------------------------------------------------------
    c = Client()
    c.go(structured=True, meta=True)
    _, err, data, chunks = c.cmd(CMD_READ, 8192, 8192, F_DF)
    check(err == 0 and len(chunks) == 1 and chunks[0][0] == 1 and chunks[0][1] & 1 and
          struct.unpack(">Q", chunks[0][2][:8])[0] == 8192 and len(data) == 8192,
          "structured DF read: %r" % [(t, f, len(p)) for t, f, p in chunks])
    _, err, data, chunks = c.cmd(CMD_READ, SIZE, 512)
    check(err == EINVAL and chunks and chunks[-1][0] & 0x8000, "structured read error: %d" % err)
    _, err, _, chunks = c.cmd(CMD_BS, 0, SIZE, F_REQ_ONE)
    check(err == 0 and len(chunks) == 1 and chunks[0][0] == 5 and len(chunks[0][2]) == 12,
          "BLOCK_STATUS REQ_ONE: %r" % chunks)
    # Not REQ_ONE: descriptors inside the request, multiples of 512 but the last.
    for off, ln in ((0, SIZE), (1000, 1 << 20), (SIZE - 4096, 4096)):
        _, err, _, chunks = c.cmd(CMD_BS, off, ln)
        p = chunks[0][2]
        desc = [struct.unpack(">II", p[i:i + 8]) for i in range(4, len(p), 8)]
        total = sum(d[0] for d in desc)
        check(len(chunks) == 1 and struct.unpack(">I", p[:4])[0] != 0, "context id 0 in BLOCK_STATUS")
        check(err == 0 and desc and 0 < total <= ln, "BLOCK_STATUS %d+%d: %r" % (off, ln, desc))
        check(all(d[0] > 0 for d in desc), "zero-length descriptor")
        check(all((off + sum(x[0] for x in desc[:i + 1])) % 512 == 0 for i in range(len(desc) - 1)),
              "descriptor ends not sector aligned: %r" % desc)
    # Written region is data, a far-away unallocated one is a hole reading as zeros.
    _, err, _, chunks = c.cmd(CMD_BS, 8192, 512, F_REQ_ONE)
    check(err == 0 and struct.unpack(">II", chunks[0][2][4:12])[1] & 1 == 0, "written sector not data")
    _, err, _, chunks = c.cmd(CMD_BS, SIZE - (1 << 20), 512, F_REQ_ONE)
    check(err == 0 and struct.unpack(">II", chunks[0][2][4:12])[1] == 3, "unwritten sector not hole|zero")
    _, err, _, _ = c.cmd(CMD_BS, SIZE, 512)
    check(err == EINVAL, "BLOCK_STATUS past end: %d" % err)
    c.request(CMD_DISC)

    # 300 structured reads in one send, then DISC: hole reads are answered by
    # the reading thread in batches, the rest by workers.  Each request gets
    # exactly one reply with its own offset and length: holes as one hole
    # chunk, DF reads and written data as one data chunk, a read past the end
    # as an error; none is lost at DISC.  Runs of more than 64 hole reads
    # fill the reply buffer (2 KiB) mid-batch.
    c = Client()
    c.go(structured=True)
    want, buf = {}, b""
    for i in range(300):
        off, ln, fl = (SIZE // 2 + i * 8192) & ~511, 512 * (1 + i % 16), 0
        kind = "hole"
        if i in (3, 150):
            fl, kind = F_DF, "data"
        elif i in (5, 290):
            off, kind = 8192, "data"            # written above
        elif i in (7, 230):
            off, kind = SIZE, "error"
        want[5000 + i] = (kind, off, ln)
        buf += struct.pack(">IHHQQI", 0x25609513, fl, CMD_READ, 5000 + i, off, ln)
    buf += struct.pack(">IHHQQI", 0x25609513, 0, CMD_DISC, 9999, 0, 0)
    c.s.sendall(buf)
    got = {}
    try:
        for i in range(300):
            cookie, err, data, chunks = c.get_reply()
            check(cookie not in got, "second reply to %d" % cookie)
            got[cookie] = (err, data, chunks)
    except Closed:
        pass
    check(set(got) == set(want), "batched reads: %d of 300 answered" % len(got))
    for cookie, (kind, off, ln) in want.items():
        if cookie not in got:
            continue
        err, data, chunks = got[cookie]
        if kind == "error":
            check(err == EINVAL, "batched read past end: %d" % err)
        elif kind == "hole":
            check(err == 0 and len(chunks) == 1 and chunks[0][0] == 2 and
                  struct.unpack(">QI", chunks[0][2]) == (off, ln),
                  "batched hole read %d: %r" % (cookie, chunks))
        else:
            check(err == 0 and len(chunks) == 1 and chunks[0][0] == 1 and len(data) == ln and
                  struct.unpack(">Q", chunks[0][2][:8])[0] == off,
                  "batched data read %d" % cookie)
    check(c.closed(), "no close after DISC (batched reads)")

    # A hole read followed by a WRITE whose payload is late: the read's reply
    # must not wait for the payload.
    c = Client()
    c.go(structured=True)
    c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, CMD_READ, 71, SIZE // 2, 4096) +
                struct.pack(">IHHQQI", 0x25609513, 0, CMD_WRITE, 72, SIZE // 2 + 8192, 4096))
    c.s.settimeout(3)
    try:
        cookie, err, _, chunks = c.get_reply()
        check(cookie == 71 and err == 0 and chunks[0][0] == 2, "hole read before late payload")
    except (socket.timeout, TimeoutError):
        check(False, "hole read reply held back until a WRITE payload arrived")
    c.s.settimeout(10)
    c.s.sendall(b"\x5a" * 4096)
    cookie, err, _, _ = c.get_reply()
    check(cookie == 72 and err == 0, "late-payload write: %d" % err)
    c.request(CMD_DISC)

    # ---- hostile clients ----------------------------------------------------------------
    c = Client()
    c.go()
    c.s.sendall(b"\xde\xad\xbe\xef" * 16)
    check(c.closed(), "bad request magic not closed")
    still_serves("after bad magic")
    c = Client()
    c.s.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 100)
    check(c.closed(), "garbage during negotiation not closed")
    still_serves("after garbage")
    c = Client()
    c.go()
    c.request(CMD_WRITE, 0, 65536, 0, b"\1" * 1000)   # payload cut short
    c.s.close()
    still_serves("after a client vanished mid-request")
    c = Client()
    c.go()
    c.request(CMD_WRITE, 0, 64 << 20)                  # over the maximum
    check(c.closed(), "64 MiB write not refused")
    c = Client()
    c.go()
    for i in range(16):
        c.request(CMD_READ, 0, 1 << 20)                # then vanish without reading
    c.s.close()
    time.sleep(0.2)
    still_serves("after a client vanished with replies pending")

    if failures:
        sys.exit("%d failures" % len(failures))
    print("all protocol checks passed")


if __name__ == "__main__":
    main()
