# kill -9 of vhdnbd under a write load: 12 rounds on one 32 MiB dynamic
# image (256 KiB blocks, so rounds allocate blocks all the time).  Each
# round serves the image, runs a client writing random 64 KiB at random
# unaligned offsets with an NBD FLUSH every 6 writes, and kills the server
# with SIGKILL at a random moment.  After every round the image must check
# clean (leaked space is a warning) and every write acknowledged before
# the last completed flush must read back (kill9.py verify).  Finally
# check --repair must leave no warning and the data unchanged.
. "$TOP/tests/lib.sh"
need python3 python3
/usr/bin/python3 -c 'import nbd' 2>/dev/null || fail "python3 nbd module missing: apt-get install python3-libnbd"
[ -x "$VHDNBD" ] || fail "vhdnbd not built: $VHDNBD"
PY=/usr/bin/python3
K9="$TOP/tests/reliability/kill9.py"
SIZE=$((32 << 20))
ROUNDS=12

SRV=""
WR=""
cleanup() {
	rc=$?
	set +e
	[ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null
	[ -n "$WR" ] && kill -KILL "$WR" 2>/dev/null
	wait 2>/dev/null
	exit $rc
}
trap cleanup EXIT

"$VHDTOOL" create -b 256K disk.vhd 32M >/dev/null
truncate -s $SIZE before.raw
kills=0
for round in $(seq $ROUNDS); do
	rm -f nbd.pid nbd.sock
	"$VHDNBD" --pid-file nbd.pid --unix "$T/nbd.sock" disk.vhd 2>>nbd.log &
	SRV=$!
	for _ in $(seq 100); do [ -s nbd.pid ] && break; sleep 0.02; done
	[ -s nbd.pid ] || fail "round $round: vhdnbd did not start: $(tail -3 nbd.log)"
	rm -f log.txt.ready
	"$PY" "$K9" nbd "$T/nbd.sock" log.txt "$round" $SIZE >writer.out 2>&1 &
	WR=$!
	for _ in $(seq 500); do [ -e log.txt.ready ] && break; sleep 0.02; done
	[ -e log.txt.ready ] || fail "round $round: writer did not connect: $(cat writer.out)"
	# a random moment: 50..650 ms into the load
	sleep "0.$(printf '%03d' $(( (RANDOM % 600) + 50 )))"
	kill -KILL "$SRV"
	set +e; wait "$SRV"; wait "$WR"; wrc=$?; set -e
	SRV="" WR=""
	[ "$wrc" -eq 0 ] || fail "round $round: writer failed: $(cat writer.out)"
	grep -q "writer stopped" writer.out || fail "round $round: $(cat writer.out)"
	kills=$((kills + 1))
	"$VHDTOOL" check disk.vhd >check.out 2>&1 ||
		{ cat check.out >&2; fail "round $round: check failed after kill -9"; }
	rm -f after.raw
	"$VHDTOOL" convert -O raw disk.vhd after.raw
	"$PY" "$K9" verify before.raw after.raw log.txt >verify.out 2>&1 ||
		{ cat writer.out verify.out >&2; fail "round $round: $(tail -1 verify.out)"; }
	echo "round $round: $(cat writer.out); $(cat verify.out); $(grep -c warning check.out || true) warnings"
	mv after.raw before.raw
done
"$VHDTOOL" check --repair disk.vhd
"$VHDTOOL" check disk.vhd >check.out
grep -q warning check.out && fail "warnings left after --repair: $(cat check.out)"
rm -f after.raw
"$VHDTOOL" convert -O raw disk.vhd after.raw
cmp after.raw before.raw || fail "check --repair changed the disk's data"
echo "kill -9 of vhdnbd: $kills rounds, image consistent and flushed data intact each time"
