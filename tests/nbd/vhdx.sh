# vhdnbd serves VHDX read-only: nbdcopy reads what qemu-img reads, the
# base:allocation map shows holes where the VHDX has no blocks, a disk of
# 4 KiB logical sectors advertises 4096 as its minimum block size (512-byte
# disks keep 1), and a read-write export of a VHDX is refused (exit 1, one
# message) while the image stays unchanged.
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

expect_exit 1 "$VHDNBD" --unix "$SOCK" a.vhdx 2> err.txt
grep -q "a.vhdx.*writing VHDX is not supported" err.txt || fail "$(cat err.txt)"
sha256sum -c --quiet a.sum || fail "the image was modified"
echo ok
