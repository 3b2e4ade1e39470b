# convert raw -> VHD: libvhdi (vhdimount, FUSE) reads our dynamic and fixed
# output identical to the raw disk.
. "$TOP/tests/lib.sh"
need vhdimount libvhdi-utils
need fusermount3 fuse3

mkdata raw.img 6 7
dd if=/dev/zero of=raw.img bs=1M seek=2 count=2 conv=notrunc status=none
mnt="$T/mnt"
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
for type in dynamic fixed; do
	"$VHDTOOL" convert --type "$type" raw.img "$type.vhd"
	mkdir -p "$mnt"
	vhdimount "$type.vhd" "$mnt" >vhdimount.log 2>&1 || {
		cat vhdimount.log; fail "vhdimount $type.vhd failed"; }
	for i in 1 2 3 4 5 6 7 8 9 10; do [ -e "$mnt/vhdi1" ] && break; sleep 0.2; done
	cmp raw.img "$mnt/vhdi1" || fail "$type: vhdimount reads different data"
	cleanup
done
echo ok
