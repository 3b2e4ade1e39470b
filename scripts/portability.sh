#!/bin/sh
# portability.sh - build libvhd, vhdtool and the unit tests for every
# target we claim, with warnings as errors, and run the tests there:
#
#   x86_64-gcc    native gcc, real cmocka
#   x86_64-clang  native clang, real cmocka
#   i686          gcc-i686-linux-gnu (32-bit: size_t and long are 32 bits),
#                 natively where the kernel runs it, else under qemu-i386
#   armhf         gcc-arm-linux-gnueabihf under qemu-arm (32-bit ARM, the
#                 Raspberry Pi OS target)
#   s390x         gcc-s390x-linux-gnu under qemu-s390x (big-endian)
#   *-convert     every shared fixture converted to raw and to dynamic VHD
#                 by that target's vhdtool gives the same bytes as x86_64
#   *-large       the 32-bit targets' vhdtool on files over 4 GiB
#                 (tests/port/large_files.sh)
#   mingw64       x86_64-w64-mingw32-gcc with io_win32.c instead of
#                 io_file.c; tests run under wine when wine works
#
# The cross targets have no cmocka: tests/compat/ has a minimal stand-in.
# Objects go to $PORT_BUILD (default build-port/<target>).  Prints one line
# per target and ends with "N passed, N failed"; exits 1 if any failed.
# PORT_QEMU_USER=1 runs the 32-bit targets under qemu-user even where the
# kernel runs them natively: only then do 64-bit kernel interfaces (ext4's
# directory cookies, file sizes) meet the 32-bit program unfiltered.
# `make portability` runs this; a few minutes in all.
set -u
cd "$(dirname "$0")/.."
TOP=$(pwd)
PB=${PORT_BUILD:-build-port}
mkdir -p "$PB"
PB=$(cd "$PB" && pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FIX=${SHARED_FIXTURES:-}
[ -n "$FIX" ] || { [ -f ../shared/fixtures/expected.tsv ] && FIX=$(cd ../shared/fixtures && pwd); }
# Tests that cannot run on Windows, with the reason (a new POSIX-only test
# must be added here on purpose, or the mingw64 target fails).
#  test_fuzz_regress: replays the NBD fuzzer, which needs poll() and sockets
#  test_locator: asserts POSIX path meaning ("C:\dir\p.vhd" is foreign
#    there and reduced to its name; on Windows it is tried as it is)
#  test_copy: the copy engine is POSIX only (threads, zlib, SEEK_DATA,
#    copy_file_range); on Windows its calls return -ENOTSUP
WIN_SKIP="test_fuzz_regress test_locator test_copy"
# The sources come from the make fragments (scripts/portability.mk passes
# them); run by hand, ask make.
if [ -z "${LIBVHD_SRCS:-}" ]; then
	LIBVHD_SRCS=$(make -s --no-print-directory portability-srcs)
fi

# The toolchains (Debian packages).  As root, missing ones are installed;
# otherwise their targets fail naming the package.  Not gcc-multilib: it
# removes the cross compilers.
port_deps() {
	missing=""
	while read -r probe pkg; do
		[ -n "$probe" ] || continue
		command -v "$probe" >/dev/null 2>&1 || [ -e "$probe" ] ||
			missing="$missing $pkg"
	done <<'LIST'
clang clang
i686-linux-gnu-gcc gcc-i686-linux-gnu
/usr/i686-linux-gnu/include/stdio.h libc6-dev-i386-cross
arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf
/usr/arm-linux-gnueabihf/include/stdio.h libc6-dev-armhf-cross
qemu-arm qemu-user
s390x-linux-gnu-gcc gcc-s390x-linux-gnu
/usr/s390x-linux-gnu/include/stdio.h libc6-dev-s390x-cross
qemu-s390x qemu-user
qemu-i386 qemu-user
x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
wine wine
/usr/lib/wine/wine64 wine64
dpkg-deb dpkg
LIST
	[ -n "$missing" ] || return 0
	if [ "$(id -u)" = 0 ]; then
		echo "installing:$missing"
		DEBIAN_FRONTEND=noninteractive apt-get install -y $missing \
			>"$PB/apt-install.log" 2>&1 ||
		{ apt-get update >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y $missing \
			>"$PB/apt-install.log" 2>&1; } ||
			echo "    apt-get install failed: $PB/apt-install.log"
	else
		echo "missing packages (run as root to install):$missing"
	fi
}

# vhdtool links zlib, and Debian has no cross zlib package: download the
# target's zlib1g-dev with apt-get (a private list and cache under $PB:
# the system's sources and lists stay as they are, the mirror is the one
# debian.sources names) and unpack it as a small sysroot.  Sets $zflags.
cross_zlib() {  # debian-arch triplet
	sr=$PB/sysroot-$1
	zflags="-isystem $sr/usr/include"
	zlibdir=$sr/usr/lib/$2
	[ -f "$zlibdir/libz.a" ] && return 0
	st=$PB/apt-$1
	src=/etc/apt/sources.list.d/debian.sources
	uri=$(awk '/^URIs:/ { print $2; exit }' "$src" 2>/dev/null)
	key=$(awk '/^Signed-By:/ { print $2; exit }' "$src" 2>/dev/null)
	[ -n "$uri" ] || uri=$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	rm -rf "$st"
	mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
	echo "deb [arch=$1${key:+ signed-by=$key}] $uri $suite main" >"$st/sources.list"
	o="-o Dir::Etc::sourcelist=$st/sources.list -o Dir::Etc::sourceparts=-
	   -o Dir::State::Lists=$st/lists -o Dir::Cache=$st/cache
	   -o APT::Get::List-Cleanup=0"
	# shellcheck disable=SC2086
	(cd "$st" && apt-get $o update && apt-get $o download "zlib1g-dev:$1") \
		>"$PB/zlib-$1.log" 2>&1 &&
	dpkg-deb -x "$st"/zlib1g-dev_*.deb "$sr" &&
	rm -rf "$st" && [ -f "$zlibdir/libz.a" ]
}

port_deps
result() {      # PASS|FAIL target what
	echo "$1 $2: $3"
}
show_log() {
	sed 's/^/    | /' "$1" | tail -25
}
need() {        # command package
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "    missing $1: apt-get install $2"
	return 1
}

# The cmocka stand-in as a static libcmocka.a in $1/compat.
build_shim() {  # dir cc ar cflags...
	d=$1; cc=$2; ar=$3; shift 3
	mkdir -p "$d/compat" &&
	$cc -std=c11 -O2 -Wall -Wextra -Werror "$@" -Itests/compat \
		-c tests/compat/cmocka_shim.c -o "$d/compat/cmocka_shim.o" &&
	rm -f "$d/compat/libcmocka.a" &&
	$ar rcs "$d/compat/libcmocka.a" "$d/compat/cmocka_shim.o"
}

# One test binary; a failure leaves $n.failed beside the logs.
run_one_test() {        # dir runner suffix binary
	n=$(basename "$4" "$3")
	ts=$(date +%s)
	# shellcheck disable=SC2086
	# Under an emulator (qemu-user, wine) the VHDX crash sweep tries
	# every 8th write (make check, natively, tries every one).
	stride=1
	[ -n "$2" ] && stride=8
	if SHARED_FIXTURES=$FIX TMPDIR=$TMPDIR_T VHD_TEST_STRIDE=$stride \
		timeout 900 $2 "$4" >"$1/$n.log" 2>&1; then
		echo "($n: $(( $(date +%s) - ts ))s)" >>"$1/$n.log"
	else
		echo "exit $? after $(( $(date +%s) - ts ))s" >"$1/$n.failed"
	fi
}

# Runs every unit test binary of build dir $1 with the runner prefix $2
# (empty, qemu-..., wine); sets $ran and $failed.  The exhaustive crash
# test, by far the longest, runs beside the others.
run_tests() {   # dir runner suffix
	ran=0
	failed=""
	rm -f "$1"/*.failed "$1/failures.log"
	for t in "$1"/tests/test_*$3; do
		[ -f "$t" ] || continue
		ran=$((ran + 1))
		case $t in
		*/test_crash$3) run_one_test "$1" "$2" "$3" "$t" & ;;
		*) run_one_test "$1" "$2" "$3" "$t" ;;
		esac
	done
	wait
	for f in "$1"/*.failed; do
		[ -f "$f" ] || continue
		n=$(basename "$f" .failed)
		failed="$failed $n"
		{ echo "    $n: $(cat "$f")"; tail -15 "$1/$n.log" | sed 's/^/      /'; } \
			>>"$1/failures.log"
	done
}

TMPDIR_T=$(mktemp -d "${TMPDIR:-/tmp}/vhd-port.XXXXXX")
trap 'rm -rf "$TMPDIR_T"' EXIT INT TERM

# A Linux target through the project's Makefile: the library, vhdtool and
# every unit test.  $4: extra make variables.
linux_target() {        # name cc runner extra-make-args...
	name=$1; cc=$2; runner=$3; shift 3
	d=$PB/$name
	log=$PB/$name.log
	t0=$(date +%s)
	mkdir -p "$d"
	if ! need "$cc" "$pkg"; then
		result FAIL "$name" "compiler $cc not installed (package $pkg)"
		return
	fi
	if [ -n "$runner" ] && ! need "${runner%% *}" qemu-user; then
		result FAIL "$name" "${runner%% *} not installed (package qemu-user)"
		return
	fi
	if ! make -j"$JOBS" --no-print-directory BUILD="$d" CC="$cc" "$@" \
		"$d/libmsvhd.a" "$d/vhdtool" test-bins >"$log" 2>&1; then
		result FAIL "$name" "build failed (warnings are errors): $log"
		grep -E 'error:|warning:|\*\*\*' "$log" | head -20 | sed 's/^/    | /'
		return
	fi
	run_tests "$d" "$runner" ""
	if [ -n "$failed" ]; then
		result FAIL "$name" "unit tests failed:$failed ($ran run)"
		show_log "$d/failures.log"
	else
		result PASS "$name" "library, vhdtool and $ran unit test binaries${runner:+ under ${runner%% *}} ($(( $(date +%s) - t0 ))s)"
	fi
}

cross_target() {        # name cc runner debian-arch debian-triplet
	name=$1; cc=$2; runner=$3
	d=$PB/$name
	ar=${cc%-gcc}-ar
	mkdir -p "$d"
	if ! cross_zlib "$4" "$5"; then
		result FAIL "$name" "cannot fetch zlib1g-dev:$4 for vhdtool: $PB/zlib-$4.log"
		return
	fi
	if command -v "$cc" >/dev/null 2>&1 &&
	   ! build_shim "$d" "$cc" "$ar" -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64 \
		>"$PB/$name-shim.log" 2>&1; then
		result FAIL "$name" "cmocka stand-in does not build: $PB/$name-shim.log"
		return
	fi
	# Static: qemu-user then needs no target libraries, and the tests find
	# our libcmocka.a in $d/compat and our cmocka.h in tests/compat.
	# AZURE=0: no target libcurl or Nettle here (upload and download are
	# left out of this vhdtool; nothing they do depends on the word size).
	linux_target "$name" "$cc" "$runner" AR="$ar" AZURE=0 \
		CPPFLAGS="-D_GNU_SOURCE -Ilibvhd -Itests/compat $zflags" \
		LDFLAGS="-L$d/compat -L$zlibdir -static"
}

# Same bytes as x86_64: every fixture to raw and to a dynamic VHD.  VHD
# outputs carry a random unique id and the creation time (vhdtool has no
# option to fix them), so in every footer of both outputs (the copy at 0,
# the trailing one, and any stale one the library left in a gap: every
# 512-aligned "conectix") the timestamp (bytes 24..27), checksum (64..67)
# and unique id (68..83) are zeroed before comparing.  Raw outputs are
# compared as they are, and against expected.tsv's SHA-256 where it has one.
zero_ids() {    # file
	grep -obUa conectix "$1" | cut -d: -f1 | while read -r base; do
		[ $((base % 512)) = 0 ] || continue
		dd if=/dev/zero of="$1" bs=1 seek=$((base + 24)) count=4 \
			conv=notrunc 2>/dev/null
		dd if=/dev/zero of="$1" bs=1 seek=$((base + 64)) count=20 \
			conv=notrunc 2>/dev/null
	done
}

convert_target() {      # name runner
	name=$1-convert; runner=$2
	ref=$PB/x86_64-gcc/vhdtool
	tool=$PB/$1/vhdtool
	w=$TMPDIR_T/$name
	if [ -z "$FIX" ] || [ ! -d "$FIX" ]; then
		result FAIL "$name" "no fixtures: set SHARED_FIXTURES"
		return
	fi
	if [ ! -x "$ref" ] || [ ! -x "$tool" ]; then
		result FAIL "$name" "vhdtool missing (x86_64-gcc or $1 build failed)"
		return
	fi
	mkdir -p "$w"
	n=0; bad=""
	for f in "$FIX"/*; do
		case $f in *.md|*.tsv) continue ;; esac
		b=$(basename "$f")
		for to in raw vhd; do
			# shellcheck disable=SC2086
			"$ref" convert --ignore-checksum -O $to "$f" "$w/$b.ref.$to" \
				>"$w/$b.ref.$to.err" 2>&1; rr=$?
			# shellcheck disable=SC2086
			$runner "$tool" convert --ignore-checksum -O $to "$f" \
				"$w/$b.new.$to" >"$w/$b.new.$to.err" 2>&1; rn=$?
			n=$((n + 1))
			if [ $rr != $rn ]; then
				bad="$bad $b($to: exit $rr vs $rn)"
				continue
			fi
			[ $rr = 0 ] || continue     # refused on both: same
			if [ $to = vhd ]; then
				zero_ids "$w/$b.ref.vhd"
				zero_ids "$w/$b.new.vhd"
			fi
			if ! cmp -s "$w/$b.ref.$to" "$w/$b.new.$to"; then
				bad="$bad $b($to: $(cmp "$w/$b.ref.$to" "$w/$b.new.$to" 2>&1 | sed 's/.*: //'))"
				continue
			fi
			want=$(awk -F'\t' -v f="$b" '$1 == f { print $5 }' \
				"$FIX/expected.tsv" 2>/dev/null)
			if [ $to = raw ] && [ -n "$want" ] && [ "$want" != - ]; then
				got=$(sha256sum <"$w/$b.new.raw" | cut -d' ' -f1)
				[ "$got" = "$want" ] || bad="$bad $b(raw sha256 $got, expected $want)"
			fi
		done
		rm -f "$w/$b".*
	done
	if [ -n "$bad" ]; then
		result FAIL "$name" "differs from x86_64:$bad"
	else
		result PASS "$name" "$n conversions of $(ls "$FIX" | grep -cv '\.md$\|\.tsv$') fixtures identical to x86_64 (VHD ids/timestamps zeroed)"
	fi
}

# A 32-bit target's vhdtool on files over 4 GiB (sparse, a few MiB on disk).
large_target() {        # target runner
	name=$1-large; runner=$2
	tool=$PB/$1/vhdtool
	w=$TMPDIR_T/$name
	if [ ! -x "$tool" ]; then
		result FAIL "$name" "vhdtool missing ($1 build failed)"
		return
	fi
	rm -rf "$w"; mkdir -p "$w"
	if RUN=$runner VHDTOOL=$tool sh tests/port/large_files.sh "$w" \
		>"$PB/$name.log" 2>&1; then
		result PASS "$name" "$(tail -1 "$PB/$name.log")${runner:+ (under ${runner%% *})}"
	else
		result FAIL "$name" "files over 4 GiB: $PB/$name.log"
		show_log "$PB/$name.log"
	fi
	rm -rf "$w"
}

# Windows: no Makefile (no .so, other backend); the library is
# LIBVHD_SRCS with io_win32.c for io_file.c.
mingw_target() {
	name=mingw64
	t0=$(date +%s)
	cc=x86_64-w64-mingw32-gcc
	d=$PB/$name
	log=$PB/$name.log
	rm -rf "$d"
	mkdir -p "$d/obj" "$d/tests"
	if ! need $cc gcc-mingw-w64-x86-64; then
		result FAIL $name "compiler $cc not installed (package gcc-mingw-w64-x86-64)"
		return
	fi
	: >"$log"
	cf="-std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -D__USE_MINGW_ANSI_STDIO=1 -D_FILE_OFFSET_BITS=64 -Ilibvhd"
	objs=""
	for s in $(echo "$LIBVHD_SRCS" | tr ' ' '\n' | grep -v 'io_file\.c$') libvhd/io_win32.c; do
		o=$d/obj/$(basename "$s" .c).o
		echo "$cc $cf -c $s" >>"$log"
		# shellcheck disable=SC2086
		$cc $cf -c "$s" -o "$o" >>"$log" 2>&1 || { objs=FAIL; break; }
		objs="$objs $o"
	done
	if [ "$objs" = FAIL ]; then
		result FAIL $name "library build failed (warnings are errors): $log"
		show_log "$log"
		return
	fi
	# shellcheck disable=SC2086
	x86_64-w64-mingw32-ar rcs "$d/libmsvhd.a" $objs
	# Tests: our cmocka, and POSIX calls of the test code mapped to Windows.
	tcf="$cf -Itests/compat -include tests/compat/win_posix.h"
	# shellcheck disable=SC2086
	if ! $cc $tcf -c tests/compat/cmocka_shim.c -o "$d/obj/cmocka_shim.o" >>"$log" 2>&1; then
		result FAIL $name "cmocka stand-in does not build: $log"
		return
	fi
	helpers="$d/obj/cmocka_shim.o"
	for s in tests/lib_*.c; do
		o=$d/obj/t_$(basename "$s" .c).o
		# shellcheck disable=SC2086
		$cc $tcf -c "$s" -o "$o" >>"$log" 2>&1 || { helpers=FAIL; break; }
		helpers="$helpers $o"
	done
	if [ "$helpers" = FAIL ]; then
		result FAIL $name "test helpers do not build: $log"
		show_log "$log"
		return
	fi
	built=0; nobuild=""
	for s in tests/test_*.c; do
		n=$(basename "$s" .c)
		case " $WIN_SKIP " in *" $n "*) continue ;; esac
		# shellcheck disable=SC2086
		if $cc $tcf -c "$s" -o "$d/obj/$n.o" >>"$log" 2>&1 &&
		   $cc -static -o "$d/tests/$n.exe" "$d/obj/$n.o" $helpers \
			"$d/libmsvhd.a" -lwinpthread >>"$log" 2>&1; then
			built=$((built + 1))
		else
			nobuild="$nobuild $n"
		fi
	done
	if [ -n "$nobuild" ]; then
		result FAIL $name "tests do not build for Windows:$nobuild ($log)"
		grep -E 'error:|warning:' "$log" | head -10 | sed 's/^/    | /'
		return
	fi
	# wine: a private prefix, created on first use (some seconds).
	if ! command -v wine >/dev/null 2>&1; then
		result PASS $name "library and $built unit tests cross-built; NOT run: wine not installed (package wine)"
		return
	fi
	WINEPREFIX=$PB/wineprefix
	WINEDEBUG=-all
	export WINEPREFIX WINEDEBUG
	if ! timeout 300 wine cmd /c exit 0 >"$PB/wine-boot.log" 2>&1; then
		result PASS $name "library and $built unit tests cross-built; NOT run: wine does not start ($PB/wine-boot.log)"
		return
	fi
	run_tests "$d" wine .exe
	if [ -n "$failed" ]; then
		result FAIL $name "unit tests failed under wine:$failed ($ran run)"
		show_log "$d/failures.log"
	else
		result PASS $name "library (io_win32.c) and $ran unit test binaries under wine, not run: $WIN_SKIP ($(( $(date +%s) - t0 ))s)"
	fi
}

# 32-bit binaries run natively where the kernel runs them (i686 on x86_64,
# armhf on some arm64 kernels), else, or with PORT_QEMU_USER=1, under
# qemu-user.
runner32() {    # cc qemu
	printf 'int main(void){return 0;}\n' >"$TMPDIR_T/t.c"
	if [ "${PORT_QEMU_USER:-0}" != 1 ] && command -v "$1" >/dev/null 2>&1 &&
	   "$1" -static -o "$TMPDIR_T/t32" "$TMPDIR_T/t.c" 2>/dev/null &&
	   "$TMPDIR_T/t32" 2>/dev/null; then
		echo ""
	else
		echo "$2"
	fi
}
runner_i686=$(runner32 i686-linux-gnu-gcc qemu-i386)
runner_armhf=$(runner32 arm-linux-gnueabihf-gcc qemu-arm)

# The conversions compare with the x86_64 vhdtool: build it first.  Then
# the targets run side by side (most of the time is tests under emulation
# and waiting for fsync), each into its own report, shown in order.
make -j"$JOBS" --no-print-directory BUILD="$PB/x86_64-gcc" CC=gcc \
	"$PB/x86_64-gcc/vhdtool" >"$PB/x86_64-gcc-vhdtool.log" 2>&1
RES=$TMPDIR_T/results
mkdir -p "$RES"
(pkg=build-essential; linux_target x86_64-gcc gcc "") >"$RES/1" 2>&1 &
(pkg=clang; linux_target x86_64-clang clang "") >"$RES/2" 2>&1 &
(pkg=gcc-i686-linux-gnu
 cross_target i686 i686-linux-gnu-gcc "$runner_i686" i386 i386-linux-gnu
 convert_target i686 "$runner_i686"
 large_target i686 "$runner_i686") >"$RES/3" 2>&1 &
(pkg=gcc-arm-linux-gnueabihf
 cross_target armhf arm-linux-gnueabihf-gcc "$runner_armhf" armhf arm-linux-gnueabihf
 convert_target armhf "$runner_armhf"
 large_target armhf "$runner_armhf") >"$RES/6" 2>&1 &
(pkg=gcc-s390x-linux-gnu
 cross_target s390x s390x-linux-gnu-gcc qemu-s390x s390x s390x-linux-gnu
 convert_target s390x qemu-s390x) >"$RES/4" 2>&1 &
mingw_target >"$RES/5" 2>&1 &
wait
cat "$RES"/1 "$RES"/2 "$RES"/3 "$RES"/6 "$RES"/4 "$RES"/5
pass=$(cat "$RES"/* | grep -c '^PASS ')
fail=$(cat "$RES"/* | grep -c '^FAIL ')
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
