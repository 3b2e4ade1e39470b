# info --json is valid JSON with the documented keys and right values, for
# dynamic, fixed and differencing disks; a child whose parent is missing is
# still described (exit 0, warning on stderr); text info shows both sizes.
. "$TOP/tests/lib.sh"
need python3 python3

mkdata raw.img 3 21
"$VHDTOOL" convert raw.img dyn.vhd
"$VHDTOOL" create --type fixed fix.vhd 10M >/dev/null
mkdir sub
"$VHDTOOL" create --parent dyn.vhd sub/child.vhd >/dev/null

for f in dyn.vhd fix.vhd sub/child.vhd; do
	"$VHDTOOL" info --json "$f" > "$(basename "$f").json" || fail "$f: info --json exited $?"
done
python3 - <<'PY' || fail "info --json content"
import json, re
keys = ["type", "virtual_size", "chs_size", "block_size", "allocated_bytes",
        "unique_id", "creator", "file_size", "geometry", "parent", "chain"]
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
d = json.load(open("dyn.vhd.json"))
f = json.load(open("fix.vhd.json"))
c = json.load(open("child.vhd.json"))
for i in (d, f, c):
    for k in keys:
        assert k in i, ("missing key", k, i)
    assert set(i["geometry"]) >= {"cylinders", "heads", "sectors"}
    assert uuid.match(i["unique_id"]), i["unique_id"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", i["timestamp"])
assert d["type"] == "dynamic" and d["virtual_size"] == 3 * 1048576
assert d["block_size"] == 2097152 and d["allocated_bytes"] == 2 * 2097152, d
assert d["parent"] is None and len(d["chain"]) == 1
assert d["chain"][0]["unique_id"] == d["unique_id"]
import os
assert d["file_size"] == os.path.getsize("dyn.vhd")
assert f["type"] == "fixed" and f["virtual_size"] == 10485760
assert f["file_size"] == 10485760 + 512
g = f["geometry"]
assert f["chs_size"] == g["cylinders"] * g["heads"] * g["sectors"] * 512
assert c["type"] == "differencing" and c["virtual_size"] == d["virtual_size"]
assert c["parent"] is not None and os.path.samefile(c["parent"], "dyn.vhd"), c["parent"]
assert [x["type"] for x in c["chain"]] == ["differencing", "dynamic"], c["chain"]
assert c["chain"][1]["unique_id"] == d["unique_id"]
assert c["parent_unique_id"] == d["unique_id"]
assert c["parent_name"].endswith("dyn.vhd"), c["parent_name"]
assert c["parent_missing"] is False
# Every key in every type (issue 14), null where it does not apply.
assert set(d) == set(f) == set(c), (set(d) ^ set(f), set(d) ^ set(c))
assert f["block_size"] is None and f["max_table_entries"] is None, f
assert f["allocated_blocks"] is None
assert d["parent_unique_id"] is None and d["parent_timestamp"] is None, d
assert d["parent_problem"] is None and c["parent_problem"] is None
PY

# create --json: block_size null for a fixed disk (it has no blocks).
"$VHDTOOL" create --json --type fixed cf.vhd 1M > cf.json
"$VHDTOOL" create --json cd.vhd 1M > cd.json
python3 -c '
import json
f = json.load(open("cf.json")); d = json.load(open("cd.json"))
assert f["block_size"] is None, f
assert d["block_size"] == 2097152, d
assert set(f) == set(d)' || fail "create --json block_size"

# Text output names both sizes.
"$VHDTOOL" info fix.vhd > info.txt
grep -q "virtual size: *10485760" info.txt || fail "text: no virtual size"
grep -q "CHS capacity" info.txt || fail "text: no CHS capacity"

# Parent missing: described anyway, then an error naming the parent, exit 1.
mv dyn.vhd moved.vhd
set +e; "$VHDTOOL" info --json sub/child.vhd > missing.json 2> err; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "info on a child without its parent exited $rc, want 1"
grep -q "^vhdtool: sub/child.vhd: .*dyn.vhd" err || fail "no error naming the parent: $(cat err)"
python3 -c '
import json
c = json.load(open("missing.json"))
assert c["type"] == "differencing" and c["parent_missing"] is True, c
assert c["parent"] is None' || fail "missing parent JSON"
"$VHDTOOL" info sub/child.vhd 2>/dev/null | grep -q "MISSING" || fail "text does not say missing"
# --parent supplies it.
"$VHDTOOL" info --json --parent moved.vhd sub/child.vhd > p.json 2>err ||
	fail "info --parent exited $?"
python3 -c '
import json
c = json.load(open("p.json"))
assert c["parent_missing"] is False and c["parent"].endswith("moved.vhd"), c' ||
	fail "--parent not used"

# Strings are escaped: a file name with a quote and a backslash.
cp fix.vhd 'we"ird\name.vhd'
"$VHDTOOL" info --json 'we"ird\name.vhd' | python3 -c '
import json, sys
assert json.load(sys.stdin)["file"] == "we\"ird\\name.vhd"' || fail "file name not escaped"
echo ok
