# A dynamic image converted from a raw file reads back the same through the
# mount; writes at unaligned offsets and lengths land in the image exactly
# as in a raw model, as both our converter and qemu see it afterwards.
. "$TOP/tests/fuse/fuselib"

mkdata model.raw 5 7
truncate -s 24M model.raw                       # tail unallocated
"$VHDTOOL" convert model.raw a.vhd
touch mnt
fmount a.vhd mnt
[ "$(stat -c %s mnt)" -eq $((24 << 20)) ] || fail "mounted size $(stat -c %s mnt)"
cmp mnt model.raw || fail "mounted image differs from its source"

# poke SEEK TEXT: one write through the mount, the same into the model
poke() {
	printf '%s' "$2" | dd of=mnt bs=1 seek="$1" conv=notrunc status=none
	printf '%s' "$2" | dd of=model.raw bs=1 seek="$1" conv=notrunc status=none
}
poke 1 "a"
poke 511 "across-a-sector-edge"
poke 2097149 "across-a-block-edge"           # 2 MiB block boundary
poke 9000001 "in-an-unallocated-block"
poke $((24 * 1048576 - 3)) "end"             # the last three bytes
# a large unaligned write spanning blocks (3 MiB at 1 MiB + 7)
mkdata big.bin 3 8
dd if=big.bin of=mnt bs=1M seek=$((1048576 + 7)) oflag=seek_bytes conv=notrunc status=none
dd if=big.bin of=model.raw bs=1M seek=$((1048576 + 7)) oflag=seek_bytes conv=notrunc status=none
# writing past the end fails (a disk does not grow)
if printf 'x' | dd of=mnt bs=1 seek=$((24 << 20)) conv=notrunc status=none 2>err; then
	fail "a write past the end succeeded"
fi
grep -q "No space left" err || fail "write past the end: $(cat err)"
cmp mnt model.raw || fail "mount differs from the model after writes"
sync mnt
funmount mnt

"$VHDTOOL" check a.vhd || fail "check after writes through the mount"
"$VHDTOOL" convert a.vhd back.raw
cmp back.raw model.raw || fail "image differs from the model"
qraw a.vhd q.raw
cmp q.raw model.raw || fail "qemu reads the image differently from the model"
