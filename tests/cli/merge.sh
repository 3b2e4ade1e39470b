# merge: what a child stores lands in its parent (or, with --into, in a
# grandparent), the merged images are removed (kept with --keep), and the
# target then reads as the chain did.  set-parent re-attaches a child to a
# moved parent.  Data is written into the children through vhdfuse.
. "$TOP/tests/lib.sh"
need fusermount3 fuse3
[ -f "$VHDFUSE" ] && [ -x "$VHDFUSE" ] || fail "vhdfuse not built ($VHDFUSE is not a program; see vhdfuse/fuse.mk)"

# IMAGE SRC SEEK_MIB: write SRC at SEEK_MIB MiB into IMAGE's disk
write_into() { vhdfuse_write "$1" "$2" "$3" 1M; }
trap 'fusermount3 -u disk 2>/dev/null || true' EXIT

mkdata raw.img 6 41
mkdata p1 1 42
mkdata p2 1 43
cp raw.img want.img
dd if=p1 of=want.img bs=1M seek=1 conv=notrunc status=none

# One level: child into parent, child removed.
"$VHDTOOL" convert raw.img base.vhd
"$VHDTOOL" create --parent base.vhd child.vhd >/dev/null
write_into child.vhd p1 1
"$VHDTOOL" convert child.vhd chain.img
cmp want.img chain.img || fail "the child does not read as written"
"$VHDTOOL" merge child.vhd >/dev/null
[ ! -e child.vhd ] || fail "merged child not removed"
"$VHDTOOL" check base.vhd >/dev/null || fail "merged parent not clean"
"$VHDTOOL" convert base.vhd merged.img
cmp want.img merged.img || fail "parent does not hold the merged data"

# Two levels, --into the grandparent, --keep.
"$VHDTOOL" convert raw.img g.vhd
"$VHDTOOL" create --parent g.vhd mid.vhd >/dev/null
write_into mid.vhd p1 1
"$VHDTOOL" create --parent mid.vhd top.vhd >/dev/null
write_into top.vhd p2 4
cp want.img want2.img
dd if=p2 of=want2.img bs=1M seek=4 conv=notrunc status=none
"$VHDTOOL" merge --keep --into g.vhd top.vhd >/dev/null
[ -e top.vhd ] && [ -e mid.vhd ] || fail "--keep removed images"
"$VHDTOOL" convert g.vhd g.img
cmp want2.img g.img || fail "--into: grandparent does not hold the data"
rm -f top.vhd mid.vhd

"$VHDTOOL" create --parent g.vhd mid.vhd >/dev/null
"$VHDTOOL" create --parent mid.vhd top.vhd >/dev/null
"$VHDTOOL" merge --into g.vhd top.vhd >/dev/null
[ ! -e top.vhd ] && [ ! -e mid.vhd ] || fail "merged chain images not removed"
[ -e g.vhd ] || fail "target removed"

# Refusals: not a child, not an ancestor.
expect_exit 1 "$VHDTOOL" merge g.vhd 2>err
grep -q "g.vhd" err || fail "no file name: $(cat err)"
"$VHDTOOL" convert raw.img other.vhd
"$VHDTOOL" create --parent g.vhd c2.vhd >/dev/null
expect_exit 1 "$VHDTOOL" merge --into other.vhd c2.vhd 2>err
grep -q "not an ancestor" err || fail "no clear message: $(cat err)"

# set-parent after moving the parent.
mkdir moved
mv g.vhd moved/g.vhd
set +e; "$VHDTOOL" convert c2.vhd x.img 2>err; rc=$?; set -e
[ "$rc" -ne 0 ] || fail "child read without its parent"
"$VHDTOOL" set-parent c2.vhd moved/g.vhd >/dev/null
"$VHDTOOL" check c2.vhd >/dev/null || fail "check after set-parent"
"$VHDTOOL" convert c2.vhd x.img
cmp want2.img x.img || fail "re-parented child reads wrong"
# A parent with another unique id is refused without --force.
expect_exit 1 "$VHDTOOL" set-parent c2.vhd other.vhd 2>err
grep -q "c2.vhd" err || fail "no file name: $(cat err)"
echo ok
