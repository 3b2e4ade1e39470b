# VHDX read, judged by readers we did not write besides QEMU: libvhdi
# (vhdimount) and 7-Zip (7zz) read our raw conversion's bytes from the
# same dynamic and fixed VHDX, and from a disk of 4 KiB logical sectors
# (qemu-img 7.2 refuses those: ENOTSUP).  The disk id info prints is the
# one 7-Zip shows.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils
need vhdimount libvhdi-utils
need fusermount3 fuse3
need 7zz 7zip
need python3 python3
craft="$TOP/tests/vhdx/craft.py"
mnt="$T/mnt"
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || true; }
trap cleanup EXIT

judge() {   # image (name.vhdx), label
	img=$1 what=$2
	rm -rf ours.raw x7
	"$VHDTOOL" convert "$img" ours.raw
	mkdir -p "$mnt"
	vhdimount "$img" "$mnt" > vhdimount.log 2>&1 ||
		{ cat vhdimount.log; fail "$what: vhdimount failed"; }
	for i in 1 2 3 4 5 6 7 8 9 10; do [ -e "$mnt/vhdi1" ] && break; sleep 0.2; done
	cmp ours.raw "$mnt/vhdi1" || fail "$what: vhdimount reads different data"
	cleanup
	7zz x -y -ox7 "$img" > 7z.log || { cat 7z.log; fail "$what: 7zz failed"; }
	cmp ours.raw "x7/${img%.vhdx}.img" || fail "$what: 7-Zip reads different data"
	id=$(7zz l "$img" | sed -n 's/^ID = //p')
	"$VHDTOOL" info --json "$img" | python3 -c '
import json, sys, uuid
d = json.load(sys.stdin)["disk_id"]
assert uuid.UUID(d).bytes_le.hex() == sys.argv[1], (d, sys.argv[1])' "$id" ||
		fail "$what: disk id differs from 7-Zip's ($id)"
}

qemu-img create -q -f vhdx -o block_size=1M dyn.vhdx 64M
qemu-io -c 'write -P 0x5a 1000k 3M' -c 'write -P 0x66 10M 1M' \
	-c 'write -P 0x67 63M 1M' dyn.vhdx >/dev/null
judge dyn.vhdx "dynamic"
qemu-img create -q -f vhdx -o subformat=fixed,block_size=8M fix.vhdx 40M
qemu-io -c 'write -P 0x21 7M 2M' -c 'write -z 8M 512' fix.vhdx >/dev/null
judge fix.vhdx "fixed"

# 4 KiB logical sectors: the same image with its sector size items set to
# 4096 (the BAT layout is the same below 32768 blocks) reads the same.
cp dyn.vhdx k4.vhdx
python3 "$craft" sector4k k4.vhdx
"$VHDTOOL" info k4.vhdx | grep -q '^sector size: *4096 logical, 4096 physical' ||
	fail "4K: info does not show the sector sizes"
judge k4.vhdx "4K sectors"
"$VHDTOOL" convert dyn.vhdx d512.raw
cmp ours.raw d512.raw || fail "4K: reads differently from the 512-byte original"
echo ok
