# vhdfuse serves a VHDX read-only: the mounted file reads what qemu-img
# reads; a read-write mount of a VHDX is refused (exit 1, nothing mounted)
# and the image stays unchanged.
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
expect_exit 1 "$VHDFUSE" a.vhdx mnt 2> err.txt
grep -q "writing VHDX is not supported" err.txt || fail "$(cat err.txt)"
not_mounted mnt
[ "$(sha a.vhdx)" = "$before" ] || fail "the image was modified"
echo ok
