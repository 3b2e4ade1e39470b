# A merge killed at any moment leaves the chain reading the same (the
# child still overrides everything copied so far), and a rerun finishes it.
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"

M=$((K * K))
head -c $((48 * M)) /dev/zero >model
"$VHDTOOL" create --block-size 512K base.vhd 48M >/dev/null
fuse_on base.vhd
put model 0 $((8 * M)) b1
fuse_off
"$VHDTOOL" create --parent base.vhd top.vhd >/dev/null
fuse_on top.vhd
put model $((4 * M)) $((40 * M)) t1
put model $((20 * M + 512)) 4096 zero
fuse_off
same_as_model top.vhd model
cp base.vhd base.orig
killed=0
for delay in 0.01 0.02 0.03 0.04 0.05 0.07 0.1; do
	cp base.orig base.vhd
	set +e
	# --foreground: timeout then kills only vhdtool and waits for it; without
	# it timeout SIGKILLs its own process group, itself included, and may
	# return while vhdtool still holds its locks.
	timeout --foreground -s KILL "$delay" "$VHDTOOL" merge --keep top.vhd >/dev/null 2>&1
	rc=$?
	set -e
	[ "$rc" -eq 137 ] && killed=$((killed + 1))
	same_as_model top.vhd model
	"$VHDTOOL" merge --keep top.vhd >/dev/null || fail "rerun after a kill at ${delay}s failed"
	qemu_same base.vhd model
done
[ "$killed" -ge 1 ] || fail "no merge was interrupted (all finished in under 0.05 s?)"
echo "ok ($killed of 7 merges killed midway)"
