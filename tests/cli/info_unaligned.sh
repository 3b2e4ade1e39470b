# info counts the allocated blocks whose data does not start on a 4 KiB
# boundary of the file (QEMU's layout packs blocks 2 MiB + 512 bytes
# apart): the count agrees with the host offsets qemu-img map gives; our
# own images and what convert writes from QEMU's have none; info does not
# change the image.
. "$TOP/tests/lib.sh"
need python3 python3
need qemu-img qemu-utils

mkdata raw.img 20 31
qemu-img convert -q -S 0 -f raw -O vpc -o subformat=dynamic,force_size=on raw.img q.vhd
"$VHDTOOL" convert raw.img ours.vhd >/dev/null
"$VHDTOOL" convert q.vhd conv.vhd >/dev/null
qemu-img map -f vpc --output=json q.vhd > map.json
sum0=$(sha256sum q.vhd)

for f in q.vhd ours.vhd conv.vhd; do
	"$VHDTOOL" info --json "$f" > "$f.json" || fail "$f: info --json exited $?"
done
[ "$(sha256sum q.vhd)" = "$sum0" ] || fail "info changed q.vhd"

python3 - <<'PY' || fail "unaligned_blocks"
import json
BS = 2 * 1048576
# Host offset of every allocated 2 MiB block, from qemu-img's map.
starts = {}
for e in json.load(open("map.json")):
    if not e.get("data") or "offset" not in e:
        continue
    g = e["start"]
    while g < e["start"] + e["length"]:
        if g % BS == 0:
            starts[g // BS] = e["offset"] + (g - e["start"])
        g += BS - g % BS
q = json.load(open("q.vhd.json"))
assert q["allocated_blocks"] == len(starts) == 10, (q["allocated_blocks"], len(starts))
want = sum(1 for o in starts.values() if o % 4096)
assert want > 0, "qemu-img's layout had no unaligned block here"
assert q["unaligned_blocks"] == want, (q["unaligned_blocks"], want, sorted(starts.values()))
for f in ("ours.vhd", "conv.vhd"):
    i = json.load(open(f + ".json"))
    assert i["allocated_blocks"] == 10 and i["unaligned_blocks"] == 0, (f, i)
PY

# Text: a line for images that have such blocks, none for aligned ones.
"$VHDTOOL" info q.vhd > q.txt
grep -q "^unaligned blocks: *[1-9][0-9]*, data not on a 4 KiB boundary" q.txt ||
	fail "text info does not report unaligned blocks: $(cat q.txt)"
"$VHDTOOL" info ours.vhd > ours.txt
! grep -q "unaligned" ours.txt || fail "an aligned image reported unaligned blocks"
# Fixed disks have no blocks: null.
"$VHDTOOL" create --type fixed fix.vhd 1M >/dev/null
"$VHDTOOL" info --json fix.vhd | python3 -c '
import json, sys
assert json.load(sys.stdin)["unaligned_blocks"] is None' || fail "fixed: unaligned_blocks not null"
echo ok
