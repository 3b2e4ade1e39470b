# Many requests at once (the daemon is multithreaded): parallel random
# writes of mixed sizes from several jobs verify, and the image stays
# consistent and reads the same in qemu.
. "$TOP/tests/fuse/fuselib"
need fio fio

"$VHDTOOL" create --block-size 64K a.vhd 32M   # many small blocks: many allocations
touch mnt
fmount a.vhd mnt
fio --name=par --filename=mnt --ioengine=psync --rw=randwrite --numjobs=4 \
	--size=8m --offset_increment=8m --bsrange=512-200k --blockalign=512 \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --randseed=42 \
	--output=fio.out || { cat fio.out; fail "fio write+verify through the mount"; }
# concurrent readers of the whole disk while writers run
fio --name=mix --filename=mnt --ioengine=psync --rw=randrw --numjobs=4 \
	--size=32m --io_size=4m --bsrange=4k-1m --output=mix.out ||
	{ cat mix.out; fail "fio mixed load"; }
cp mnt live.raw
funmount mnt
"$VHDTOOL" check a.vhd || fail "check after parallel writes"
"$VHDTOOL" convert a.vhd ours.raw
cmp ours.raw live.raw || fail "image differs from what the mount showed"
qraw a.vhd q.raw
cmp q.raw live.raw || fail "qemu reads the image differently"
