# Sources in other image formats are recognised by their magic and refused
# with the format's name and what to do (issue 14, item 7); --from raw
# still copies their bytes.  Each image is made by qemu-img.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

for f in vhdx:VHDX qcow2:qcow2 vmdk:VMDK vdi:VDI qed:QED; do
	fmt=${f%%:*} name=${f#*:}
	qemu-img create -q -f "$fmt" "w.$fmt" 64M
	# convert, with and without a .vhd destination, and from a stream.
	for dst in w.vhd w.raw; do
		expect_exit 1 "$VHDTOOL" convert "w.$fmt" "$dst" 2>err
		[ "$(wc -l < err)" -eq 1 ] || fail "$fmt: not one line: $(cat err)"
		grep -q "^vhdtool: w.$fmt: is a $name image, which vhdtool does not read yet; convert it with qemu-img convert -O vpc" err ||
			fail "$fmt: unclear message: $(cat err)"
		[ ! -e "$dst" ] || fail "$fmt: output $dst created"
	done
	expect_exit 1 "$VHDTOOL" convert - w.vhd < "w.$fmt" 2>err
	grep -q "^vhdtool: standard input: is a $name image" err ||
		fail "$fmt from standard input: $(cat err)"
	[ ! -e w.vhd ] || fail "$fmt: stream output created"
	gzip -c "w.$fmt" > "w.$fmt.gz"
	expect_exit 1 "$VHDTOOL" convert "w.$fmt.gz" w.vhd 2>err
	grep -q "is a $name image" err || fail "$fmt.gz: $(cat err)"
	# The commands that need a VHD say the same.
	for cmd in info check map; do
		set +e; "$VHDTOOL" $cmd "w.$fmt" > out 2>err; rc=$?; set -e
		[ "$rc" -ne 0 ] || fail "$cmd accepted $fmt"
		grep -q "is a $name image" out err || fail "$cmd $fmt: $(cat out err)"
	done
	# --from raw forces a raw copy: the file's bytes, padded to a sector.
	"$VHDTOOL" convert --from raw "w.$fmt" w.vhd > /dev/null 2>err
	"$VHDTOOL" convert w.vhd back.raw > /dev/null
	cmp -n "$(stat -c %s "w.$fmt")" "w.$fmt" back.raw || fail "$fmt: --from raw"
	rm -f w.vhd back.raw
done
echo ok
