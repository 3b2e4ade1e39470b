# Parent lookup: a chain moved to another folder still opens (relative
# locators); a missing parent and a replaced one (another unique id) are
# refused with a message naming the file; set-parent repairs a chain whose
# parent moved, and refuses a stranger unless --force.
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"

make_chain c
mkdir -p deep/er
mv c deep/er/moved
cd deep/er/moved
same_as_model top.vhd model.top
vhdi_same top.vhd 1 model.base
# from another working directory, by a relative path
(cd .. && same_as_model moved/top.vhd moved/model.top)

# refuse: exit 1 or 3, one line on stderr naming the file
refused() {   # what-it-must-mention COMMAND...
	want=$1; shift
	set +e; "$@" >/dev/null 2>"$T/err"; rc=$?; set -e
	[ "$rc" -eq 1 ] || [ "$rc" -eq 3 ] || fail "'$*' exited $rc, expected 1 or 3"
	[ "$(wc -l <"$T/err")" -eq 1 ] || { cat "$T/err" >&2; fail "'$*': want one line on stderr"; }
	grep -q "$want" "$T/err" || { cat "$T/err" >&2; fail "'$*': message does not name $want"; }
}

# missing parent
mv base.vhd base.away
refused base.vhd "$VHDTOOL" convert --to raw top.vhd out.raw
[ ! -e out.raw ] || fail "convert left output behind"
# replaced parent: same name, another image
"$VHDTOOL" create --block-size 512K base.vhd 8M >/dev/null
refused base.vhd "$VHDTOOL" convert --to raw top.vhd out.raw
grep -qi 'unique id' "$T/err" || fail "mismatch message does not say why: $(cat "$T/err")"

# set-parent: the stranger is refused without --force, nothing changes
sm=$(sum mid.vhd)
refused base.vhd "$VHDTOOL" set-parent mid.vhd base.vhd
[ "$(sum mid.vhd)" = "$sm" ] || fail "refused set-parent changed mid.vhd"
# the real parent, moved and renamed elsewhere
mkdir -p ../store
mv base.away ../store/renamed.vhd
"$VHDTOOL" set-parent mid.vhd ../store/renamed.vhd >/dev/null
same_as_model top.vhd model.top
same_as_model mid.vhd model.mid
"$VHDTOOL" check mid.vhd >/dev/null || fail "check mid.vhd not clean after set-parent"
"$VHDTOOL" info mid.vhd | grep -q renamed.vhd || fail "info does not show the new parent"
# writes after set-parent land after the new locator data
fuse_on top.vhd
put model.top $((6 * BS)) $((BS + 512)) s20
fuse_off
same_as_model top.vhd model.top
# (mid is written below top from here on: top is no longer checked)
fuse_on mid.vhd
put model.mid $((2 * BS)) 4096 s21
fuse_off
"$VHDTOOL" check mid.vhd >/dev/null || fail "check mid.vhd not clean after writes"
same_as_model mid.vhd model.mid
# a byte copy of the parent (same unique id) is accepted without --force
cp ../store/renamed.vhd copy.vhd
"$VHDTOOL" set-parent mid.vhd copy.vhd >/dev/null
same_as_model mid.vhd model.mid
# the stranger with --force
"$VHDTOOL" set-parent --force mid.vhd base.vhd >/dev/null
"$VHDTOOL" info mid.vhd >/dev/null || fail "forced chain does not open"
"$VHDTOOL" check mid.vhd >/dev/null || fail "check mid.vhd not clean after --force"
echo ok
