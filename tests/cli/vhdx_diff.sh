# Differencing VHDX (crafted by the specification, tests/vhdx/craft.py
# diff: a parent locator with parent_linkage, relative_path and
# absolute_win32_path; a sector bitmap block; a partially present block):
# read through the parent, judged by 7-Zip (qemu-img cannot open
# differencing VHDX) and by the bytes each block must hold; the parent is
# found by its relative path, checked by its DataWriteGuid, and a wrong or
# missing parent is refused.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils
need 7zz 7zip
need python3 python3
craft="$TOP/tests/vhdx/craft.py"

mkdir -p vms
qemu-img create -q -f vhdx -o block_size=1M vms/parent.vhdx 64M
qemu-io -c 'write -P 0x11 0 8M' -c 'write -P 0x12 20M 1M' vms/parent.vhdx >/dev/null
qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off vms/child.vhdx 64M
qemu-io -c 'write -P 0x5a 0 2M' -c 'write -P 0x66 10M 1M' vms/child.vhdx >/dev/null
python3 "$craft" diff vms/child.vhdx vms/parent.vhdx

expect() {   # raw file, then "start end byte" ranges; zeros elsewhere
	python3 - "$@" <<'PY'
import sys
M = 1 << 20
raw = open(sys.argv[1], 'rb').read()
want = bytearray(len(raw))
for r in sys.argv[2:]:
    s, e, b = r.split()
    want[int(float(s) * M):int(float(e) * M)] = bytes([int(b, 16)]) * int((float(e) - float(s)) * M)
if raw != want:
    i = next(k for k in range(len(raw)) if raw[k] != want[k])
    sys.exit("byte %d: %02x, expected %02x" % (i, raw[i], want[i]))
PY
}
# Block 0 and 10 are the child's, block 1 only in its first half (the
# bitmap), everything else the parent's.
chain="0 1.5 5a|1.5 8 11|10 11 66|20 21 12"
"$VHDTOOL" convert vms/child.vhdx ours.raw
IFS='|'; set -- $chain; unset IFS
expect ours.raw "$@" || fail "the chain reads wrong bytes"
7zz x -y -ox7 vms/child.vhdx > 7z.log || { cat 7z.log; fail "7zz failed"; }
cmp ours.raw x7/child.img || fail "7-Zip reads the chain differently"

"$VHDTOOL" info vms/child.vhdx > info.txt
grep -q '^type: *differencing' info.txt || fail "info: $(cat info.txt)"
grep -q '^parent path: *\.\\parent\.vhdx' info.txt || fail "info: $(cat info.txt)"
"$VHDTOOL" map --json vms/child.vhdx > map.json
python3 - map.json <<'PY' || fail "map: $(cat map.json)"
import json, sys
M = 1 << 20
m = [(e["offset"], e["length"], e["depth"]) for e in json.load(open(sys.argv[1]))]
assert (0, 3 * M // 2, 0) in m, m
assert (3 * M // 2, M // 2 + 6 * M, 1) in m, m
assert (10 * M, M, 0) in m, m
assert (20 * M, M, 1) in m, m
PY
"$VHDTOOL" check vms/child.vhdx > /dev/null || fail "check reports problems"

# PAYLOAD_BLOCK_ZERO in a differencing image reads zeros (7-Zip agrees),
# not the parent.
cp vms/child.vhdx vms/zero.vhdx
python3 "$craft" zero-block vms/zero.vhdx 5
rm -rf x7 && "$VHDTOOL" convert vms/zero.vhdx zero.raw
zchain="0 1.5 5a|1.5 5 11|6 8 11|10 11 66|20 21 12"
IFS='|'; set -- $zchain; unset IFS
expect zero.raw "$@" || fail "a ZERO block does not read as zeros"
7zz x -y -ox7 vms/zero.vhdx > 7z.log && cmp zero.raw x7/zero.img ||
	fail "7-Zip reads the ZERO block differently"

# A wrong parent at the relative path: another VHDX (other DataWriteGuid).
mkdir -p other && cp vms/child.vhdx other/child.vhdx
qemu-img create -q -f vhdx -o block_size=1M other/parent.vhdx 64M
expect_exit 3 "$VHDTOOL" convert other/child.vhdx o.raw 2> err.txt
grep -q "DataWriteGuid .* expected parent_linkage" err.txt || fail "wrong parent: $(cat err.txt)"
# A VHD where the parent should be.
rm other/parent.vhdx && "$VHDTOOL" create --format vhd other/parent.vhdx 64M > /dev/null
expect_exit 1 "$VHDTOOL" convert other/child.vhdx o.raw 2> err.txt
grep -q "a VHD image, where only a VHDX can be used" err.txt || fail "VHD parent: $(cat err.txt)"
# No parent at all: reported, the child still described.
rm other/parent.vhdx
expect_exit 1 "$VHDTOOL" info other/child.vhdx > info.txt 2> err.txt
grep -q "parent not" err.txt || fail "missing parent: $(cat err.txt)"
grep -q '^type: *differencing' info.txt || fail "missing parent: not described"
echo ok
