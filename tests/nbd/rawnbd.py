# rawnbd.py - the few raw-socket steps the NBD resource tests (limits.py,
# sendpath.py) share: read exactly n bytes, and negotiate the default
# export with NBD_OPT_GO (fixed newstyle, simple replies, no other option).
import struct

IHAVEOPT = 0x49484156454F5054


def recvn(s, n):
    """Exactly n bytes from s (EOFError if the server closes first)."""
    b = bytearray()
    while len(b) < n:
        x = s.recv(min(n - len(b), 1 << 16))
        if not x:
            raise EOFError()
        b += x
    return bytes(b)


def negotiate(s):
    """Fixed newstyle, NBD_OPT_GO on the default export, simple replies.
    Raises RuntimeError if the server refuses GO."""
    recvn(s, 18)
    s.sendall(struct.pack(">I", 3))
    data = struct.pack(">IH", 0, 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, len(data)) + data)
    while True:
        _, _, typ, n = struct.unpack(">QIII", recvn(s, 20))
        recvn(s, n)
        if typ == 1:
            return
        if typ & 0x80000000:
            raise RuntimeError("GO refused: %x" % typ)
