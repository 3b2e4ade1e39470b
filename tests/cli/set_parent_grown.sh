# set-parent after the parent was grown (issue 14): check and info accept
# the chain, so set-parent accepts it with --force (and says --force
# without it); the child then reads the parent's data up to its own size.
. "$TOP/tests/lib.sh"
need qemu-io qemu-utils

mkdata a.raw 8 5
"$VHDTOOL" convert a.raw p.vhd > /dev/null
"$VHDTOOL" create --parent p.vhd c.vhd > /dev/null
qemu-io -f vpc -c 'write -P 0x77 2M 64k' c.vhd > /dev/null
"$VHDTOOL" convert c.vhd want.raw > /dev/null
"$VHDTOOL" resize p.vhd 16M > /dev/null
"$VHDTOOL" check c.vhd > /dev/null || fail "check refuses the chain"
"$VHDTOOL" info c.vhd > /dev/null || fail "info refuses the chain"
cp p.vhd moved.vhd
sum=$(sha256sum c.vhd)
expect_exit 1 "$VHDTOOL" set-parent c.vhd moved.vhd 2> err
grep -q "child's size (--force accepts it)" err || fail "no --force hint: $(cat err)"
[ "$(sha256sum c.vhd)" = "$sum" ] || fail "refused set-parent changed the child"
"$VHDTOOL" set-parent --force c.vhd moved.vhd > /dev/null || fail "--force refused"
rm p.vhd
"$VHDTOOL" info --json c.vhd | grep -q '"parent": ".*moved.vhd"' || fail "not pointed at moved.vhd"
"$VHDTOOL" check c.vhd > /dev/null || fail "check after set-parent"
"$VHDTOOL" convert c.vhd now.raw > /dev/null
cmp want.raw now.raw || fail "the child reads other data"
echo ok
