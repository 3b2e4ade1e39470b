# Merging into a parent with small blocks syncs once per copied range, not
# once per block it allocates there (SPEC.md §5.5): a child holding 5 MiB
# merged into a parent of 4 KiB blocks (1280 allocations) makes at most a
# handful of fsync/fdatasync calls, and the parent then reads as the
# model for us and for qemu-img, and checks clean.
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"
need strace strace

K=1024
head -c $((8 * K * K)) /dev/zero >model.raw
"$VHDTOOL" create --block-size 4K base.vhd 8M >/dev/null
"$VHDTOOL" create --parent base.vhd child.vhd >/dev/null
fuse_on child.vhd
put model.raw 0 $((4 * K * K)) b1
put model.raw $((6 * K * K + 512)) $((K * K)) b2
fuse_off
# (LeakSanitizer cannot run under ptrace: off for this one run.)
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
	strace -f -e trace=fsync,fdatasync -o sync.log "$VHDTOOL" merge child.vhd >/dev/null ||
	fail "merge failed"
n=$(grep -c 'sync(' sync.log)
[ "$n" -le 16 ] || fail "merge made $n syncs for 1280+ new blocks (one per block?)"
[ "$n" -ge 2 ] || fail "merge made $n syncs: the allocations were not made durable"
"$VHDTOOL" check base.vhd >/dev/null || fail "check base.vhd not clean after merge"
same_as_model base.vhd model.raw
qemu_same base.vhd model.raw
[ "$("$VHDTOOL" info base.vhd | awk '/allocated blocks/ { print $3 }')" -ge 1280 ] ||
	fail "base.vhd: fewer blocks allocated than data merged"
