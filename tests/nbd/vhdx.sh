# vhdnbd serves VHDX read-only: nbdcopy reads what qemu-img reads, the
# base:allocation map shows holes where the VHDX has no blocks, a disk of
# 4 KiB logical sectors advertises 4096 as its minimum block size (512-byte
# disks keep 1), and a read-only export leaves the image unchanged; a
# read-write export takes writes (tests/cli/vhdx_write.sh judges them).
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-img qemu-utils
need qemu-io qemu-utils
need nbdcopy libnbd-bin

qemu-img create -q -f vhdx -o block_size=1M a.vhdx 64M
qemu-io -c 'write -P 0x5a 1000k 3M' -c 'write -P 0x66 10M 1M' a.vhdx >/dev/null
qemu-img convert -f vhdx -O raw a.vhdx theirs.raw
sha256sum a.vhdx > a.sum

start_server --read-only --unix "$SOCK" a.vhdx
uri="nbd+unix:///?socket=$SOCK"
nbdinfo --json "$uri" > info.json
[ "$(json_get info.json "j['exports'][0]['export-size']")" = 67108864 ] || fail "size"
[ "$(json_get info.json "j['exports'][0]['block_size_minimum']")" = 1 ] ||
	fail "512-byte sectors: minimum block size is not 1"
json_get info.json "j['exports'][0]['description']" | grep -q VHDX ||
	fail "the description does not name VHDX"
nbdcopy "$uri" ours.raw
cmp ours.raw theirs.raw || fail "nbdcopy reads differently from qemu-img"
nbdinfo --map "$uri" > map.txt
grep -Eq '^ *11534336 +55574528 +3 +hole,zero' map.txt ||
	fail "base:allocation: no hole after the last block: $(cat map.txt)"
stop_server

cp a.vhdx k4.vhdx
python3 "$TOP/tests/vhdx/craft.py" sector4k k4.vhdx
start_server --read-only --unix "$SOCK" k4.vhdx
nbdinfo --json "$uri" > info.json
[ "$(json_get info.json "j['exports'][0]['block_size_minimum']")" = 4096 ] ||
	fail "4K sectors: minimum block size is not 4096"
nbdcopy "$uri" ours4k.raw
cmp ours4k.raw theirs.raw || fail "4K sectors: reads differently"
stop_server

sha256sum -c --quiet a.sum || fail "a read-only export modified the image"
start_server --unix "$SOCK" a.vhdx
qemu-io -f raw -c 'write -P 0x42 5M 1M' "$uri" > /dev/null
stop_server
qemu-io -f raw -c 'write -P 0x42 5M 1M' theirs.raw > /dev/null
qemu-img compare -q -f vhdx -F raw a.vhdx theirs.raw || fail "a write through NBD did not land"
echo ok
