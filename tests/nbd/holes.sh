# Structured READs of ranges stored nowhere come back as one hole chunk
# (no payload), allocated ranges as data, a range across both as data, and
# with NBD_CMD_FLAG_DF always one data chunk; every read gives the right
# bytes.  Judged by libnbd's chunk callback.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || fail "python3 nbd module missing: apt-get install python3-libnbd"
"$VHDTOOL" create -b 512K disk.vhd 8M >/dev/null
start_server --unix "$SOCK" disk.vhd
"$PY" - "$SOCK" <<'PY' || fail "hole/data chunks wrong"
import nbd, sys
h = nbd.NBD()
h.set_request_structured_replies(True)
h.connect_unix(sys.argv[1])
assert h.get_structured_replies_negotiated()
data = bytes(range(256)) * 16          # 4 KiB
h.pwrite(data, 1 << 20)                 # allocates the block at 1 MiB
def chunks(off, n, flags=0):
    seen = []
    def cb(subbuf, o, status, err):
        seen.append(status)
        return 0
    buf = h.pread_structured(n, off, cb, flags)
    return seen, buf
seen, buf = chunks(4 << 20, 65536)
assert seen == [nbd.READ_HOLE] and buf == bytes(65536), seen
seen, buf = chunks(1 << 20, 4096)
assert seen == [nbd.READ_DATA] and buf == data, seen
seen, buf = chunks((1 << 20) - 4096, 8192)          # zeros, then data
assert seen == [nbd.READ_DATA] and buf == bytes(4096) + data, seen
seen, buf = chunks(4 << 20, 65536, nbd.CMD_FLAG_DF)
assert seen == [nbd.READ_DATA] and buf == bytes(65536), seen
h.shutdown()
PY
stop_server
