# create --chs-round: qemu-img with its default (CHS) size rule and vhdtool
# agree on the size, for both disk types; and it picks what qemu-img create
# picks for the same request.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need python3 python3

vsize() { qemu-img info --output=json -f vpc "$1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
oursize() { "$VHDTOOL" info --json "$1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual_size"])'; }

for sz in 1G 100M 30000K 5G; do
	for type in dynamic fixed; do
		f="r-$type-$sz.vhd"
		"$VHDTOOL" create --chs-round --type "$type" "$f" "$sz" >/dev/null
		ours=$(oursize "$f"); theirs=$(vsize "$f")
		[ "$ours" = "$theirs" ] || fail "$f: vhdtool $ours, qemu-img $theirs"
	done
	qemu-img create -q -f vpc "q-$sz.vhd" "$sz"
	[ "$(vsize "q-$sz.vhd")" = "$(oursize "r-dynamic-$sz.vhd")" ] ||
		fail "$sz: qemu-img create made $(vsize "q-$sz.vhd"), we $(oursize "r-dynamic-$sz.vhd")"
done
# Without --chs-round the size is exactly what was asked.
"$VHDTOOL" create exact.vhd 1G >/dev/null
[ "$(oursize exact.vhd)" = 1073741824 ] || fail "1G became $(oursize exact.vhd)"
echo ok
