# libmsvhd.so.1 as built has the ABI recorded in libvhd/abi/: the same
# functions, and the same types for what vhd.h declares.  Any difference,
# an added function included, fails: the baseline is updated on purpose
# (make abi-baseline, see README "ABI"), with the soname or the version
# node changed when the change is incompatible.
. "$TOP/tests/lib.sh"
need abidiff abigail-tools
base=$TOP/libvhd/abi/libmsvhd.so.1.abi
so=$BUILD/libmsvhd.so.1
[ -f "$base" ] || fail "no baseline $base"
[ -f "$so" ] || fail "$so not built"
# The baseline is x86_64's (sizes of size_t and pointers are part of it).
arch=$(sed -n "1s/.*architecture='\([^']*\)'.*/\1/p" "$base")
case $arch:$(uname -m) in
elf-amd-x86_64:x86_64) ;;
*) fail "the baseline is for $arch; this machine is $(uname -m)" ;;
esac
set +e
abidiff --fail-no-debug-info --no-show-locs --drop-private-types \
	--hf2 "$TOP/libvhd/vhd.h" "$base" "$so" > diff.txt 2>&1
r=$?
set -e
[ "$r" -eq 0 ] || fail "abidiff exit $r against $base:
$(cat diff.txt)
(if the change is deliberate: make abi-baseline, and read README's ABI section)"
echo "ok: ABI identical to $base"
