# A VHDX of 4 KiB logical sectors with a GPT written by sfdisk on a
# 4096-byte-sector loop device: vhdfuse --read-only shows its partitions
# at 4 KiB LBAs with the bytes the raw disk holds there; the same disk
# declared with 512-byte sectors shows none (its LBAs would be wrong).
. "$TOP/tests/fuse/fuselib"
need sfdisk fdisk
need losetup mount
need qemu-img qemu-utils
need python3 python3

truncate -s 64M raw.img
loop=$(losetup -f --show -b 4096 raw.img) || fail "losetup -b 4096 failed"
detach() { losetup -d "$loop" 2>/dev/null || true; }
printf 'label: gpt\nstart=256, size=4096\nstart=8192, size=2048\n' |
	sfdisk -q --no-reread "$loop" 2>sfdisk.err || { detach; cat sfdisk.err; fail "sfdisk"; }
detach
mkdata p1.dat 16 5
dd if=p1.dat of=raw.img bs=4096 seek=256 conv=notrunc status=none
mkdata p2.dat 8 6
dd if=p2.dat of=raw.img bs=4096 seek=8192 conv=notrunc status=none

qemu-img convert -f raw -O vhdx -o block_size=1M raw.img d512.vhdx
cp d512.vhdx d4k.vhdx
python3 "$TOP/tests/vhdx/craft.py" sector4k d4k.vhdx

mkdir mnt
fmount --read-only d4k.vhdx mnt
[ "$(ls mnt | tr '\n' ' ')" = "disk p1 p2 " ] || fail "files: $(ls mnt)"
[ "$(stat -c %s mnt/p1)" -eq $((4096 * 4096)) ] || fail "p1 size $(stat -c %s mnt/p1)"
[ "$(stat -c %s mnt/p2)" -eq $((2048 * 4096)) ] || fail "p2 size $(stat -c %s mnt/p2)"
cmp mnt/p1 p1.dat || fail "p1 holds other bytes"
cmp mnt/p2 p2.dat || fail "p2 holds other bytes"
cmp mnt/disk raw.img || fail "the disk holds other bytes"
funmount mnt

fmount --read-only d512.vhdx mnt
[ "$(ls mnt)" = disk ] || fail "512-byte sectors: files $(ls mnt)"
funmount mnt
echo ok
