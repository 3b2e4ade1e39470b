# Several images: each is an export named after its file (without .vhd),
# nbdinfo --list shows them all, the first is also the default export.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"

"$VHDTOOL" create first.vhd 8M
"$VHDTOOL" create second.vhd 16M
"$VHDTOOL" create --type fixed third.VHD 4M
start_server --unix "$SOCK" first.vhd second.vhd third.VHD
nbdinfo --list --json "nbd+unix:///?socket=$SOCK" >list.json
names=$(json_get list.json "sorted(e['export-name'] for e in j['exports'])")
[ "$names" = "['first', 'second', 'third']" ] || fail "exports listed: $names"
for e in first:8388608 second:16777216 third:4194304 :8388608; do
	n=${e%%:*} s=${e#*:}
	got=$(nbdinfo --size "nbd+unix:///$n?socket=$SOCK")
	[ "$got" = "$s" ] || fail "export '$n' has size $got, expected $s"
done
stop_server

# Two images with the same name are refused (usage error).
mkdir sub && "$VHDTOOL" create sub/first.vhd 8M
expect_exit 2 "$VHDNBD" --unix "$SOCK" first.vhd sub/first.vhd 2>err.txt
grep -q "same export name" err.txt || fail "no message for duplicate names"
expect_exit 2 "$VHDNBD" --export x first.vhd second.vhd 2>/dev/null
