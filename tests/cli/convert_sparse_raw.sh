# convert to raw leaves holes: raw output of a mostly empty VHD (and of a
# sparse raw input) uses far less space than its size, and is exact.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

mkdata rnd 1 5
truncate -s 64M raw.img
dd if=rnd of=raw.img bs=1M seek=10 count=1 conv=notrunc status=none
dd if=rnd of=raw.img bs=4096 seek=5000 count=1 conv=notrunc status=none
"$VHDTOOL" convert raw.img disk.vhd
"$VHDTOOL" convert disk.vhd out.img
cmp raw.img out.img || fail "VHD -> raw differs"
[ "$(stat -c %s out.img)" -eq $((64 * 1048576)) ] || fail "raw output has the wrong size"
used=$(du -k out.img | cut -f1)
[ "$used" -lt 8192 ] || fail "raw output uses $used KiB of 65536: not sparse"

# raw -> raw keeps holes too, even where the input stored zeros.
head -c $((8 * 1048576)) /dev/zero > dense.img
dd if=rnd of=dense.img bs=4096 seek=100 count=1 conv=notrunc status=none
"$VHDTOOL" convert dense.img sparse.img
cmp dense.img sparse.img || fail "raw -> raw differs"
used=$(du -k sparse.img | cut -f1)
[ "$used" -lt 1024 ] || fail "raw -> raw uses $used KiB: zeros were written"

# A fixed VHD output is sparse as well.
"$VHDTOOL" convert --type fixed raw.img fixed.vhd
used=$(du -k fixed.vhd | cut -f1)
[ "$used" -lt 8192 ] || fail "fixed output uses $used KiB"
qemu-img compare -q --image-opts driver=raw,file.filename=raw.img \
	driver=vpc,force_size_calc=current_size,file.filename=fixed.vhd ||
	fail "fixed output differs"
echo ok
