# set-parent on VHDX chains, judged by readers we did not write:
#  - a chain base.vhdx <- mid.avhdx <- top.avhdx (data at each level,
#    written through vhdfuse) is flattened first; the base is moved to
#    another directory, after which the chain no longer opens; set-parent
#    points mid at it; the chain's raw conversion then compares identical
#    to the flattening (qemu-img compare), check passes on mid, top still
#    opens on mid (mid's DataWriteGuid is kept: only its locator changed);
#  - the base back next to mid under another name, set-parent again: 7-Zip
#    (which looks for a parent next to its child only, so it judges only
#    this case) extracts the same bytes from top and from mid as we read;
#  - the whole chain moved to another directory and re-linked the same way;
#  - bad new parents are refused with one line naming the file, exit 1,
#    the child's bytes unchanged: not a VHDX (a raw file), a VHD (mixed
#    formats, and a VHD child given a VHDX parent), another size, a VHDX whose DataWriteGuid is not the child's
#    parent_linkage (written since), a child that is not differencing;
#    --force accepts the last (as VHD's set-parent does).
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils
need python3 python3
need 7zz 7zip
need fusermount3 fuse3
[ -f "$VHDFUSE" ] && [ -x "$VHDFUSE" ] || fail "vhdfuse not built ($VHDFUSE is not a program)"

write_into() { vhdfuse_write "$1" "$2" "$3" 1K; }   # IMAGE SRC SEEK_KIB
trap 'fusermount3 -u disk 2>/dev/null || true' EXIT

