# A request that fails in the library: the client gets the errno and a
# generic message that names no server path (issue 16: messages sent to
# NBD clients carry no server path); the full message, file named, goes to
# the server's log only.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"

mkdata raw.img 4 7
"$VHDTOOL" convert raw.img secret-name.vhd > /dev/null
start_server --read-only --unix "$SOCK" "$T/secret-name.vhd"
# Damage under the server: the file cut to its first MiB, so reading the
# data blocks past it fails (EIO) in the library.
truncate -s 1M secret-name.vhd
"$PY" - "$SOCK" "$T" <<'PY' || fail "client: $(cat "$T/nbd.log")"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
def rx(n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b)); assert x, "closed"; b += x
    return b
magic, opt, hflags = struct.unpack(">QQH", rx(18))
s.sendall(struct.pack(">I", 3))
def opt_(o, data=b""):
    s.sendall(struct.pack(">QII", 0x49484156454F5054, o, len(data)) + data)
    while True:
        m, oo, typ, n = struct.unpack(">QIII", rx(20)); rx(n)
        if typ == 1 or typ & 0x80000000:
            return typ
assert opt_(8) == 1                                   # structured replies
name = b"secret-name"
assert opt_(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0)) == 1
bad = 0
for off in range(1 << 20, 4 << 20, 1 << 20):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, off, off, 65536))
    while True:
        assert struct.unpack(">I", rx(4))[0] == 0x668e33ef
        flags, typ, cookie, n = struct.unpack(">HHQI", rx(16))
        p = rx(n)
        if typ & 0x8000:
            err, ml = struct.unpack(">IH", p[:6])
            msg = p[6:6 + ml].decode()
            assert err == 5, err                          # EIO
            # "input/output error": no file, no directory of the server
            assert "secret" not in msg and ".vhd" not in msg, msg
            assert sys.argv[2] not in msg and "/tmp" not in msg, msg
            bad += 1
        if flags & 1:
            break
assert bad > 0, "no read failed"
print("errors:", bad)
PY
stop_server
# The log has the library's whole message, file included.
grep -q "secret-name" "$T/nbd.log" || fail "log: $(cat "$T/nbd.log")"
echo ok
