# map --json: valid JSON whose extents tile the disk and say exactly where
# the data is, with the depth in a chain.
. "$TOP/tests/lib.sh"
need python3 python3

mkdata rnd 2 31
truncate -s 10M raw.img
dd if=rnd of=raw.img bs=1M count=1 seek=2 conv=notrunc status=none   # block 1
dd if=rnd of=raw.img bs=1M count=1 seek=9 skip=1 conv=notrunc status=none # block 4
"$VHDTOOL" convert raw.img d.vhd
"$VHDTOOL" map --json d.vhd > map.json
"$VHDTOOL" create --parent d.vhd c.vhd >/dev/null
"$VHDTOOL" map --json c.vhd > cmap.json
"$VHDTOOL" map d.vhd | grep -q data || fail "text map shows no data"
python3 - <<'PY' || fail "map --json content"
import json
M = 1048576
for name, depth in (("map.json", 0), ("cmap.json", 1)):
    m = json.load(open(name))
    pos = 0
    data = []
    for e in m:
        assert e["offset"] == pos, (name, e, pos)
        assert e["length"] > 0
        assert e["data"] != e["zero"]
        if e["data"]:
            assert e["depth"] == depth, (name, e)
            data.append((e["offset"], e["length"]))
        else:
            assert e["depth"] == -1
        pos += e["length"]
    assert pos == 10 * M, (name, pos)
    # Whole 2 MiB blocks 1 and 4 hold the data.
    assert data == [(2 * M, 2 * M), (8 * M, 2 * M)], (name, data)
PY
echo ok
