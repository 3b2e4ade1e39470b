# nbdcopy with 4 connections into and out of an export: what comes back is
# what went in, and qemu-img (reading the VHD file itself after the
# server stopped) agrees.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need nbdcopy libnbd-bin
need qemu-img qemu-utils

mkdata src.raw 24 nbdcopy
# Leave some zero runs so copies exercise zeroing/trim paths as well.
dd if=/dev/zero of=src.raw bs=1M seek=8 count=5 conv=notrunc status=none
"$VHDTOOL" create disk.vhd 24M
start_server --unix "$SOCK" disk.vhd
uri="nbd+unix:///?socket=$SOCK"
nbdcopy --connections=4 --requests=16 src.raw "$uri"
nbdcopy --connections=4 "$uri" back.raw
cmp src.raw back.raw || fail "nbdcopy round trip differs"
# Over TCP as well, from a second server on the same image after the first stopped.
stop_server
qemu-img compare --image-opts "driver=raw,file.filename=src.raw" "$(vpc_opts disk.vhd)" ||
	fail "image file differs from the source"

port=$(free_port)
start_server --read-only --port "$port" --bind 127.0.0.1 disk.vhd
rm -f back.raw
nbdcopy --connections=4 "nbd://127.0.0.1:$port" back.raw
cmp src.raw back.raw || fail "TCP copy differs"
stop_server
