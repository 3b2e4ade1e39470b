# convert raw -> dynamic and fixed VHD: qemu-img compare finds the result
# identical to the raw disk; a half-zero raw gives a dynamic disk with
# fewer allocated blocks; check is clean; converting back is bit-exact.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need python3 python3

# 16 MiB: random data in MiB 0-3 and 8-9, the rest zero; size not a
# multiple of the 2 MiB block (tests the short last block).
mkdata rnd 4 1
head -c $((16 * 1048576 + 512 * 3)) /dev/zero > raw.img
dd if=rnd of=raw.img bs=1M count=3 conv=notrunc status=none
dd if=rnd of=raw.img bs=1M skip=3 seek=8 count=1 conv=notrunc status=none

for type in dynamic fixed; do
	"$VHDTOOL" convert --type "$type" raw.img "$type.vhd"
	qemu-img compare -q --image-opts driver=raw,file.filename=raw.img \
		"driver=vpc,force_size_calc=current_size,file.filename=$type.vhd" ||
		fail "$type: qemu-img compare differs"
	"$VHDTOOL" check "$type.vhd" >/dev/null || fail "$type: check not clean"
	"$VHDTOOL" convert "$type.vhd" "back-$type.img"
	cmp raw.img "back-$type.img" || fail "$type: round trip differs"
done

# VHD -> VHD: dynamic to fixed and back, and a child flattened into one
# dynamic image.
"$VHDTOOL" convert --type fixed dynamic.vhd d2f.vhd
"$VHDTOOL" convert fixed.vhd f2d.vhd
"$VHDTOOL" create --parent dynamic.vhd child.vhd >/dev/null
"$VHDTOOL" convert child.vhd flat.vhd
for f in d2f.vhd f2d.vhd flat.vhd; do
	qemu-img compare -q --image-opts driver=raw,file.filename=raw.img \
		"driver=vpc,force_size_calc=current_size,file.filename=$f" ||
		fail "$f: qemu-img compare differs"
done
"$VHDTOOL" info --json flat.vhd | grep -q '"type": "dynamic"' || fail "flattened child is not dynamic"
"$VHDTOOL" info --json d2f.vhd | grep -q '"type": "fixed"' || fail "--type fixed ignored"

# The destination type follows the name, dynamic by default.
"$VHDTOOL" convert raw.img byname.vhd
"$VHDTOOL" info --json byname.vhd > info.json
python3 - <<'PY' || fail "dynamic output is not sparse"
import json
i = json.load(open("info.json"))
assert i["type"] == "dynamic", i["type"]
total = (i["virtual_size"] + i["block_size"] - 1) // i["block_size"]
# 4 MiB of data in 2 MiB blocks: blocks 0, 1 (MiB 0-3) and 4 (MiB 8-9).
assert i["allocated_blocks"] == 3, (i["allocated_blocks"], total)
assert i["allocated_blocks"] < total
assert i["allocated_bytes"] == 3 * i["block_size"], i["allocated_bytes"]
PY
[ "$(stat -c %s byname.vhd)" -lt $((8 * 1048576)) ] || fail "dynamic file too big"

# Another block size.
"$VHDTOOL" convert --block-size 512K raw.img small-blocks.vhd
qemu-img compare -q --image-opts driver=raw,file.filename=raw.img \
	driver=vpc,force_size_calc=current_size,file.filename=small-blocks.vhd ||
	fail "512K blocks: qemu-img compare differs"
"$VHDTOOL" info --json small-blocks.vhd | grep -q '"block_size": 524288' ||
	fail "block size not 512K"
echo ok
