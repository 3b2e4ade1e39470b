# Deep pipelines on one connection: the thread reading requests answers
# hole reads itself and sends their replies together, other requests go
# to the worker threads.  256 reads in flight, holes and data and ranges
# across both, mixed with writes to other blocks, must each get the right
# chunk kind (judged by libnbd's chunk callback) and the right bytes, with
# one thread and with 16, with and without busy polling.  With polling, an
# idle connection must not keep the server spinning.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || fail "python3 nbd module missing: apt-get install python3-libnbd"

check_pipeline() {
	timeout 120 "$PY" - "$SOCK" <<'PY' || fail "pipelined reads wrong or hung ($*)"
import nbd, random, sys
h = nbd.NBD()
h.set_request_structured_replies(True)
h.connect_unix(sys.argv[1])
assert h.get_structured_replies_negotiated()
K = 512 * 1024
block = lambda b: bytes([b]) * 4096
for b in range(0, 16, 2):               # even blocks hold data, odd are holes
    h.pwrite(block(b + 1), b * K)
rnd = random.Random(7)
ops = []
for i in range(256):
    if i % 16 == 5:                     # writes go to blocks 16-31
        wb = 16 + rnd.randrange(16)
        buf = nbd.Buffer.from_bytearray(bytearray(block(wb)))
        woff = wb * K + 4096 * (i % 8)
        ops.append(("w", h.aio_pwrite(buf, woff), (woff, wb)))
        continue
    b = rnd.randrange(16)
    off, n = b * K, 4096
    if i % 7 == 0 and b < 15:
        off, n = b * K + K - 4096, 8192   # across a block boundary
    seen = []
    def cb(sub, o, status, err, seen=seen):
        seen.append(status)
        return 0
    buf = nbd.Buffer(n)
    ops.append(("r", h.aio_pread_structured(buf, off, cb), (off, n, buf, seen)))
while h.aio_in_flight() > 0:
    h.poll(-1)
for kind, cookie, arg in ops:
    assert h.aio_command_completed(cookie), cookie
    if kind == "w":
        assert h.pread(4096, arg[0]) == block(arg[1]), arg
        continue
    off, n, buf, seen = arg
    got = buf.to_bytearray()
    b = off // K
    if n == 4096 and b % 2 == 0:
        assert got == block(b + 1) and seen == [nbd.READ_DATA], (off, seen)
    elif n == 4096:
        assert got == bytes(4096) and seen == [nbd.READ_HOLE], (off, seen)
    elif b % 2 == 0:
        # Zeros at the end of a data block, then a hole: one data chunk.
        assert got == bytes(8192) and seen == [nbd.READ_DATA], (off, seen)
    else:
        assert got == bytes(4096) + block(b + 2) and seen == [nbd.READ_DATA], (off, seen)
h.shutdown()
PY
}

for args in "--threads 1" "--threads 16" "--threads 1 --poll-us 200" "--poll-us 200"; do
	rm -f disk.vhd
	"$VHDTOOL" create -b 512K disk.vhd 16M >/dev/null
	# shellcheck disable=SC2086
	start_server --unix "$SOCK" $args disk.vhd
	check_pipeline $args
	stop_server
	"$VHDTOOL" check disk.vhd >/dev/null || fail "image inconsistent after $args"
done

# An idle client after a burst: the polling window must shrink to nothing,
# so 2 s of idleness cost the server (nearly) no CPU time.
"$VHDTOOL" create disk2.vhd 64M >/dev/null
start_server --unix "$SOCK" --poll-us 10000 disk2.vhd
ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
"$PY" - "$SOCK" "$SERVER_PID" <<'PY' || fail "idle connection kept the server busy"
import nbd, os, sys, time
h = nbd.NBD()
h.connect_unix(sys.argv[1])
for i in range(2000):
    h.pread(4096, (i * 4096) % (64 << 20))
def ticks():
    f = open("/proc/%s/stat" % sys.argv[2]).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
hz = os.sysconf("SC_CLK_TCK")
t0 = ticks()
time.sleep(2)
used = (ticks() - t0) / hz
print("server CPU while the client was idle for 2 s: %.2f s" % used)
assert used < 0.3, used
h.shutdown()
PY
stop_server

# Bad values are refused.
for bad in -1 x 10001; do
	set +e; "$VHDNBD" --poll-us "$bad" --unix "$SOCK" disk2.vhd 2>err; rc=$?; set -e
	[ "$rc" = 2 ] || fail "--poll-us $bad: exit $rc, expected 2"
	grep -q "bad polling time" err || fail "--poll-us $bad: no clear message"
done
