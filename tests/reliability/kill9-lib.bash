# Sourced by kill9_nbd.sh and kill9_fuse.sh after tests/lib.sh: the parts
# of a kill -9 round that do not depend on what is killed.  Uses PY, K9,
# SIZE and WR (the writer's pid) of the sourcing script.

# start_writer ROUND KIND TARGET: run kill9.py's writer in the background
# (WR set) and wait until it is connected, so the kill that follows can
# never come before the first write.
start_writer() {
	rm -f log.txt.ready
	"$PY" "$K9" "$2" "$3" log.txt "$1" "$SIZE" >writer.out 2>&1 &
	WR=$!
	for _ in $(seq 500); do [ -e log.txt.ready ] && break; sleep 0.02; done
	[ -e log.txt.ready ] || fail "round $1: writer did not connect: $(cat writer.out)"
}

# random_moment: sleep 50..650 ms into the load.
random_moment() {
	sleep "0.$(printf '%03d' $(( (RANDOM % 600) + 50 )))"
}

# judge_round ROUND WRITER_STATUS: the writer must have stopped because its
# peer died; the image must check clean (warnings allowed) and hold every
# write acknowledged before the last completed flush.  before.raw then
# becomes the image's content for the next round.
judge_round() {
	[ "$2" -eq 0 ] || fail "round $1: writer failed: $(cat writer.out)"
	grep -q "writer stopped" writer.out || fail "round $1: $(cat writer.out)"
	"$VHDTOOL" check disk.vhd >check.out 2>&1 ||
		{ cat check.out >&2; fail "round $1: check failed after kill -9"; }
	rm -f after.raw
	"$VHDTOOL" convert -O raw disk.vhd after.raw
	"$PY" "$K9" verify before.raw after.raw log.txt >verify.out 2>&1 ||
		{ cat writer.out verify.out >&2; fail "round $1: $(tail -1 verify.out)"; }
	echo "round $1: $(cat writer.out); $(cat verify.out); $(grep -c warning check.out || true) warnings"
	mv after.raw before.raw
}

# repair_keeps_data: check --repair leaves no warning and the data as it was.
repair_keeps_data() {
	"$VHDTOOL" check --repair disk.vhd
	"$VHDTOOL" check disk.vhd >check.out
	grep -q warning check.out && fail "warnings left after --repair: $(cat check.out)"
	rm -f after.raw
	"$VHDTOOL" convert -O raw disk.vhd after.raw
	cmp after.raw before.raw || fail "check --repair changed the disk's data"
}
