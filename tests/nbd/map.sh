# nbdinfo --map: unallocated blocks are holes reading as zeros, allocated
# blocks are data; nbdinfo --map --totals agrees with the block count.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils

"$VHDTOOL" create --block-size 2M disk.vhd 16M
start_server --unix "$SOCK" disk.vhd
uri="nbd+unix:///?socket=$SOCK"
nbdinfo --map "$uri" >map0.txt
# A fresh dynamic disk: one hole covering everything.
[ "$(wc -l <map0.txt)" -eq 1 ] || { cat map0.txt; fail "fresh disk map has more than one extent"; }
grep -Eq '^ *0 +16777216 +3 +hole,zero' map0.txt || { cat map0.txt; fail "fresh disk not a hole"; }
# Write into the third block (4M..6M) and the last sector of the disk.
qemu-io -f raw -c 'write -P 0x5a 5M 4k' -c 'write -P 0x11 16776704 512' "$uri" >/dev/null
nbdinfo --map "$uri" >map1.txt
cat map1.txt
"$PY" - map1.txt <<'PY'
import sys
ext = []
for line in open(sys.argv[1]):
    off, ln, typ = line.split()[:3]
    ext.append((int(off), int(ln), int(typ)))
def status(o):
    for off, ln, typ in ext:
        if off <= o < off + ln:
            return typ
    raise SystemExit("offset %d not covered" % o)
assert ext[0][0] == 0 and sum(l for _, l, _ in ext) == 16 << 20, ext
for a, b in zip(ext, ext[1:]):
    assert a[0] + a[1] == b[0], ("gap", a, b)
for off, ln, typ in ext[:-1]:
    assert ln % 512 == 0, ("unaligned extent", off, ln)
assert status(0) == 3 and status((4 << 20) - 1) == 3, "before the written block"
assert status(4 << 20) == 0 and status(5 << 20) == 0 and status((6 << 20) - 1) == 0, "written block not data"
assert status(6 << 20) == 3 and status(10 << 20) == 3, "after the written block"
assert status((16 << 20) - 1) == 0, "last block not data"
PY
# The data is there and the rest reads as zeros.
qemu-io -f raw -c 'read -P 0x5a 5M 4k' -c 'read -P 0 0 5M' -c 'read -P 0 6M 1M' "$uri" >/dev/null ||
	fail "read back wrong data"
stop_server
