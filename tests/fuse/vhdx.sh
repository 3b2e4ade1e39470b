# vhdfuse serves a VHDX: read-only, the mounted file reads what qemu-img
# reads and the image stays unchanged; read-write, writes through the
# mount land (qemu-img check finds no errors, qemu-img compare reads what
# was written).
. "$TOP/tests/fuse/fuselib"
need qemu-img qemu-utils
need qemu-io qemu-utils

qemu-img create -q -f vhdx -o block_size=2M a.vhdx 40M
qemu-io -c 'write -P 0x5a 1000k 3M' -c 'write -P 0x66 30M 1M' a.vhdx >/dev/null
qemu-img convert -f vhdx -O raw a.vhdx theirs.raw
before=$(sha a.vhdx)
touch mnt
fmount --read-only a.vhdx mnt
cmp mnt theirs.raw || fail "the mounted VHDX reads differently from qemu-img"
funmount mnt
[ "$(sha a.vhdx)" = "$before" ] || fail "a read-only mount modified the image"
fmount a.vhdx mnt
head -c 3000000 /dev/urandom > data.bin
dd if=data.bin of=mnt bs=4096 seek=2500 conv=notrunc,fsync status=none
dd if=data.bin of=theirs.raw bs=4096 seek=2500 conv=notrunc status=none
funmount mnt
qemu-img check -q -f vhdx a.vhdx || fail "qemu-img check after writes through the mount"
qemu-img compare -q -f vhdx -F raw a.vhdx theirs.raw || fail "the writes did not land"
echo ok
