# make install (DESTDIR, a multiarch LIBDIR) lays out what programs and
# packages rely on, and a program built only from the installed files
# through pkg-config (module libvhd) links with -lmsvhd and runs.
. "$TOP/tests/lib.sh"
need pkg-config pkg-config
need cc build-essential
[ "$BUILD" = "$TOP/build" ] || fail "runs on the default build only, not $BUILD"
d=$T/root
make -s -C "$TOP" --no-print-directory install DESTDIR="$d" PREFIX=/usr \
	LIBDIR=/usr/lib/test-multiarch > inst.log 2>&1 || fail "make install: $(cat inst.log)"
L=$d/usr/lib/test-multiarch
for f in "$L/libmsvhd.so.1" "$L/libmsvhd.a" "$d/usr/include/libvhd/vhd.h" \
	 "$L/pkgconfig/libvhd.pc" "$d/usr/bin/vhdtool"; do
	[ -f "$f" ] || fail "not installed: $f"
done
[ "$(readlink "$L/libmsvhd.so")" = libmsvhd.so.1 ] || fail "libmsvhd.so link: $(ls -l "$L")"
[ ! -e "$d/usr/include/vhd.h" ] || fail "header installed as include/vhd.h"
ls "$L" | grep -q '^libvhd\.' && fail "a libvhd.* file installed: $(ls "$L")"
grep -qx 'Version: [0-9]*\.[0-9]*\.[0-9]*' "$L/pkgconfig/libvhd.pc" ||
	fail "pc version: $(cat "$L/pkgconfig/libvhd.pc")"
export PKG_CONFIG_PATH="$L/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d"
export PKG_CONFIG_LIBDIR="$L/pkgconfig"
flags=$(pkg-config --cflags --libs libvhd) || fail "pkg-config libvhd"
case " $flags " in *" -lmsvhd "*) ;; *) fail "pkg-config libs: $flags" ;; esac
case " $flags " in *"/usr/include/libvhd "*) ;; *) fail "pkg-config cflags: $flags" ;; esac
cat > prog.c <<'C'
#include <stdio.h>
#include <vhd.h>
int main(void)
{
	printf("%s %u\n", vhd_version_string(), vhd_version());
	return vhd_version() != VHD_VERSION_NUMBER;
}
C
# shellcheck disable=SC2086
cc -o prog prog.c $flags || fail "does not build against the installed files"
LD_LIBRARY_PATH=$L ./prog > out || fail "prog: $(cat out)"
want=$(sed -n 's/^Version: //p' "$L/pkgconfig/libvhd.pc")
grep -q "^$want " out || fail "runs version '$(cat out)', pc says $want"