seven() {   # IMAGE RAW: 7-Zip extracts RAW's bytes from IMAGE
	rm -rf x7
	7zz x -y -ox7 "$1" > 7z.log || { cat 7z.log; fail "$1: 7zz failed"; }
	cmp "$2" x7/* || fail "$1: 7-Zip reads other bytes than $2"
}

mkdata raw.img 40 61
mkdata p1 3 62
mkdata p2 1 63
"$VHDTOOL" convert raw.img base.vhdx > /dev/null
"$VHDTOOL" create --parent base.vhdx mid.avhdx > /dev/null
write_into mid.avhdx p1 1000
"$VHDTOOL" create --parent mid.avhdx top.avhdx > /dev/null
write_into top.avhdx p2 2047
write_into top.avhdx p2 35000
"$VHDTOOL" convert top.avhdx flat.raw > /dev/null
"$VHDTOOL" convert mid.avhdx mid.raw > /dev/null
cmp -s flat.raw mid.raw && fail "top stores nothing of its own"
cmp -s mid.raw raw.img && fail "mid stores nothing of its own"
guid() { "$VHDTOOL" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_write_guid"])'; }
gmid=$(guid mid.avhdx)

# The base moves away: the chain is broken, set-parent mends it.
mkdir -p far/away
mv base.vhdx far/away/
expect_exit 1 "$VHDTOOL" convert top.avhdx broken.raw > /dev/null 2> err.txt
"$VHDTOOL" set-parent mid.avhdx far/away/base.vhdx > out.txt ||
	fail "set-parent: $(cat out.txt)"
grep -q "'mid.avhdx' now has parent 'far/away/base.vhdx'" out.txt ||
	fail "set-parent said: $(cat out.txt)"
"$VHDTOOL" info --json mid.avhdx | grep -q '"parent": ".*far/away/base.vhdx"' ||
	fail "mid is not on far/away/base.vhdx: $("$VHDTOOL" info mid.avhdx)"
[ "$(guid mid.avhdx)" = "$gmid" ] || fail "set-parent changed mid's DataWriteGuid"
"$VHDTOOL" check mid.avhdx > /dev/null || fail "check mid after set-parent"
"$VHDTOOL" check top.avhdx > /dev/null || fail "check top after set-parent"
"$VHDTOOL" convert top.avhdx now.raw > /dev/null
qemu-img compare -q -f raw -F raw flat.raw now.raw || fail "the chain reads other data"
"$VHDTOOL" convert mid.avhdx midnow.raw > /dev/null
cmp mid.raw midnow.raw || fail "mid reads other data"

# Back next to mid under another name: 7-Zip (which looks for a parent
# next to its child only) follows the new locator too.
mv far/away/base.vhdx renamed.vhdx
expect_exit 1 "$VHDTOOL" convert top.avhdx broken.raw > /dev/null 2> err.txt
"$VHDTOOL" set-parent mid.avhdx renamed.vhdx > /dev/null || fail "set-parent renamed"
"$VHDTOOL" convert top.avhdx now1.raw > /dev/null
qemu-img compare -q -f raw -F raw flat.raw now1.raw || fail "renamed: the chain reads other data"
seven top.avhdx flat.raw
seven mid.avhdx mid.raw

# The whole chain moved to another directory, the base into a
# subdirectory of it.
mkdir -p other/dir
mv top.avhdx mid.avhdx other/
mv renamed.vhdx other/dir/base.vhdx
(cd other && "$VHDTOOL" set-parent mid.avhdx dir/base.vhdx > /dev/null) ||
	fail "set-parent in other/"
"$VHDTOOL" convert other/top.avhdx now2.raw > /dev/null
qemu-img compare -q -f raw -F raw flat.raw now2.raw || fail "moved chain reads other data"
"$VHDTOOL" check other/mid.avhdx > /dev/null || fail "check mid after the move"

# Bad new parents: refused, one line naming the file, mid unchanged.
refused() {   # WHAT PATTERN NEWPARENT [OPTIONS]
	what=$1 pat=$2 np=$3
	shift 3
	cp other/mid.avhdx before.avhdx
	expect_exit 1 "$VHDTOOL" set-parent "$@" other/mid.avhdx "$np" > out.txt 2> err.txt
	[ "$(wc -l < err.txt)" -eq 1 ] || fail "$what: not one line: $(cat err.txt)"
	grep -q "$pat" err.txt || fail "$what: $(cat err.txt)"
	[ -s out.txt ] && fail "$what: printed $(cat out.txt)"
	cmp before.avhdx other/mid.avhdx || fail "$what: mid.avhdx modified"
}
cp raw.img other/notvhdx.img
refused "raw parent" "other/notvhdx.img.*not a VHD or VHDX image" other/notvhdx.img
"$VHDTOOL" convert raw.img other/base.vhd > /dev/null
refused "VHD parent" "other/base.vhd'\\?: a VHD image, where only a VHDX can be used" other/base.vhd
"$VHDTOOL" create other/small.vhdx 20M > /dev/null
refused "size" "other/small.vhdx.*is 20971520 bytes but.*mid.avhdx.*41943040" other/small.vhdx
cp other/dir/base.vhdx other/written.vhdx
qemu-io -f vhdx -c 'write -P 0x5a 0 4k' other/written.vhdx > /dev/null
refused "DataWriteGuid" "other/written.vhdx.*is not the parent.*DataWriteGuid.*--force accepts it" other/written.vhdx
# The other mixed direction: a VHD child given a VHDX parent.
"$VHDTOOL" create --parent other/base.vhd other/c.vhd > /dev/null
sum=$(sha256sum other/c.vhd)
expect_exit 1 "$VHDTOOL" set-parent other/c.vhd other/dir/base.vhdx 2> err.txt
[ "$(wc -l < err.txt)" -eq 1 ] || fail "VHD child: not one line: $(cat err.txt)"
grep -q "other/dir/base.vhdx'\?: a VHDX image, where only a VHD can be used" err.txt ||
	fail "VHD child, VHDX parent: $(cat err.txt)"
[ "$(sha256sum other/c.vhd)" = "$sum" ] || fail "VHD child modified"
# A child that is not differencing.
cp other/dir/base.vhdx b2.vhdx
sum=$(sha256sum b2.vhdx)
expect_exit 1 "$VHDTOOL" set-parent b2.vhdx other/dir/base.vhdx 2> err.txt
grep -q "b2.vhdx'\\?: not a differencing disk" err.txt || fail "not differencing: $(cat err.txt)"
[ "$(sha256sum b2.vhdx)" = "$sum" ] || fail "not differencing: b2.vhdx modified"

# --force takes a parent written since (as for VHD): mid then reads it.
"$VHDTOOL" set-parent --force other/mid.avhdx other/written.vhdx > /dev/null ||
	fail "--force refused"
"$VHDTOOL" convert other/mid.avhdx forced.raw > /dev/null
cp mid.raw want.raw
printf 'Z%.0s' $(seq 4096) | dd of=want.raw conv=notrunc status=none
cmp want.raw forced.raw || fail "--force: mid does not read the new parent"
echo ok
