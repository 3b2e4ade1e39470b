#!/bin/bash
# azure.sh - time vhdtool upload against Azurite (the Azure Storage
# emulator) on a dynamic VHD of BENCH_SIZE (default 1 GiB) holding 25% data
# (every 4th 4 MiB chunk random, the rest never written):
#   az-up-sparse  upload -c 8             (only the data is sent)
#   az-up-dense   upload -c 8 --no-sparse (every page sent: the same client
#                                          doing what a plain copy does)
#   az-up-c1      upload -c 1             (one connection)
# Each round starts a fresh Azurite; ours runs in the same order every round.
#
#   bash bench/azure.sh          standalone: prints the medians and verdicts
#   (bench.sh runs it with AZ_SAMPLES=DIR: samples go to DIR/KEY.SIDE)
# Environment: BENCH_SIZE, BENCH_REPS (default 3), BENCH_DIR, BUILD.
set -u
export LC_ALL=C
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
VHDTOOL=$BUILD/vhdtool
REPS=${BENCH_REPS:-3}
SIZE=${BENCH_SIZE:-1G}
case $SIZE in
*[gG]) SIZE=$(( ${SIZE%?} * 1073741824 )) ;;
*[mM]) SIZE=$(( ${SIZE%?} * 1048576 )) ;;
esac
[ -x "$VHDTOOL" ] || { echo "azure bench: $VHDTOOL missing: run make first" >&2; exit 1; }

T=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vhdbench-az.XXXXXX") || exit 1
S=${AZ_SAMPLES:-$T/samples}
mkdir -p "$S"
fail() { echo "azure bench: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 not found: apt-get install $2"; }
# shellcheck source=../tests/azurite.sh
. "$TOP/tests/azurite.sh"
trap 'az_cleanup; rm -rf "$T"' EXIT

# The image: 25% data.
python3 - "$T/disk.raw" "$SIZE" <<'PY' || fail "making the image"
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
chunk = 4 << 20
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for i, off in enumerate(range(0, size, chunk)):
    if i % 4 == 0:
        os.pwrite(fd, rng.randbytes(min(chunk, size - off)), off)
os.close(fd)
PY
"$VHDTOOL" convert "$T/disk.raw" "$T/disk.vhd" >/dev/null || fail "convert"
rm -f "$T/disk.raw"

timed() {   # KEY CMD...
	local key=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >>"$T/log" 2>&1 || { echo "azure bench: failed: $*" >&2; return 1; }
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$S/$key.ours"
}
for r in $(seq "$REPS"); do
	for run in "az-up-sparse -c 8" "az-up-dense -c 8 --no-sparse" "az-up-c1 -c 1"; do
		set -- $run
		key=$1; shift
		az_cleanup; AZ_PIDS=""
		rm -rf "$T/azurite"
		azurite_start
		$AZBLOB container "$AZ/bench"
		timed "$key" "$VHDTOOL" upload "$@" "$T/disk.vhd" "$AZ/bench/disk.vhd"
	done
done

median() {
	sort -g "$S/$1.ours" 2>/dev/null | awk '{ a[NR] = $1 }
		END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
		      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
if [ -z "${AZ_SAMPLES:-}" ]; then
	sp=$(median az-up-sparse) de=$(median az-up-dense) c1=$(median az-up-c1)
	awk -v s="$sp" -v d="$de" -v c="$c1" -v m=$((SIZE / 1048576)) 'BEGIN {
		printf "upload %d MiB dynamic VHD, 25%% data, 8 connections: %.2f s\n", m, s
		printf "  same, --no-sparse (every page sent): %.2f s; ratio %.2f (target <= 0.35): %s\n",
			d, s / d, s / d <= 0.35 ? "PASS" : "MISS"
		printf "  same, 1 connection: %.2f s; ratio 8/1 %.2f (target < 1): %s\n",
			c, s / c, s / c < 1 ? "PASS" : "MISS" }'
fi
