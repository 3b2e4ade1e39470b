# On a file system with reflinks (XFS on a loop device), converting a raw
# image to a fixed VHD and back shares the data blocks (copy_file_range):
# no space is used for the copy, and the data is exact.  Needs root.
. "$TOP/tests/lib.sh"
need mkfs.xfs xfsprogs
need qemu-img qemu-utils
[ "$(id -u)" -eq 0 ] || fail "needs root (loop mount)"

truncate -s 300M fs.img
mkfs.xfs -q fs.img || fail "mkfs.xfs failed"
mkdir -p mnt
mount -o loop fs.img mnt || fail "cannot mount a loop device"
cleanup() { umount "$T/mnt" 2>/dev/null || true; }
trap cleanup EXIT
mkdata mnt/r.img 48 13
sync
used() { df -k mnt | awk 'NR == 2 { print $3 }'; }
u0=$(used)
"$VHDTOOL" convert --type fixed mnt/r.img mnt/f.vhd
"$VHDTOOL" convert mnt/f.vhd mnt/back.img
"$VHDTOOL" convert --azure mnt/r.img mnt/az.vhd
sync
u1=$(used)
[ $(( u1 - u0 )) -lt 4096 ] || fail "copies used $(( u1 - u0 )) KiB: not shared"
cmp mnt/r.img mnt/back.img || fail "raw -> fixed -> raw differs"
qemu-img compare -q -f raw -F vpc mnt/r.img mnt/az.vhd || fail "--azure differs"
"$VHDTOOL" check mnt/f.vhd >/dev/null || fail "f.vhd not clean"
echo ok
