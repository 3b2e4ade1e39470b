# vhdtool merge on 3-level chains: into the parent (default), --keep, and
# --into the bottom image; results judged against the raw models with
# qemu-img compare (the bottom is a plain dynamic VHD qemu reads) and
# libvhdi; the chain reads the same while the merged images are kept.
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"

# 1. --keep: mid absorbs top; top is kept and the chain reads the same
make_chain m1
cd m1
sb=$(sum base.vhd)
"$VHDTOOL" merge --keep top.vhd >/dev/null
[ -e top.vhd ] || fail "--keep removed top.vhd"
same_as_model mid.vhd model.top
same_as_model top.vhd model.top
vhdi_same mid.vhd 1 model.base
[ "$(sum base.vhd)" = "$sb" ] || fail "merge into mid changed base.vhd"
for f in base mid top; do
	"$VHDTOOL" check $f.vhd >/dev/null || fail "check $f.vhd not clean after merge"
done
cd ..

# 2. default: top merged into mid and removed
make_chain m2
cd m2
"$VHDTOOL" merge top.vhd >/dev/null
[ ! -e top.vhd ] || fail "merge left top.vhd"
[ -e mid.vhd ] && [ -e base.vhd ] || fail "merge removed too much"
same_as_model mid.vhd model.top
cd ..

# 3. --into the bottom: mid and top removed, base alone holds everything
make_chain m3
cd m3
"$VHDTOOL" merge --into base.vhd top.vhd >/dev/null
[ ! -e top.vhd ] && [ ! -e mid.vhd ] || fail "merge --into left intermediate images"
qemu_same base.vhd model.top
vhdi_same base.vhd 1 model.top
same_as_model base.vhd model.top
"$VHDTOOL" check base.vhd >/dev/null || fail "check base.vhd not clean after merge --into"
cd ..

# 4. merging a middle image down while its child stays: the child's chain
# still reads the same (the middle image still overrides what it had)
make_chain m4
cd m4
"$VHDTOOL" merge --keep mid.vhd >/dev/null
qemu_same base.vhd model.mid
same_as_model top.vhd model.top
vhdi_same top.vhd 1 model.mid
cd ..

# 5. refusals change nothing: a dynamic disk, a stranger as --into, a
# child in use by a writer
make_chain m5
cd m5
for f in base mid top; do eval "s_$f=\$(sum $f.vhd)"; done
expect_exit 1 "$VHDTOOL" merge base.vhd 2>/dev/null
"$VHDTOOL" create stranger.vhd 8M >/dev/null
expect_exit 1 "$VHDTOOL" merge --into stranger.vhd top.vhd 2>/dev/null
fuse_on top.vhd
set +e; "$VHDTOOL" merge top.vhd >/dev/null 2>"$T/err"; rc=$?; set -e
fuse_off
[ "$rc" -eq 1 ] || fail "merge of an image in use exited $rc"
grep -q top.vhd "$T/err" || fail "busy message does not name top.vhd: $(cat "$T/err")"
for f in base mid top; do
	eval "want=\$s_$f"
	[ "$(sum $f.vhd)" = "$want" ] || fail "a refused merge changed $f.vhd"
done
echo ok
