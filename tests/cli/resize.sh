# resize: grown and shrunk images read the same in qemu-img and vhdimount
# (libvhdi takes the size from the original-size field, which resize
# updates too), check clean; a shrink over data is refused without --force.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils
need vhdimount libvhdi-utils
need fusermount3 fuse3

mnt="$T/mnt"
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
qopts() { echo "driver=vpc,force_size_calc=current_size,file.filename=$1"; }
# same_as_raw IMAGE RAW: qemu-img and vhdimount both read RAW.
same_as_raw() {
	qemu-img compare -q --image-opts "$(qopts "$1")" \
		"driver=raw,file.filename=$2" || fail "$1: qemu-img reads other data"
	q=$(qemu-img info --output=json --image-opts "$(qopts "$1")" |
	    sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
	[ "$q" -eq "$(stat -c %s "$2")" ] || fail "$1: qemu-img size $q"
	mkdir -p "$mnt"
	vhdimount "$1" "$mnt" >vm.log 2>&1 || { cat vm.log; fail "vhdimount $1"; }
	for i in 1 2 3 4 5 6 7 8 9 10; do [ -e "$mnt/vhdi1" ] && break; sleep 0.2; done
	[ "$(stat -c %s "$mnt/vhdi1")" -eq "$(stat -c %s "$2")" ] ||
		fail "$1: vhdimount size $(stat -c %s "$mnt/vhdi1")"
	cmp "$mnt/vhdi1" "$2" || fail "$1: vhdimount reads other data"
	cleanup
	"$VHDTOOL" check "$1" >/dev/null || fail "$1: check not clean"
}

mkdata raw.img 3 21
for type in dynamic fixed; do
	"$VHDTOOL" convert --type "$type" -b 64K raw.img "$type.vhd" 2>/dev/null ||
		"$VHDTOOL" convert --type "$type" raw.img "$type.vhd"
	# grow: a dynamic disk's BAT (48 entries of 64 KiB) must grow in place
	cp raw.img want.img; truncate -s 40M want.img
	"$VHDTOOL" resize --json "$type.vhd" 40M > out.json
	grep -q '"new_size": 41943040' out.json || fail "json: $(cat out.json)"
	same_as_raw "$type.vhd" want.img
	# write at the end through qemu, then grow by 1 MiB more (relative)
	qemu-io -c "write -P 0x5a 39M 1M" --image-opts "$(qopts "$type.vhd")" >/dev/null
	dd if=/dev/zero bs=1M count=1 | tr '\0' 'Z' |
		dd of=want.img bs=1M seek=39 conv=notrunc status=none
	"$VHDTOOL" resize "$type.vhd" +1M >/dev/null
	truncate -s 41M want.img
	same_as_raw "$type.vhd" want.img
	# shrink over data: refused, the image unchanged
	sum=$(sha256sum < "$type.vhd")
	expect_exit 1 "$VHDTOOL" resize "$type.vhd" 20M 2>err
	grep -q -- "--force" err || fail "no hint: $(cat err)"
	[ "$(sha256sum < "$type.vhd")" = "$sum" ] || fail "refused shrink wrote"
	# shrink over zeros only: fine
	"$VHDTOOL" resize "$type.vhd" 39M >/dev/null 2>err && fail "cut the data at 39M"
	qemu-io -c "write -z 39M 1M" --image-opts "$(qopts "$type.vhd")" >/dev/null
	"$VHDTOOL" resize "$type.vhd" 39M >/dev/null
	truncate -s 39M want.img
	same_as_raw "$type.vhd" want.img
	# forced shrink into the data
	"$VHDTOOL" resize --force "$type.vhd" 2M >/dev/null
	truncate -s 2M want.img
	same_as_raw "$type.vhd" want.img
done

# bad sizes: usage or error, never a change
expect_exit 2 "$VHDTOOL" resize dynamic.vhd 12Q 2>/dev/null
expect_exit 1 "$VHDTOOL" resize dynamic.vhd 1000 2>/dev/null
expect_exit 1 "$VHDTOOL" resize dynamic.vhd 3000G 2>/dev/null
expect_exit 3 "$VHDTOOL" resize raw.img 4M 2>/dev/null
echo ok
