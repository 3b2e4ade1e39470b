# The public-API suite (tests/test_api_iso.c) linked with the shared
# library, not the archive: it needs libmsvhd.so.1, loads it from $BUILD
# through LD_LIBRARY_PATH, and passes there.
. "$TOP/tests/lib.sh"
need readelf binutils
need ldd libc-bin
t=$BUILD/tests-so/test_api_iso
[ -x "$t" ] || fail "$t not built (make test-so)"
readelf -d "$t" | grep -q 'NEEDED.*\[libmsvhd\.so\.1\]' ||
	fail "$t does not need libmsvhd.so.1: $(readelf -d "$t" | grep NEEDED)"
# Linked dynamically: the library's code is not in the binary.
if readelf -sW "$t" | awk '$7 != "UND"' | grep -q ' vhd_open$'; then
	fail "$t contains vhd_open itself (linked statically?)"
fi
# The loader resolves it to $BUILD's copy (not an installed one).
where=$(LD_LIBRARY_PATH=$BUILD ldd "$t" | awk '$1 == "libmsvhd.so.1" { print $3 }')
[ "$where" = "$(cd "$BUILD" && pwd)/libmsvhd.so.1" ] ||
	fail "libmsvhd.so.1 resolves to '$where', not $BUILD"
LD_LIBRARY_PATH=$BUILD TMPDIR=$T "$t" > out.txt 2>&1 || fail "$(cat out.txt)"
grep -q ': 0 failures$' out.txt || fail "$(cat out.txt)"
cat out.txt
