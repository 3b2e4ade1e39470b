# check: clean (exit 0) on everything we make: empty and converted dynamic
# and fixed disks, other block sizes, a differencing child.
. "$TOP/tests/lib.sh"
need python3 python3

mkdata raw.img 3 11
"$VHDTOOL" create e-dyn.vhd 5M >/dev/null
"$VHDTOOL" create --type fixed e-fix.vhd 5M >/dev/null
"$VHDTOOL" create --block-size 4K small.vhd 1M >/dev/null
"$VHDTOOL" convert raw.img c-dyn.vhd
"$VHDTOOL" convert --type fixed raw.img c-fix.vhd
"$VHDTOOL" convert --block-size 256M raw.img big-block.vhd
"$VHDTOOL" create --parent c-dyn.vhd child.vhd >/dev/null
for f in e-dyn.vhd e-fix.vhd small.vhd c-dyn.vhd c-fix.vhd big-block.vhd child.vhd; do
	sum=$(sha256sum "$f")
	"$VHDTOOL" check "$f" > out || fail "$f: check exited $?: $(cat out)"
	grep -q "no problems" out || fail "$f: unexpected output: $(cat out)"
	"$VHDTOOL" check --json "$f" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["clean"] is True and r["problems"] == [], r' || fail "$f: check --json"
	[ "$(sha256sum "$f")" = "$sum" ] || fail "$f: check modified the image"
done
# The child reads as its parent.
"$VHDTOOL" convert child.vhd child.img
cmp raw.img child.img || fail "child does not read as its parent"
echo ok
