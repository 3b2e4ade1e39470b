#!/bin/sh
# make demo: a short tour of libvhd's tools on small images made here.
# Everything happens in a scratch directory that is removed at the end.
#   sh scripts/demo.sh              the tools just built in $BUILD (build/)
#   sh scripts/demo.sh --installed  the installed tools (from PATH), e.g.
#                                   after installing the Debian packages
set -eu
if [ "${1:-}" = --installed ]; then
	for t in vhdtool vhdfuse vhdnbd qemu-img nbdinfo; do
		command -v "$t" >/dev/null || { echo "demo: $t is not installed" >&2; exit 1; }
	done
	VHDTOOL=vhdtool VHDFUSE=vhdfuse VHDNBD=vhdnbd
else
	top=$(cd "$(dirname "$0")/.." && pwd)
	B=${BUILD:-$top/build}
	VHDTOOL=$B/vhdtool VHDFUSE=$B/vhdfuse VHDNBD=$B/vhdnbd
fi
d=$(mktemp -d "${TMPDIR:-/tmp}/vhddemo.XXXXXX")
mnt="$d/mnt"; nbdpid=""
cleanup() {
	fusermount3 -u "$mnt" 2>/dev/null || true
	[ -n "$nbdpid" ] && kill "$nbdpid" 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT INT TERM
cd "$d"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "A raw disk: 64 MiB, the first half random data, the rest zeros"
head -c 33554432 /dev/urandom > disk.raw
truncate -s 64M disk.raw
run ls -ls disk.raw

step "Convert it to a dynamic VHD: zero blocks are not stored"
run "$VHDTOOL" convert disk.raw disk.vhd
run "$VHDTOOL" info disk.vhd
run "$VHDTOOL" map disk.vhd

step "Check it, and let QEMU judge it: identical to the raw disk"
run "$VHDTOOL" check disk.vhd
run qemu-img compare --image-opts "driver=raw,file.filename=disk.raw" \
	"driver=vpc,force_size_calc=current_size,file.filename=disk.vhd"

step "A differencing child: writes go to the child, the parent stays as it was"
run "$VHDTOOL" create --parent disk.vhd child.vhd
sum_parent=$(sha256sum disk.vhd | cut -d' ' -f1)
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
	step "Mount the child with vhdfuse and write into it like a file"
	touch "$mnt"
	# in the foreground (-f), so the demo can wait for it to let go of
	# the image after the unmount
	printf '$ %s -f %s %s &\n' "$VHDFUSE" child.vhd "$mnt"
	"$VHDFUSE" -f child.vhd "$mnt" & fusepid=$!
	for _ in $(seq 100); do
		mountpoint -q "$mnt" && break
		kill -0 "$fusepid" 2>/dev/null || break
		sleep 0.05
	done
	mountpoint -q "$mnt" || { echo "demo: vhdfuse did not mount child.vhd" >&2; exit 1; }
	run dd if=/dev/urandom of="$mnt" bs=4096 seek=100 count=10 conv=notrunc,fsync status=none
	run fusermount3 -u "$mnt"
	wait "$fusepid"
fi
run "$VHDTOOL" info child.vhd
[ "$(sha256sum disk.vhd | cut -d' ' -f1)" = "$sum_parent" ] && echo "parent unchanged: yes"

step "Serve the chain over NBD and read it with libnbd's nbdinfo"
"$VHDNBD" --unix "$d/nbd.sock" --pid-file "$d/nbd.pid" child.vhd &
nbdpid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$d/nbd.sock" ] && break; sleep 0.2; done
run nbdinfo "nbd+unix:///?socket=$d/nbd.sock"
run nbdinfo --map "nbd+unix:///?socket=$d/nbd.sock"
kill "$nbdpid"; wait "$nbdpid" 2>/dev/null || true; nbdpid=""

step "Merge the child into its parent, then check"
run "$VHDTOOL" merge child.vhd
run "$VHDTOOL" check disk.vhd

step "The largest disk the format allows, 2040 GiB: the file is little more than its 4 MiB BAT"
run "$VHDTOOL" create big.vhd 2040G
run ls -ls big.vhd
run qemu-img info -f vpc big.vhd
echo
echo "demo finished"
