# Logical partitions in an extended partition appear as p5, p6, ...; a GPT
# disk's partitions appear by entry number, also when only the backup
# table is intact; junk tables show no partitions.
. "$TOP/tests/fuse/fuselib"
need sfdisk fdisk

truncate -s 64M e.raw
printf 'label: dos\n,8M,L\n,,E\n,8M,L\n,8M,L\n,,L\n' | sfdisk -q e.raw
"$VHDTOOL" convert e.raw e.vhd
mkdir mnt
fmount e.vhd mnt
[ "$(ls mnt | tr '\n' ' ')" = "disk p1 p5 p6 p7 " ] || fail "MBR files: $(ls mnt)"
sfdisk -d e.raw | sed -n 's/^e.raw\([0-9]*\) : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2 \3/p' |
while read -r n start size; do
	[ "$n" = 2 ] && continue                 # the extended container
	[ "$(stat -c %s mnt/p$n)" -eq $((size * 512)) ] || fail "p$n size"
	cmp mnt/p$n <(dd if=e.raw bs=512 skip="$start" count="$size" status=none) ||
		fail "p$n contents"
done
funmount mnt

truncate -s 64M g.raw
printf 'label: gpt\n,8M\n,8M\n,,\n' | sfdisk -q g.raw
printf 'p3 data' | dd of=g.raw bs=1 seek=$((16 << 20)) conv=notrunc status=none
"$VHDTOOL" convert g.raw g.vhd
fmount g.vhd mnt
[ "$(ls mnt | tr '\n' ' ')" = "disk p1 p2 p3 " ] || fail "GPT files: $(ls mnt)"
# p3 starts after 1 MiB alignment + 8M + 8M: its first bytes are ours
[ "$(stat -c %s mnt/p3)" -gt $((40 << 20)) ] || fail "p3 size"
funmount mnt
# destroy the primary GPT header: the backup at the end still serves
dd if=/dev/zero of=g.raw bs=512 seek=1 count=1 conv=notrunc status=none
rm g.vhd; "$VHDTOOL" convert g.raw g.vhd
fmount g.vhd mnt
[ "$(ls mnt | tr '\n' ' ')" = "disk p1 p2 p3 " ] || fail "backup GPT files: $(ls mnt)"
funmount mnt

# junk: an MBR signature over random bytes is no table (bad boot flags)
mkdata j.raw 4 5
printf '\x55\xaa' | dd of=j.raw bs=1 seek=510 conv=notrunc status=none
"$VHDTOOL" convert j.raw j.vhd
fmount j.vhd mnt
[ "$(ls mnt)" = disk ] || fail "junk table shows: $(ls mnt)"
funmount mnt
# an MBR whose partition runs past the disk's end is clipped to it
truncate -s 16M c.raw
# entry 1: type 0x83, start 2048, 100000 sectors (the disk has 32768)
printf '\x00\x00\x00\x00\x83\x00\x00\x00\x00\x08\x00\x00\xa0\x86\x01\x00' |
	dd of=c.raw bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of=c.raw bs=1 seek=510 conv=notrunc status=none
"$VHDTOOL" convert c.raw c.vhd
fmount c.vhd mnt
[ "$(stat -c %s mnt/p1)" -eq $(((16 << 20) - 2048 * 512)) ] || fail "clipped p1 size $(stat -c %s mnt/p1)"
funmount mnt
