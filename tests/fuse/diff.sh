# A differencing child mounted read-write takes every write; its parent
# stays byte-identical; the chain reads as the model.
. "$TOP/tests/fuse/fuselib"

mkdata model.raw 6 21
truncate -s 16M model.raw
"$VHDTOOL" convert model.raw base.vhd
"$VHDTOOL" create --parent base.vhd child.vhd
base_sha=$(sha base.vhd)
touch mnt
fmount child.vhd mnt
cmp mnt model.raw || fail "child reads differently from its parent"
mkdata w.bin 1 22
for off in 0 777 3145000 9437184; do     # parent data, unaligned, hole
	dd if=w.bin of=mnt bs=65536 seek="$off" oflag=seek_bytes count=3 conv=notrunc status=none
	dd if=w.bin of=model.raw bs=65536 seek="$off" oflag=seek_bytes count=3 conv=notrunc status=none
done
printf 'z' | dd of=mnt bs=1 seek=4194303 conv=notrunc status=none
printf 'z' | dd of=model.raw bs=1 seek=4194303 conv=notrunc status=none
# zeroing parent data through the child must hide the parent's bytes
fallocate --zero-range -o 1048576 -l 65536 mnt
dd if=/dev/zero of=model.raw bs=65536 seek=16 count=1 conv=notrunc status=none
cmp mnt model.raw || fail "mount differs from the model"
funmount mnt

[ "$(sha base.vhd)" = "$base_sha" ] || fail "the parent changed"
"$VHDTOOL" check child.vhd || fail "check child"
"$VHDTOOL" convert child.vhd flat.raw
cmp flat.raw model.raw || fail "the chain differs from the model"
# --parent names the parent explicitly (here: a copy elsewhere)
mkdir elsewhere; cp base.vhd elsewhere/renamed.vhd
fmount --read-only --parent elsewhere/renamed.vhd child.vhd mnt
cmp mnt model.raw || fail "with --parent"
funmount mnt
