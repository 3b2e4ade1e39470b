# qemu-io through the NBD export: pattern writes and reads, discard and
# write -z read back as zeros, flush, FUA writes, unaligned I/O; the VHD
# file then reads the same in qemu-img.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils
need qemu-img qemu-utils

"$VHDTOOL" create --block-size 512K disk.vhd 8M
start_server --unix "$SOCK" disk.vhd
uri="nbd+unix:///disk?socket=$SOCK"
q() { qemu-io -f raw "$@" "$uri" >qio.out || { cat qio.out; fail "qemu-io $*"; }
      ! grep -qi "fail\|error" qio.out || { cat qio.out; fail "qemu-io $*"; }; }
q -c 'write -P 0xaa 0 1M' -c 'write -P 0xbb 3M 1M' -c 'write -f -P 0xcc 7M 1M' -c 'flush'
q -c 'read -P 0xaa 0 1M' -c 'read -P 0 1M 2M' -c 'read -P 0xbb 3M 1M' -c 'read -P 0xcc 7M 1M'
# Discard a whole block and part of one; write zeroes with and without unmap.
q -c 'discard 3M 512k' -c 'discard 3670016 4096' -c 'write -z 0 64k' -c 'write -z -u 128k 128k'
q -c 'read -P 0 3M 512k' -c 'read -P 0 3670016 4096' -c 'read -P 0xbb 3674112 520192' \
  -c 'read -P 0 0 64k' -c 'read -P 0xaa 64k 64k' -c 'read -P 0 128k 128k' -c 'read -P 0xaa 256k 768k'
# Unaligned I/O (sub-sector offsets and lengths).
q -c 'write -P 0x77 1000001 3333' -c 'read -P 0x77 1000001 3333' -c 'read -P 0xaa 1000000 1' -c 'read -P 0xaa 1003334 1'
stop_server

# The image file itself (judged by qemu-img) holds the same.
qemu-io --image-opts -c 'read -P 0xaa 256k 512k' -c 'read -P 0 3M 512k' -c 'read -P 0x77 1000001 3333' \
	-c 'read -P 0xcc 7M 1M' "$(vpc_opts disk.vhd)" >qio.out || { cat qio.out; fail "qemu reads the VHD differently"; }
