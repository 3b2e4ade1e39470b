# Protocol edges on a 2040 GiB image (raw socket, tests/nbd/edges.py):
# unknown and repeated options, BLOCK_STATUS of the maximum length,
# WRITE_ZEROES of 128 MiB and of almost 4 GiB; then nbdcopy writes a
# sparse 300 MiB file (it sends large zero requests) and the export
# reads back as that file.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need nbdcopy libnbd-bin
need qemu-img qemu-utils

size=$((2040 * 1024 * 1024 * 1024))
"$VHDTOOL" create big.vhd 2040G >/dev/null
start_server --unix "$SOCK" big.vhd
"$PY" "$TOP/tests/nbd/edges.py" "$SOCK" "$size"
stop_server
"$VHDTOOL" check big.vhd >/dev/null || fail "image not clean after the edge tests"

"$VHDTOOL" create small.vhd 300M >/dev/null
mkdata part.raw 1 edges
truncate -s 300M sparse.raw
dd if=part.raw of=sparse.raw bs=1M seek=200 conv=notrunc status=none
start_server --unix "$SOCK" small.vhd
nbdcopy sparse.raw "nbd+unix:///?socket=$SOCK"
qemu-img compare -f raw -F raw sparse.raw "nbd+unix:///?socket=$SOCK" || fail "nbdcopy result differs"
stop_server
