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
. "$TOP/tests/reliability/kill9-lib.bash"
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
	start_writer "$round" nbd "$T/nbd.sock"
	random_moment
	kill -KILL "$SRV"
	set +e; wait "$SRV"; wait "$WR"; wrc=$?; set -e
	SRV="" WR=""
	judge_round "$round" "$wrc"
	kills=$((kills + 1))
done
repair_keeps_data
echo "kill -9 of vhdnbd: $kills rounds, image consistent and flushed data intact each time"
