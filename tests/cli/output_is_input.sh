# No output may be an input (issue 14, item 4): compact -o and convert
# refuse a destination that is the source or any image of its chain, even
# with -f, however the path is spelled (symlink, "..", a bind mount: the
# same device and inode), and nothing is modified.  qemu-img (which reads
# the base image independently; it does not follow VHD parents) confirms
# the parent still holds its data.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

mkdata data.raw 8 14
"$VHDTOOL" convert data.raw base.vhd > /dev/null
"$VHDTOOL" create --parent base.vhd child.vhd > /dev/null
qemu-io -f vpc -c 'write -P 0x5a 1M 64k' child.vhd > /dev/null
"$VHDTOOL" create --parent child.vhd grand.vhd > /dev/null
"$VHDTOOL" convert grand.vhd want.raw > /dev/null
sums() { sha256sum base.vhd child.vhd grand.vhd; }
before=$(sums)

refused() {   # what, command...: exit 1, one line naming the input, no change
	what=$1; shift
	expect_exit 1 "$@" 2>err
	[ "$(wc -l < err)" -eq 1 ] || fail "$what: not one line: $(cat err)"
	grep -q "cannot be one of its inputs" err || fail "$what: unclear: $(cat err)"
	[ "$(sums)" = "$before" ] || fail "$what: an image was modified"
}
# The issue's two repros.
refused "compact -o parent" "$VHDTOOL" compact -f -o base.vhd child.vhd
grep -q "base.vhd: is the parent of child.vhd" err || fail "parent not named: $(cat err)"
refused "convert onto parent" "$VHDTOOL" convert -f child.vhd base.vhd
# Grandparent, other spellings.
refused "compact -o grandparent" "$VHDTOOL" compact -f -o base.vhd grand.vhd
refused "convert onto grandparent" "$VHDTOOL" convert -f grand.vhd base.vhd
refused "convert onto the source's parent" "$VHDTOOL" convert -f grand.vhd child.vhd
ln -s base.vhd link.vhd
ln base.vhd hard.vhd
refused "symlink" "$VHDTOOL" convert -f child.vhd link.vhd
refused "hard link" "$VHDTOOL" compact -f -o hard.vhd child.vhd
mkdir sub
refused "dot-dot" "$VHDTOOL" convert -f child.vhd "sub/../base.vhd"
refused "dot-dot compact" "$VHDTOOL" compact -f -o "sub/../../$(basename "$PWD")/base.vhd" child.vhd
refused "raw to itself" "$VHDTOOL" convert -f --to vhd data.raw data.raw
# Standard output appended onto the source.
cp data.raw app.raw
expect_exit 1 "$VHDTOOL" convert app.raw - >> app.raw 2>err
grep -q "standard output: .*inputs" err || fail ">> onto source: $(cat err)"
cmp data.raw app.raw || fail "source changed by >>"

# A bind mount of this directory: another path, the same file.
mkdir bind
if ! unshare -m sh -c 'mount --bind "$1" "$2" && exec "$3" convert -f child.vhd "$2/base.vhd"' \
	sh "$PWD" "$PWD/bind" "$VHDTOOL" 2>err; then
	grep -q "cannot be one of its inputs" err || fail "bind mount: $(cat err)"
else
	fail "bind mount: convert replaced the parent through a bind mount"
fi
[ "$(sums)" = "$before" ] || fail "bind mount: an image was modified"
# The check itself must have run (not a mount failure).
grep -q "bind/base.vhd: is the parent" err || fail "bind mount: $(cat err)"

# The chain still reads the same to qemu-img.
"$VHDTOOL" check grand.vhd > /dev/null || fail "vhdtool check"
"$VHDTOOL" convert grand.vhd now.raw > /dev/null
cmp want.raw now.raw || fail "chain data changed"
qemu-img convert -f vpc -O raw base.vhd qbase.raw
cmp -n "$(stat -c %s qbase.raw)" qbase.raw data.raw || fail "qemu-img: parent data changed"
# A real new output still works, and -f still replaces a non-input.
"$VHDTOOL" compact -o out.vhd child.vhd > /dev/null
"$VHDTOOL" convert -f grand.vhd out.vhd > /dev/null
"$VHDTOOL" convert out.vhd out.raw > /dev/null
cmp want.raw out.raw || fail "convert -f output"
echo ok
