# kill -9 of the vhdfuse daemon under a write load: 12 rounds on one 32 MiB
# dynamic image (256 KiB blocks).  Each round mounts the image on a file,
# runs a writer doing random 64 KiB pwrites at random unaligned offsets
# into the mounted disk with fsync every 6 writes, and kills the daemon
# with SIGKILL at a random moment (the dead mount is then detached with
# fusermount3 -u -z).  After every round the image must check clean
# (leaked space is a warning) and every write acknowledged before the last
# completed fsync must read back (kill9.py verify).  Finally check
# --repair must leave no warning and the data unchanged.
. "$TOP/tests/lib.sh"
need python3 python3
need fusermount3 fuse3
need mountpoint util-linux
[ -x "$VHDFUSE" ] || fail "vhdfuse not built: $VHDFUSE"
PY=/usr/bin/python3
K9="$TOP/tests/reliability/kill9.py"
. "$TOP/tests/reliability/kill9-lib.bash"
SIZE=$((32 << 20))
ROUNDS=12

DMN=""
WR=""
# A dead FUSE mount fails stat with ENOTCONN (so mountpoint says "no"):
# look in /proc/mounts instead.
mounted() { grep -q " $T/mnt fuse" /proc/mounts; }
detach() {
	mounted || return 0
	fusermount3 -u -z "$T/mnt" 2>/dev/null || umount -l "$T/mnt"
	! mounted || fail "cannot detach the dead mount $T/mnt"
}
cleanup() {
	rc=$?
	set +e
	[ -n "$DMN" ] && kill -KILL "$DMN" 2>/dev/null
	[ -n "$WR" ] && kill -KILL "$WR" 2>/dev/null
	detach
	wait 2>/dev/null
	exit $rc
}
trap cleanup EXIT

"$VHDTOOL" create -b 256K disk.vhd 32M >/dev/null
truncate -s $SIZE before.raw
touch mnt
kills=0
for round in $(seq $ROUNDS); do
	"$VHDFUSE" -f disk.vhd "$T/mnt" 2>>fuse.log &
	DMN=$!
	for _ in $(seq 100); do mountpoint -q mnt && break; sleep 0.02; done
	mountpoint -q mnt || fail "round $round: vhdfuse did not mount: $(tail -3 fuse.log)"
	start_writer "$round" file "$T/mnt"
	random_moment
	kill -KILL "$DMN"
	set +e; wait "$DMN"; wait "$WR"; wrc=$?; set -e
	DMN="" WR=""
	detach
	judge_round "$round" "$wrc"
	kills=$((kills + 1))
done
repair_keeps_data
echo "kill -9 of vhdfuse: $kills rounds, image consistent and flushed data intact each time"
