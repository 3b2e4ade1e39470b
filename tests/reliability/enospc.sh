# A full file system: on a 4 MiB tmpfs,
#  - vhdtool convert fails with exit 1 and "No space left", and leaves no
#    partial output;
#  - a write through vhdfuse fails with ENOSPC in dd, an NBD write gets an
#    ENOSPC error reply;
#  - data flushed before the disk filled reads back, and the image checks
#    clean (leaked space is only a warning), also after check --repair.
. "$TOP/tests/lib.sh"
need python3 python3
need fusermount3 fuse3
need mountpoint util-linux
/usr/bin/python3 -c 'import nbd' 2>/dev/null || fail "python3 nbd module missing: apt-get install python3-libnbd"
[ -x "$VHDNBD" ] || fail "vhdnbd not built: $VHDNBD"
[ -x "$VHDFUSE" ] || fail "vhdfuse not built: $VHDFUSE"

SMALL="$T/small"
SRV=""
cleanup() {
	rc=$?
	set +e
	[ -n "$SRV" ] && { kill -KILL "$SRV"; wait "$SRV"; } 2>/dev/null
	mountpoint -q "$T/mnt" 2>/dev/null && { fusermount3 -u "$T/mnt" || umount -l "$T/mnt"; }
	mountpoint -q "$SMALL" && umount "$SMALL"
	exit $rc
}
trap cleanup EXIT
mkdir -p "$SMALL"
mount -t tmpfs -o size=4m tmpfs "$SMALL" || fail "cannot mount a 4 MiB tmpfs (root needed)"

mkdata src.raw 8 11
mkdata first.bin 1 12

# consistent IMAGE: check passes (warnings allowed), and again after
# --repair, and the first MiB holds first.bin.
consistent() {
	"$VHDTOOL" check "$1" >"$T/check.out" 2>&1 ||
		{ cat "$T/check.out" >&2; fail "check $1 after ENOSPC"; }
	cat "$T/check.out"
	"$VHDTOOL" check --repair "$1" >"$T/check.out" 2>&1 ||
		{ cat "$T/check.out" >&2; fail "check --repair $1 after ENOSPC"; }
	grep -q warning "$T/check.out" && fail "warnings left after --repair: $(cat "$T/check.out")"
	rm -f "$T/back.raw"
	"$VHDTOOL" convert -O raw "$1" "$T/back.raw"
	cmp -n 1048576 "$T/back.raw" first.bin || fail "$1: flushed data lost"
}

# 1. convert
set +e; "$VHDTOOL" convert src.raw "$SMALL/out.vhd" 2>err; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "convert onto a full disk exited $rc, want 1"
grep -q "No space left" err || fail "convert: no 'No space left' message: $(cat err)"
[ "$(wc -l <err)" -eq 1 ] || fail "convert: more than one error line: $(cat err)"
[ ! -e "$SMALL/out.vhd" ] || fail "convert left a partial output"
echo "convert: $(cat err)"
# the same to raw and fixed outputs (written by convert's writer thread)
for to in "-O raw" "-t fixed"; do
	# shellcheck disable=SC2086
	set +e; "$VHDTOOL" convert $to src.raw "$SMALL/out.img" 2>err; rc=$?; set -e
	[ "$rc" -eq 1 ] || fail "convert $to onto a full disk exited $rc, want 1"
	grep -q "No space left" err || fail "convert $to: no 'No space left' message: $(cat err)"
	[ "$(wc -l <err)" -eq 1 ] || fail "convert $to: more than one error line: $(cat err)"
	[ ! -e "$SMALL/out.img" ] || fail "convert $to left a partial output"
done

# 2. FUSE: a 1 MiB write synced, then a write that cannot fit
"$VHDTOOL" create -b 64K "$SMALL/f.vhd" 32M >/dev/null
touch mnt
"$VHDFUSE" "$SMALL/f.vhd" mnt || fail "vhdfuse"
dd if=first.bin of=mnt bs=1M conv=notrunc,fsync status=none || fail "first write through FUSE"
set +e; dd if=src.raw of=mnt bs=64K seek=2M oflag=seek_bytes conv=notrunc,fsync status=none 2>err; rc=$?; set -e
[ "$rc" -ne 0 ] || fail "8 MiB written through FUSE onto a 4 MiB file system"
grep -q "No space left" err || fail "FUSE write: dd says $(cat err), want ENOSPC"
echo "fuse: $(head -1 err)"
fusermount3 -u mnt
for _ in $(seq 50); do "$VHDTOOL" check --repair "$SMALL/f.vhd" >/dev/null 2>&1 && break; sleep 0.1; done
consistent "$SMALL/f.vhd"
rm -f "$SMALL/f.vhd"

# 3. NBD: the same through an NBD client; the failing write gets ENOSPC
"$VHDTOOL" create -b 64K "$SMALL/n.vhd" 32M >/dev/null
rm -f nbd.pid
"$VHDNBD" --pid-file nbd.pid --unix "$T/nbd.sock" "$SMALL/n.vhd" 2>nbd.log &
SRV=$!
for _ in $(seq 100); do [ -s nbd.pid ] && break; sleep 0.05; done
[ -s nbd.pid ] || fail "vhdnbd did not start: $(cat nbd.log)"
/usr/bin/python3 - "$T/nbd.sock" <<'EOF' || fail "NBD client"
import errno, sys, nbd
h = nbd.NBD()
h.connect_unix(sys.argv[1])
h.pwrite(open("first.bin", "rb").read(), 0)
h.flush()
src = open("src.raw", "rb").read()
for i in range(0, len(src), 65536):
    try:
        h.pwrite(src[i:i + 65536], 2 * 1048576 + i)
    except nbd.Error as e:
        print("nbd: write at %d: %s (errno %s)" % (2 * 1048576 + i, e.string, e.errno))
        if e.errno not in (errno.ENOSPC, "ENOSPC"):
            sys.exit("error reply is not ENOSPC")
        break
else:
    sys.exit("8 MiB written over NBD onto a 4 MiB file system")
h.shutdown()
EOF
kill -TERM "$SRV"; wait "$SRV" || true; SRV=""
consistent "$SMALL/n.vhd"
echo "enospc: ok"
