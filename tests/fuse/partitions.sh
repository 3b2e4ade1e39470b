# A directory mount shows the disk and one file per MBR partition, with the
# right sizes; a partition file is a loop-mountable file system by itself.
. "$TOP/tests/fuse/fuselib"
need sfdisk fdisk
need mkfs.ext4 e2fsprogs

"$VHDTOOL" create a.vhd 40M
mkdir mnt
fmount a.vhd mnt
[ "$(ls mnt)" = disk ] || fail "unpartitioned disk shows: $(ls mnt)"
printf 'label: dos\nstart=2048, size=20480, type=83\nstart=22528, type=83\n' |
	sfdisk -q mnt/disk || fail "sfdisk on the mounted disk"
funmount mnt

fmount a.vhd mnt
[ "$(ls mnt | tr '\n' ' ')" = "disk p1 p2 " ] || fail "files: $(ls mnt)"
[ "$(stat -c %s mnt/p1)" -eq $((20480 * 512)) ] || fail "p1 size $(stat -c %s mnt/p1)"
[ "$(stat -c %s mnt/p2)" -eq $(((81920 - 22528) * 512)) ] || fail "p2 size $(stat -c %s mnt/p2)"
mkfs.ext4 -q mnt/p1 || fail "mkfs.ext4 on p1"
lmount mnt/p1 fs
mkdata f 2 3
cp f fs/f
lumount fs
# p1's bytes are the disk's bytes at the partition's offset
cmp mnt/p1 <(dd if=mnt/disk bs=512 skip=2048 count=20480 status=none) ||
	fail "p1 differs from the disk at its offset"
# a write through p2 shows in the disk at p2's offset
printf 'hello p2' | dd of=mnt/p2 bs=1 seek=1000 conv=notrunc status=none
[ "$(dd if=mnt/disk bs=1 skip=$((22528 * 512 + 1000)) count=8 status=none)" = "hello p2" ] ||
	fail "a write to p2 is not in the disk"
funmount mnt

fmount --read-only a.vhd mnt
lmount mnt/p1 fs ro
cmp fs/f f || fail "file on p1 changed after remount"
lumount fs
e2fsck -fn mnt/p1 || fail "e2fsck on p1"
funmount mnt
"$VHDTOOL" check a.vhd
