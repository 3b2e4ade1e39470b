# Direct-I/O writes run in parallel: the daemon's open replies carry
# FOPEN_PARALLEL_DIRECT_WRITES (vhdfuse/pdw.c), so the kernel (Linux 6.2
# and later) no longer holds one writer's request until the previous one
# is answered.  Seen in the -d request log: several WRITE requests are in
# the daemon at once.  The data written by the four jobs verifies, and
# the image reads the same in qemu.
. "$TOP/tests/fuse/fuselib"
need fio fio

"$VHDTOOL" create --block-size 64K a.vhd 32M   # allocations under way too
touch mnt
FUSE_MOUNTS="$FUSE_MOUNTS $(realpath mnt)"
"$VHDFUSE" -d a.vhd mnt 2>dbg.log &
for _ in $(seq 100); do mountpoint -q mnt && break; sleep 0.05; done
mountpoint -q mnt || { cat dbg.log; fail "vhdfuse -d did not mount"; }
fio --name=pdw --filename=mnt --ioengine=psync --direct=1 --rw=randwrite \
	--bs=4k --numjobs=4 --size=8m --offset_increment=8m \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --randseed=7 \
	--output=fio.out || { cat fio.out; fail "fio O_DIRECT write+verify through the mount"; }
cp mnt live.raw
funmount mnt
# Most WRITE requests in the daemon at once (received, not yet answered).
inflight=$(awk '/opcode: WRITE/ { u = $2; sub(",", "", u); w[u] = 1; n++; if (n > mx) mx = n }
	/^   unique: [0-9]+, (success|error)/ { u = $2; sub(",", "", u); if (u in w) { delete w[u]; n-- } }
	END { print mx + 0 }' dbg.log)
nwrites=$(grep -c "opcode: WRITE" dbg.log)
[ "$nwrites" -ge 8192 ] || fail "only $nwrites WRITE requests logged (want 4 x 2048)"
kver=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
if [ "$kver" -ge 6002 ]; then
	[ "$inflight" -ge 2 ] ||
		fail "direct writes serialised: at most $inflight WRITE in the daemon at once"
else
	echo "note: kernel $(uname -r) predates parallel direct writes (6.2): $inflight at once"
fi
"$VHDTOOL" check a.vhd || fail "check after parallel direct writes"
"$VHDTOOL" convert a.vhd ours.raw
cmp ours.raw live.raw || fail "image differs from what the mount showed"
qraw a.vhd q.raw
cmp q.raw live.raw || fail "qemu reads the image differently"
