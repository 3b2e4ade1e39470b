#!/usr/bin/python3
# Raw-socket checks of vhdnbd's NBD_OPT_STARTTLS (tests/nbd/tls.sh).
#   tls.py require SOCKET          FORCEDTLS: plaintext gets nothing
#   tls.py starttls HOST PORT DIR  STARTTLS rules, with X.509 from DIR
#   tls.py stall SOCKET CMD...     a stalled handshake is dropped in time,
#                                  and CMD succeeds meanwhile
#   tls.py inject SOCKET           plaintext sent after STARTTLS is refused
import os
import ssl
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proto import (  # noqa: E402  (the wire helpers, shared with proto.py)
    IHAVEOPT, REPMAGIC, OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS,
    OPT_INFO, OPT_GO, OPT_SR, OPT_LIST_META, OPT_SET_META, REP_ACK, REP_META,
    REP_ERR_INVALID, REP_ERR_TLS_REQD, STRUCT_MAGIC, failures, check,
    name_data, info_data as _info_data, Client as _Client)


def Client(addr):
    """proto.py's client, with the longer timeout a TLS handshake wants."""
    return _Client(addr, timeout=20)


def info_data(name=b""):
    """INFO/GO data asking for no information items."""
    return _info_data(name, ())


def require(sock):
    c = Client(sock)
    for opt, data in [(OPT_LIST, b""), (OPT_INFO, info_data()),
                      (OPT_GO, info_data()), (OPT_SR, b""),
                      (OPT_LIST_META, name_data(b"", [b"base:allocation"])),
                      (OPT_SET_META, name_data(b"", [b"base:allocation"])),
                      (42, b"x" * 100), (OPT_GO, info_data(b"disk"))]:
        r = c.replies(opt, data)
        check(len(r) == 1 and r[0][0] == REP_ERR_TLS_REQD,
              "option %d before TLS: %r" % (opt, r))
    # STARTTLS with data is malformed, not a TLS_REQD case.
    r = c.replies(OPT_STARTTLS, b"junk")
    check(r[0][0] == REP_ERR_INVALID, "STARTTLS with data: %r" % r)
    r = c.replies(OPT_ABORT)
    check(r[0][0] == REP_ACK, "ABORT before TLS: %r" % r)
    # EXPORT_NAME cannot be refused: the connection ends, no export data.
    c = Client(sock)
    c.send_opt(OPT_EXPORT_NAME, b"disk")
    got = c.closed_within(10)
    check(got == b"", "EXPORT_NAME before TLS got %r" % got)
    # Nor does skipping straight to requests reach any data.
    c = Client(sock)
    c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 1, 0, 4096))
    got = c.closed_within(10)
    check(got == b"", "a request instead of options got %r" % got)


def tls_wrap(c, certdir):
    ctx = ssl.create_default_context(cafile=certdir + "/ca-cert.pem")
    ctx.load_cert_chain(certdir + "/client-cert.pem",
                        certdir + "/client-key.pem")
    c.s = ctx.wrap_socket(c.s, server_hostname="localhost")


def starttls(host, port, certdir):
    c = Client((host, port))
    r = c.replies(OPT_SR)
    check(r[0][0] == REP_ACK, "plaintext STRUCTURED_REPLY with --tls=on: %r" % r)
    r = c.replies(OPT_STARTTLS)
    check(r == [(REP_ACK, b"")], "STARTTLS: %r" % r)
    tls_wrap(c, certdir)
    # What was agreed in plaintext is forgotten (proto.md).
    r = c.replies(OPT_SET_META, name_data(b"", [b"base:allocation"]))
    check(r[-1][0] == REP_ERR_INVALID,
          "structured replies survived STARTTLS: %r" % r)
    r = c.replies(OPT_STARTTLS)
    check(r[0][0] == REP_ERR_INVALID, "STARTTLS inside TLS: %r" % r)
    r = c.replies(OPT_SR)
    check(r[0][0] == REP_ACK, "STRUCTURED_REPLY inside TLS: %r" % r)
    r = c.replies(OPT_SET_META, name_data(b"", [b"base:allocation"]))
    check([t for t, _ in r] == [REP_META, REP_ACK], "SET_META inside TLS: %r" % r)
    r = c.replies(OPT_GO, info_data())
    check(r[-1][0] == REP_ACK, "GO inside TLS: %r" % r)
    # A READ and its structured reply inside TLS.
    c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 7, 0, 65536))
    magic, flags, typ, cookie, ln = struct.unpack(">IHHQI", c.recv(20))
    check(magic == STRUCT_MAGIC and cookie == 7, "READ reply inside TLS")
    c.recv(ln)
    queued(c)
    c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 8, 0, 0))


def queued(c, n=32, size=1 << 20):
    """Replies the client does not read for a while: far more than the
    socket buffers hold, so the server queues them and resends GnuTLS's
    held record once there is room.  Each must arrive whole."""
    for i in range(n):
        c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 100 + i,
                                (i % 4) * size, size))
    time.sleep(1)
    got = {}
    done = set()
    while len(done) < n:
        magic, flags, typ, cookie, ln = struct.unpack(">IHHQI", c.recv(20))
        if magic != STRUCT_MAGIC:
            check(False, "queued READ over TLS: bad magic %#x" % magic)
            return
        body = c.recv(ln)
        if typ == 1:            # OFFSET_DATA: offset + data
            got[cookie] = got.get(cookie, 0) + ln - 8
        elif typ == 2:          # OFFSET_HOLE: offset + length
            got[cookie] = got.get(cookie, 0) + struct.unpack(">QI", body)[1]
        elif typ != 0:
            check(False, "queued READ over TLS: chunk type %d" % typ)
        if flags & 1:
            done.add(cookie)
    check(all(got.get(100 + i) == size for i in range(n)),
          "queued READs over TLS came back short: %r" % got)


def stall(sock, cmd):
    c = Client(sock)
    r = c.replies(OPT_STARTTLS)
    check(r == [(REP_ACK, b"")], "STARTTLS: %r" % r)
    t0 = time.monotonic()
    # Another client is served while this handshake stalls.
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    check(p.returncode == 0, "%s failed during a stalled handshake" % cmd)
    got = c.closed_within(20)
    took = time.monotonic() - t0
    check(got is not None, "stalled handshake still open after %.0f s" % took)
    check(took < 16, "stalled handshake dropped only after %.1f s" % took)


def inject(sock):
    c = Client(sock)
    # STARTTLS and a plaintext LIST in one segment, before any reply.
    c.s.sendall(struct.pack(">QII", IHAVEOPT, OPT_STARTTLS, 0) +
                struct.pack(">QII", IHAVEOPT, OPT_LIST, 0))
    got = c.closed_within(20)
    check(got is not None, "connection still open after injected plaintext")
    ack = struct.pack(">QIII", REPMAGIC, OPT_STARTTLS, REP_ACK, 0)
    check(got in (b"", ack), "injected plaintext answered: %r" % got)


def main():
    mode = sys.argv[1]
    if mode == "require":
        require(sys.argv[2])
    elif mode == "starttls":
        starttls(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "stall":
        stall(sys.argv[2], sys.argv[3:])
    elif mode == "inject":
        inject(sys.argv[2])
    if failures:
        sys.exit("%d check(s) failed" % len(failures))


main()
