# FUA makes that write durable, not every dirty byte of the image
# (issue 18 item 2).  Watched with strace on the server:
# - a FUA WRITE into an allocated block is one write with RWF_DSYNC
#   (pwritev2) and no fdatasync/fsync of the file;
# - a FUA WRITE that allocates a block syncs the file (the commit's
#   barrier, then the BAT entry made durable) before the reply;
# - plain WRITEs sync nothing, allocating ones included (group commit,
#   SPEC.md 8.1: their BAT entries wait for the next commit);
# then the server is killed with SIGKILL and qemu-img (the peer, not our
# reader) must find every acknowledged FUA write in the image.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need strace strace
need qemu-img qemu-utils
/usr/bin/python3 -c 'import nbd' 2>/dev/null || fail "python3 nbd module missing: apt-get install python3-libnbd"

"$VHDTOOL" create d.vhd 16M >/dev/null || fail "vhdtool create"
rm -f "$T/nbd.pid"
strace -f -qq -e signal=none -o "$T/trace" -e trace=pwrite64,pwritev,pwritev2,fdatasync,fsync,sync_file_range,msync \
	"$VHDNBD" --pid-file "$T/nbd.pid" -u "$SOCK" d.vhd 2>>"$T/nbd.log" &
TRACER=$!
for _ in $(seq 100); do
	[ -s "$T/nbd.pid" ] && break
	kill -0 "$TRACER" 2>/dev/null || { cat "$T/nbd.log" >&2; fail "vhdnbd under strace exited early"; }
	sleep 0.1
done
[ -s "$T/nbd.pid" ] || fail "vhdnbd did not write its pid file"
PID=$(cat "$T/nbd.pid")

# Markers: plain 1536-byte writes into block 0, which show in the trace
# as pwrite64(..., 1536, ...) (no other write has that size).
"$PY" - "$SOCK" "$T/expect" <<'PY' || fail "client failed"
import nbd, sys
h = nbd.NBD()
h.connect_unix(sys.argv[1])
assert h.can_fua(), "FUA not offered"
M = 1 << 20
h.pwrite(b"\x11" * (2 * M), 0)            # block 0 allocated
h.flush()
h.pwrite(b"\x01" * 1536, 512 * 1000)      # marker 1
a = bytes(range(256)) * 16
h.pwrite(a, 8192, nbd.CMD_FLAG_FUA)       # FUA, allocated block
h.pwrite(b"\x02" * 1536, 512 * 2000)      # marker 2
b = bytes(reversed(range(256))) * 16
h.pwrite(b, 4 * M + 8192, nbd.CMD_FLAG_FUA)   # FUA, allocates block 2
h.pwrite(b"\x03" * 1536, 512 * 3000)      # marker 3
h.pwrite(b"\x44" * 4096, 6 * M)           # plain, allocating (not FUA)
h.pwrite(b"\x04" * 1536, 512 * 3500)      # marker 4
open(sys.argv[2], "w").write("8192 %s\n%d %s\n" % (a.hex(), 4 * M + 8192, b.hex()))
PY
# Every FUA write was acknowledged: kill the server at once.
kill -KILL "$PID"
wait "$TRACER" 2>/dev/null || true

"$PY" - "$T/trace" <<'PY' || { cat "$T/trace" >&2; fail "FUA system calls not as expected"; }
import re, sys
lines = open(sys.argv[1]).read().splitlines()
marks = [i for i, l in enumerate(lines)
         if re.search(r"pwrite64\(\d+, .*, 1536, \d+\) = 1536", l)]
if len(marks) != 4:
    sys.exit("want the 4 markers in the trace, found %d" % len(marks))
m1, m2, m3, m4 = marks
syncs = lambda seg: [l for l in seg if re.search(r"\b(fdatasync|fsync|sync_file_range|msync)\(", l)]
one = lines[m1 + 1:m2]
dsync = [l for l in one if "pwritev2(" in l and "RWF_DSYNC" in l and "4096" in l]
if len(dsync) != 1:
    sys.exit("FUA into an allocated block: want one pwritev2 RWF_DSYNC, got:\n" + "\n".join(one))
if syncs(one):
    sys.exit("FUA into an allocated block synced the whole file:\n" + "\n".join(one))
two = lines[m2 + 1:m3]
if not syncs(two):
    sys.exit("FUA that allocated a block: no sync before the reply:\n" + "\n".join(two))
# Before the last sync of the allocating FUA write, the BAT entry was
# written (the sync covers it): some pwrite after the first sync.
s = [i for i, l in enumerate(two) if re.search(r"\b(fdatasync|fsync)\(", l)]
if not any("pwrite" in l for l in two[s[0] + 1:s[-1]]) or len(s) < 2:
    sys.exit("allocating FUA write: want barrier, BAT entry, sync:\n" + "\n".join(two))
# Without FUA an allocating write syncs nothing and writes no BAT entry
# (the BAT is at 1536 in a vhdtool image): both wait for the commit.
four = lines[m3 + 1:m4]
if syncs(four):
    sys.exit("plain allocating write: want no sync (group commit):\n" + "\n".join(four))
if any(re.search(r"pwrite64\(\d+, .*, 512, 1536\)", l) for l in four):
    sys.exit("plain allocating write: BAT entry written before a commit:\n" + "\n".join(four))
PY

# The peer reads the image as the killed server left it.
qemu-img convert -f vpc -O raw d.vhd d.raw || fail "qemu-img convert"
"$PY" - d.raw "$T/expect" <<'PY' || fail "an acknowledged FUA write is missing after SIGKILL"
import sys
f = open(sys.argv[1], "rb")
for line in open(sys.argv[2]):
    off, data = line.split()
    f.seek(int(off))
    want = bytes.fromhex(data)
    assert f.read(len(want)) == want, "data at %s" % off
PY
echo "ok: FUA writes: one RWF_DSYNC write into an allocated block, synced allocation, durable after SIGKILL"
