# convert VHD -> raw on images qemu-img made (dynamic and fixed): bit-exact
# with qemu-img's own conversion, and with the original data.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

mkdata rnd 5 3
head -c $((9 * 1048576)) /dev/zero > raw.img
dd if=rnd of=raw.img bs=1M count=2 conv=notrunc status=none
dd if=rnd of=raw.img bs=1M skip=2 seek=5 count=3 conv=notrunc status=none
for sub in dynamic fixed; do
	qemu-img convert -f raw -O vpc -o subformat=$sub raw.img "q-$sub.vhd"
	qemu-img convert -f vpc -O raw "q-$sub.vhd" "q-$sub.img"
	"$VHDTOOL" convert "q-$sub.vhd" "ours-$sub.img"
	cmp "q-$sub.img" "ours-$sub.img" || fail "$sub: differs from qemu-img's reading"
	# qemu rounds the size up to a CHS capacity: the data, then zeros.
	cmp -n $((9 * 1048576)) raw.img "ours-$sub.img" || fail "$sub: data differs"
	"$VHDTOOL" check "q-$sub.vhd" >/dev/null || fail "$sub: check not clean"
done
# A qemu-img create'd empty image converts to zeros.
qemu-img create -q -f vpc empty.vhd 3M
"$VHDTOOL" convert empty.vhd empty.img
qemu-img convert -f vpc -O raw empty.vhd q-empty.img
cmp empty.img q-empty.img || fail "empty image differs"
echo ok
