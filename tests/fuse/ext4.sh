# A file system made on the mounted disk file survives a loop mount, a
# remount of the image, e2fsck, and qemu's reading of the image.
. "$TOP/tests/fuse/fuselib"
need mkfs.ext4 e2fsprogs
need e2fsck e2fsprogs

"$VHDTOOL" create a.vhd 48M
touch disk
fmount a.vhd disk
mkfs.ext4 -q -F disk || fail "mkfs.ext4 on the mounted disk file"
lmount disk fs
mkdata f1 3 11
mkdata f2 1 12
head -c 12345 f2 > f3
mkdir fs/dir
cp f1 fs/f1; cp f2 fs/dir/f2; cp f3 fs/dir/f3
lumount fs
funmount disk

fmount a.vhd disk
e2fsck -fn disk || fail "e2fsck reports problems through the remounted image"
lmount disk fs
cmp fs/f1 f1 && cmp fs/dir/f2 f2 && cmp fs/dir/f3 f3 || fail "files changed"
[ "$(sha fs/f1)" = "$(sha f1)" ] || fail "f1 checksum"
lumount fs
funmount disk

"$VHDTOOL" check a.vhd || fail "check after the file system was made"
qraw a.vhd q.raw
e2fsck -fn q.raw || fail "e2fsck on qemu's reading of the image"
