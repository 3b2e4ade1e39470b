# The shared library exports exactly the functions vhd.h declares, each
# under the version node LIBVHD_1.0, and nothing else (hidden visibility
# plus libvhd/libvhd.map); the map lists the same functions; the soname is
# libmsvhd.so.1 (not Xen blktap's libvhd.so.0); in libmsvhd.a only the
# same functions have default visibility.
. "$TOP/tests/lib.sh"
need nm binutils
need readelf binutils
need cc build-essential
so=$BUILD/libmsvhd.so.1
[ -f "$so" ] || fail "$so not built"

# Every function declaration of the preprocessed header: statements (split
# at ';') that are not typedefs, the name before the first '('.
cc -E -P -D_GNU_SOURCE "$TOP/libvhd/vhd.h" | tr '\n' ' ' |
	sed 's/__attribute__ *(([^()]*([^()]*)[^()]*))//g; s/__attribute__ *(([^()]*))//g' |
	tr ';{}' '\n\n\n' | grep -v '^ *typedef' |
	sed -n 's/^[^(]*[^a-zA-Z0-9_]\(vhd_[a-z0-9_]*\) *(.*/\1/p' |
	sort -u > header.txt
n=$(wc -l < header.txt)
[ "$n" -ge 30 ] || fail "only $n functions found in vhd.h: $(cat header.txt)"
grep -qx vhd_open header.txt && grep -qx vhd_version header.txt ||
	fail "vhd_open/vhd_version not among the header's functions"

# The dynamic symbol table: every defined symbol, with its version.
nm -D --defined-only "$so" | awk '{ print $3 }' | sort > dyn.txt
grep -vx 'LIBVHD_1.0' dyn.txt > dynfun.txt
bad=$(grep -v '@@LIBVHD_1\.0$' dynfun.txt || true)
[ -z "$bad" ] || fail "exported without version LIBVHD_1.0: $bad"
sed 's/@@LIBVHD_1\.0$//' dynfun.txt > exported.txt
grep -qx 'LIBVHD_1.0' dyn.txt || fail "no version node LIBVHD_1.0"
diff header.txt exported.txt > d.txt ||
	fail "exports differ from vhd.h (< header only, > exported only): $(cat d.txt)"

# The version script lists the same functions.
sed -n '/global:/,/local:/p' "$TOP/libvhd/libvhd.map" |
	sed -n 's/^[[:space:]]*\(vhd_[a-z0-9_]*\);.*/\1/p' | sort > map.txt
diff header.txt map.txt > d.txt ||
	fail "libvhd.map differs from vhd.h (< header only, > map only): $(cat d.txt)"

# The soname that lets blktap's libvhd.so.0 live beside us.
readelf -d "$so" | grep -q 'SONAME.*\[libmsvhd\.so\.1\]' ||
	fail "soname: $(readelf -d "$so" | grep SONAME)"

# Static archive: helpers are hidden, so linking libmsvhd.a into another
# shared object does not export them.
readelf -sW "$BUILD/libmsvhd.a" |
	awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" { print $8 }' |
	sort -u > static.txt
extra=$(comm -13 header.txt static.txt)
[ -z "$extra" ] || fail "libmsvhd.a: non-hidden symbols outside vhd.h: $extra"
missing=$(comm -23 header.txt static.txt)
[ -z "$missing" ] || fail "libmsvhd.a: public functions not defined: $missing"
echo "ok: $n functions, all @@LIBVHD_1.0"
