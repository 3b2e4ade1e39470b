# compact: a dynamic disk with blocks of zeros gets smaller and
# stays qemu-img compare-identical, in place and into another file;
# differencing children compact too; fixed disks are refused.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils

mkdata rnd 1 4
"$VHDTOOL" create -b 64K d.vhd 32M >/dev/null
q() { qemu-io -c "$1" -f vpc d.vhd >/dev/null; }
q "write -P 0x11 0 4M"
q "write -P 0x22 8M 4M"
q "write -P 0x33 20M 64k"
q "write -z 1M 2M"          # allocated blocks that hold zeros
q "write -z 8M 1M"
q "write -P 0x44 16M 1M"
q "write -z 16M 1M"
cp d.vhd before.vhd
before=$(stat -c %s d.vhd)

"$VHDTOOL" compact --json -o out.vhd d.vhd > out.json
cmp d.vhd before.vhd || fail "-o modified its source"
grep -q '"size_after"' out.json || fail "json: $(cat out.json)"
expect_exit 1 "$VHDTOOL" compact -o out.vhd d.vhd 2>/dev/null
"$VHDTOOL" compact d.vhd > msg
grep -q "d.vhd:" msg || fail "no report: $(cat msg)"
after=$(stat -c %s d.vhd)
# 4 MiB of blocks that hold only zeros are gone (the rest may grow a
# little: moved blocks get 4 KiB aligned data)
[ "$after" -le $(( before - 3 * 1048576 )) ] || fail "still $after of $before bytes"
[ "$(stat -c %s out.vhd)" -eq "$after" ] || fail "-o and in place differ in size"
for img in d.vhd out.vhd; do
	qemu-img compare -q -f vpc -F vpc before.vhd "$img" || fail "$img reads differently"
	"$VHDTOOL" check "$img" >/dev/null || fail "$img: check not clean"
done
# compacting again changes nothing
sum=$(sha256sum < d.vhd)
"$VHDTOOL" compact d.vhd >/dev/null
[ "$(sha256sum < d.vhd)" = "$sum" ] || fail "second compact changed the image"

# a differencing child over a parent with data
"$VHDTOOL" convert --type dynamic before.vhd base.vhd
"$VHDTOOL" create --parent base.vhd child.vhd >/dev/null
"$VHDTOOL" convert before.vhd flat0.img
"$VHDTOOL" convert child.vhd c0.img
cmp flat0.img c0.img || fail "child does not show its parent"
"$VHDTOOL" compact child.vhd >/dev/null
"$VHDTOOL" convert child.vhd c1.img
cmp c0.img c1.img || fail "compacted child reads differently"
"$VHDTOOL" check child.vhd >/dev/null || fail "child: check not clean"

# fixed disks have nothing to reclaim
"$VHDTOOL" create -t fixed f.vhd 1M >/dev/null
expect_exit 1 "$VHDTOOL" compact f.vhd 2>err
grep -q "fixed" err || fail "no reason: $(cat err)"
echo ok
