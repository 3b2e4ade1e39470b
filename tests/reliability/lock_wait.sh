# Waiting for a lock that is being released (issue 14, item 3 and 5):
#  - a tool that finds the image locked says so, naming the holder and
#    that it waits, waits --lock-wait seconds (default 5) and then fails
#    naming the holder; 0 fails at once without waiting;
#  - when the holder lets go during the wait, the tool goes on;
#  - the README's "fusermount3 -u m; vhdfuse disk.vhd m" and
#    "fusermount3 -u m; vhdtool resize" run 200 times without a failure
#    (fusermount3 returns before the daemon has closed the image).
. "$TOP/tests/lib.sh"
. "$TOP/tests/reliability/lock-lib.bash"

"$VHDTOOL" create c.vhd 64M >/dev/null
touch mnt
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# timed MIN_MS MAX_MS COMMAND...: exit 1 within [MIN_MS, MAX_MS].
timed() {
	lo=$1 hi=$2; shift 2
	start=$(date +%s%N)
	set +e; "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e
	ms=$(ms_since "$start")
	[ "$rc" -eq 1 ] || { cat "$T/err" >&2; fail "'$*' exited $rc, want 1"; }
	[ "$ms" -ge "$lo" ] && [ "$ms" -le "$hi" ] ||
		fail "'$*' failed after $ms ms, want $lo..$hi"
	echo "failed after $ms ms as expected: $*"
}

vhdnbd_hold one c.vhd
H="in use by vhdnbd \(pid $HOLDER\), which is writing it"
# default: waits about 5 s, saying so first, then fails naming the holder
timed 4500 9000 "$VHDTOOL" resize c.vhd 128M
grep -Eq "^vhdtool: c.vhd: $H; waiting up to 5 s for it$" "$T/err" ||
	fail "no waiting line: $(cat "$T/err")"
tail -1 "$T/err" | grep -Eq "^vhdtool: c.vhd: $H$" || fail "last line: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 2 ] || fail "more than two lines: $(cat "$T/err")"
# --lock-wait N, either side of the command; 0 does not wait at all
timed 800 3500 "$VHDTOOL" --lock-wait 1 info c.vhd
grep -q "waiting up to 1 s" "$T/err" || fail "info --lock-wait 1: $(cat "$T/err")"
timed 800 3500 "$VHDTOOL" check --lock-wait=1.0 c.vhd
timed 0 1500 "$VHDTOOL" resize --lock-wait 0 c.vhd 128M
! grep -q waiting "$T/err" || fail "--lock-wait 0 waited"
timed 800 3500 "$VHDFUSE" --lock-wait 1 c.vhd mnt
grep -Eq "^vhdfuse: 'c.vhd': $H; waiting up to 1 s for it$" "$T/err" || fail "vhdfuse: $(cat "$T/err")"
timed 800 3500 "$VHDNBD" --lock-wait 1 --unix "$T/two.sock" c.vhd
grep -Eq "^vhdnbd: 'c.vhd': $H; waiting up to 1 s for it$" "$T/err" || fail "vhdnbd: $(cat "$T/err")"
timed 0 1500 "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" c.vhd
# bad values are usage errors
expect_exit 2 "$VHDTOOL" --lock-wait -1 info c.vhd 2>/dev/null
expect_exit 2 "$VHDTOOL" info --lock-wait 1x c.vhd 2>/dev/null
expect_exit 2 "$VHDTOOL" info c.vhd --lock-wait 2>/dev/null
expect_exit 2 "$VHDFUSE" --lock-wait x c.vhd mnt 2>/dev/null
expect_exit 2 "$VHDNBD" --lock-wait '' --unix "$T/two.sock" c.vhd 2>/dev/null

# The holder lets go during the wait: the waiting tool goes on.
"$VHDTOOL" --lock-wait 20 resize c.vhd 128M >"$T/rs.out" 2>"$T/rs.err" &
RS=$!
sleep 1
kill -0 $RS 2>/dev/null || fail "resize did not wait: $(cat "$T/rs.err")"
stop_pid "$HOLDER"
start=$(date +%s%N)
wait $RS || fail "resize after the holder left: $(cat "$T/rs.err")"
[ "$(ms_since "$start")" -lt 2000 ] || fail "resize went on only $(ms_since "$start") ms after the release"
grep -q "waiting up to 20 s" "$T/rs.err" || fail "resize did not say it waits"
grep -q "resized" "$T/rs.out" || fail "resize: $(cat "$T/rs.out")"

# README: unmount and at once mount again, or resize, 200 times.
"$VHDTOOL" create disk.vhd 64M >/dev/null
mkdir m
MNTS="$T/m"
size=64
for i in $(seq 200); do
	"$VHDFUSE" disk.vhd m 2>>"$T/loop.err" || fail "round $i: vhdfuse after unmount: $(tail -2 "$T/loop.err")"
	dd if=/dev/urandom of=m/disk bs=64k count=1 seek=$((i % 500)) conv=notrunc,fsync status=none ||
		fail "round $i: write"
	fusermount3 -u m
	"$VHDFUSE" disk.vhd m 2>>"$T/loop.err" || fail "round $i: vhdfuse after unmount: $(tail -2 "$T/loop.err")"
	fusermount3 -u m
	size=$(( size == 64 ? 72 : 64 ))
	"$VHDTOOL" resize disk.vhd ${size}M >/dev/null 2>>"$T/loop.err" ||
		fail "round $i: resize after unmount: $(tail -2 "$T/loop.err")"
done
MNTS=""
echo "200 rounds; waited $(grep -c waiting "$T/loop.err" || true) times"
"$VHDTOOL" check disk.vhd >/dev/null || fail "disk.vhd damaged after 200 rounds"
echo "lock_wait: ok"
