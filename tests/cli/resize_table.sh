# After resize, Max Table Entries is exactly ceil(size / block size)
# (issue 14): 7-Zip (7zz) refuses a VHD whose table is larger, and libvhdi
# (vhdiinfo) must read the new size.  Dynamic and differencing disks,
# shrink and grow again.
. "$TOP/tests/lib.sh"
need 7zz 7zip
need vhdiinfo libvhdi-utils
need python3 python3

entries() { "$VHDTOOL" info --json "$1" | python3 -c '
import json, sys
i = json.load(sys.stdin)
print(i["max_table_entries"], -(-i["virtual_size"] // i["block_size"]))'; }
same_count() {   # FILE: the header field equals the block count
	set -- "$1" $(entries "$1")
	[ "$2" -eq "$3" ] || fail "$1: max table entries $2, want $3"
}
seven() {   # FILE: 7-Zip opens it and extracts the same disk we read
	7zz l "$1" > 7z.out 2>&1 || fail "7zz cannot open $1: $(tail -3 7z.out)"
	7zz e -so "$1" > 7z.raw 2>/dev/null || fail "7zz cannot extract $1"
	"$VHDTOOL" convert -f "$1" ours.raw > /dev/null
	cmp 7z.raw ours.raw || fail "7zz reads other data from $1"
}
vhdi_size() { vhdiinfo "$1" | sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p'; }

mkdata a.raw 6 3
"$VHDTOOL" convert a.raw d.vhd > /dev/null
same_count d.vhd
"$VHDTOOL" resize d.vhd 64M > /dev/null
same_count d.vhd
seven d.vhd
"$VHDTOOL" resize d.vhd 6M > /dev/null
same_count d.vhd
seven d.vhd
cmp ours.raw a.raw || fail "shrink lost data"
[ "$(vhdi_size d.vhd)" -eq 6291456 ] || fail "vhdiinfo: size $(vhdi_size d.vhd)"
"$VHDTOOL" check d.vhd > /dev/null || fail "check after shrink"
# Created with a larger table (as a shrink elsewhere leaves it): a grow
# that needs no new entries also writes the exact count.
"$VHDTOOL" create big.vhd 64M > /dev/null
"$VHDTOOL" resize big.vhd 10M > /dev/null
same_count big.vhd
"$VHDTOOL" resize big.vhd 20M > /dev/null
same_count big.vhd
seven big.vhd
[ "$(vhdi_size big.vhd)" -eq 20971520 ] || fail "vhdiinfo: grown size"

# A differencing child, shrunk (the parent's data past the cut is dropped).
"$VHDTOOL" create --parent d.vhd c.vhd > /dev/null
qemu-io -f vpc -c 'write -P 0x33 1M 64k' c.vhd > /dev/null
"$VHDTOOL" resize -f c.vhd 5M > /dev/null
same_count c.vhd
seven c.vhd
[ "$(vhdi_size c.vhd)" -eq 5242880 ] || fail "vhdiinfo: child size"

# Growing a child past its parent makes an image 7-Zip cannot extract:
# refused (nothing changed) unless --force, and the message says why.
"$VHDTOOL" create --parent d.vhd g.vhd > /dev/null
sum=$(sha256sum g.vhd)
expect_exit 1 "$VHDTOOL" resize g.vhd 16M 2> err
grep -q "^vhdtool: g.vhd: growing a differencing disk past its parent's size (6 MiB) .*--force" err ||
	fail "no reason: $(cat err)"
[ "$(sha256sum g.vhd)" = "$sum" ] || fail "refused resize changed the child"
seven g.vhd
"$VHDTOOL" resize g.vhd 6M > /dev/null || fail "growing up to the parent's size"
"$VHDTOOL" resize --force g.vhd 16M > /dev/null || fail "--force"
[ "$(vhdi_size g.vhd)" -eq 16777216 ] || fail "--force: not grown"
# (why: 7-Zip stops at the parent's end)
if 7zz e -so g.vhd > /dev/null 2>&1; then fail "7zz reads a child larger than its parent now: drop the refusal?"; fi
echo ok
