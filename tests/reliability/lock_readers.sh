# Readers stay consistent (issue 14, items 2 and 3): a reader that keeps
# an image open -- vhdfuse -r, vhdnbd -r, the source of convert, a chain's
# parents, the parent given to create --parent -- holds a shared lock that
# keeps writers (ours and QEMU's) out, and a writer keeps those readers
# out.  info, check and map are refused while a writer has the image,
# as qemu-img info is, and read it anyway with -U, saying it may be
# inconsistent.
. "$TOP/tests/lib.sh"
. "$TOP/tests/reliability/lock-lib.bash"
need nbdcopy libnbd-bin

mkdata data.raw 8 14
"$VHDTOOL" convert data.raw d.vhd >/dev/null 2>&1 || fail "convert data.raw"
"$VHDTOOL" create base.vhd 64M >/dev/null
qemu-io -f vpc -c 'write -P 0x11 0 4M' base.vhd >/dev/null
"$VHDTOOL" create --parent base.vhd child.vhd >/dev/null
mkdir m

# 1. vhdfuse -r: compact (which moves blocks) is refused, and the disk
#    still reads what it read (it used to read another block's data).
fuse_hold m --lock-wait 0 -r "$T/d.vhd"
R="in use by vhdfuse \(pid $HOLDER\), which is reading it and keeps writers out"
refused d.vhd "$R" "$VHDTOOL" --lock-wait 0 compact d.vhd
refused d.vhd "$R" "$VHDTOOL" --lock-wait 0 resize d.vhd 16M
refused d.vhd "$R" "$VHDNBD" --lock-wait 0 --unix "$T/w.sock" d.vhd
refused d.vhd "$QEMU_BUSY" qemu-io -f vpc -c 'write 0 512' d.vhd
cmp m/disk data.raw || fail "vhdfuse -r reads other data"
# readers side by side
allowed "$VHDTOOL" --lock-wait 0 info d.vhd
allowed "$VHDTOOL" --lock-wait 0 map d.vhd
allowed "$VHDTOOL" --lock-wait 0 convert d.vhd copy.raw
cmp copy.raw data.raw || fail "convert beside vhdfuse -r"
fuse_release m

# 2. vhdnbd -r and vhdnbd read-write exclude each other, either order.
vhdnbd_hold ro -r d.vhd
refused d.vhd "in use by vhdnbd \(pid $HOLDER\), which is reading it" \
	"$VHDNBD" --lock-wait 0 --unix "$T/w.sock" d.vhd
stop_pid "$HOLDER"
vhdnbd_hold rw d.vhd
W="in use by vhdnbd \(pid $HOLDER\), which is writing it"
refused d.vhd "$W" "$VHDNBD" --lock-wait 0 -r --unix "$T/r.sock" d.vhd
refused d.vhd "$W" "$VHDFUSE" --lock-wait 0 -r d.vhd m
refused d.vhd "$W" "$VHDTOOL" --lock-wait 0 convert d.vhd out.raw
[ ! -e out.raw ] || fail "a refused convert left out.raw"
# 3. one-shot inspection: refused without -U (as qemu-img info is) ...
refused d.vhd "$W \(-U reads it anyway\)" "$VHDTOOL" --lock-wait 0 info d.vhd
refused d.vhd "$W" "$VHDTOOL" --lock-wait 0 check d.vhd
refused d.vhd "$W" "$VHDTOOL" --lock-wait 0 map d.vhd
refused d.vhd "$QEMU_BUSY" qemu-img info d.vhd
# ... and read with -U / --force-share, saying it may be inconsistent.
for cmd in "info -U" "info --force-share --json" "check -U" "map -U" "map --force-share --json"; do
	allowed "$VHDTOOL" --lock-wait 0 $cmd d.vhd
	grep -q "may be inconsistent" "$T/err" || fail "$cmd: no word about consistency"
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "$cmd: more than one line on stderr"
done
"$VHDTOOL" info --force-share --json d.vhd 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)' ||
	fail "info -U --json: standard output is not JSON alone"
expect_exit 2 "$VHDTOOL" check -U --repair d.vhd 2>/dev/null
stop_pid "$HOLDER"

# 4. The source of convert is locked while convert reads it: a writer
#    that comes along meanwhile is refused.  (convert blocks on a pipe
#    that is not read for 3 s.)
"$VHDTOOL" convert -O raw "$T/d.vhd" - 2>/dev/null | { sleep 3; cat >stream.raw; } &
CP=$!
for _ in $(seq 100); do
	CV=$(pgrep -n -f "vhdtool convert -O raw $T/d.vhd -" || true)
	[ -n "$CV" ] && grep -qs OFDLCK /proc/"$CV"/fdinfo/* && break
	sleep 0.05
done
[ -n "$CV" ] || fail "convert did not start"
refused d.vhd "in use by vhdtool \(pid $CV\), which is reading it" \
	"$VHDTOOL" --lock-wait 0 resize d.vhd 16M
refused d.vhd "$QEMU_BUSY" qemu-io -f vpc -c 'write 0 512' d.vhd
wait $CP
cmp stream.raw data.raw || fail "convert to a stream"

# 5. A chain's parents: serving the child (even read-only) keeps the
#    parent's writers out, ours and QEMU's.
vhdnbd_hold ch -r child.vhd
refused base.vhd "in use by vhdnbd \(pid $HOLDER\), which is reading it" \
	"$VHDTOOL" --lock-wait 0 resize base.vhd 128M
refused base.vhd "$QEMU_BUSY" qemu-io -f vpc -c 'write 0 512' base.vhd
stop_pid "$HOLDER"
vhdnbd_hold ch child.vhd
refused base.vhd "in use by vhdnbd \(pid $HOLDER\), which is reading it" \
	"$VHDNBD" --lock-wait 0 --unix "$T/b.sock" base.vhd
refused base.vhd "$QEMU_BUSY" qemu-nbd -f vpc --socket="$T/q.sock" base.vhd
stop_pid "$HOLDER"

# 6. create --parent (and set-parent) on a parent that is being written
#    is refused and leaves no child; on one that is only read it works.
vhdnbd_hold b base.vhd
refused base.vhd "base.vhd': in use by vhdnbd \(pid $HOLDER\), which is writing it" \
	"$VHDTOOL" --lock-wait 0 create --parent base.vhd kid.vhd
[ ! -e kid.vhd ] || fail "a refused create --parent left kid.vhd"
# (set-parent likewise records the new parent's id and time)
refused child.vhd "base.vhd': in use by vhdnbd \(pid $HOLDER\), which is writing it" \
	"$VHDTOOL" --lock-wait 0 set-parent child.vhd base.vhd
stop_pid "$HOLDER"
allowed "$VHDTOOL" --lock-wait 0 set-parent child.vhd base.vhd
qemu_nbd_hold qb -r base.vhd
allowed "$VHDTOOL" --lock-wait 0 create --parent base.vhd kid.vhd
stop_pid "$HOLDER"
# (QEMU's vpc driver has no differencing disks: compare with ours.)
"$VHDTOOL" convert -O raw kid.vhd kid.raw >/dev/null 2>&1 || fail "convert kid.vhd"
"$VHDTOOL" convert -O raw base.vhd base.raw >/dev/null 2>&1 || fail "convert base.vhd"
cmp kid.raw base.raw || fail "kid.vhd differs from base.vhd"
echo "lock_readers: ok"
