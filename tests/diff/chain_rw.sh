# A 3-level chain written at every level through vhdfuse (partial sectors,
# whole blocks, zeros over parent data) reads back as the raw model at
# every level; the bottom reads the same for qemu-img and libvhdi; writing
# to a child leaves its parents byte for byte unchanged; check is clean.
# (libvhdi on children with sub-4K writes: see libvhdi.sh.)
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"

make_chain c
cd c
for f in base mid top; do
	same_as_model $f.vhd model.$f
	"$VHDTOOL" check $f.vhd >/dev/null || fail "check $f.vhd not clean"
done
qemu_same base.vhd model.base
vhdi_same top.vhd 1 model.base
"$VHDTOOL" info top.vhd | grep -q mid.vhd || fail "info does not show the chain"

# parents unchanged by writes to the child (and by reading the chain)
sb=$(sum base.vhd) sm=$(sum mid.vhd)
fuse_on top.vhd
put model.top $((4 * BS)) $((BS + 4096)) s12
put model.top 0 512 zero
fuse_off
[ "$(sum base.vhd)" = "$sb" ] || fail "base.vhd changed by writes to top.vhd"
[ "$(sum mid.vhd)" = "$sm" ] || fail "mid.vhd changed by writes to top.vhd"
same_as_model top.vhd model.top
"$VHDTOOL" check top.vhd >/dev/null || fail "check top.vhd not clean"
echo ok
