# check --json: every problem is also a record whose "code" says what is
# wrong (issue 16): the codes reach the JSON, one per problem, with the
# severity, file, offset, expected and found values of the record.
. "$TOP/tests/lib.sh"
need python3 python3
C="$TOP/fixtures/corrupt"

# file, code that must be among its records
while read -r f code; do
	cp "$C/$f" "$f"
	expect_exit 3 "$VHDTOOL" check --json "$f" > j.json 2>/dev/null
	python3 - "$f" "$code" <<'PY' || fail "$f: $(cat j.json)"
import json, sys
f, code = sys.argv[1], sys.argv[2]
r = json.load(open("j.json"))
d = r["diagnostics"]
assert r["clean"] is False
# the same records as the one-line "problems", in the same order
assert [x["text"] for x in d] == r["problems"], (d, r["problems"])
assert code in [x["code"] for x in d], (code, d)
for x in d:
    assert x["severity"] in ("error", "warning")
    assert x["file"] == f, x
    assert x["code"] not in ("none", "unknown", ""), x
PY
done <<'LIST'
footer-cookie.vhd not-vhd
footer-version.vhd footer-version
footer-checksum.vhd footer-checksum
header-checksum.vhd header-checksum
header-cookie.vhd header-cookie
disk-type-5.vhd footer-type
bat-entries-overlap.vhd bat-entry
table-entries-too-few.vhd header-table-entries
empty.vhd not-vhd
LIST

# The values of a record: the header cookie field at 512.
cp "$C/header-cookie.vhd" h.vhd
expect_exit 3 "$VHDTOOL" check --json h.vhd > j.json 2>/dev/null
python3 -c '
import json
d = json.load(open("j.json"))["diagnostics"][0]
assert d["code"] == "header-cookie" and d["offset"] == 512, d
assert d["expected"] == "cxsparse" and d["found"] not in (None, "cxsparse"), d
' || fail "header-cookie record: $(cat j.json)"

# A warning is a record too, and leaves the image clean (exit 0).
cp "$TOP/fixtures/valid/fixed-footer-511.vhd" old.vhd
"$VHDTOOL" check --json old.vhd > j.json
python3 -c '
import json
r = json.load(open("j.json"))
assert r["clean"] is True, r
assert [(x["severity"], x["code"]) for x in r["diagnostics"]] == \
    [("warning", "footer-511")], r
' || fail "511-byte footer: $(cat j.json)"

# Azure's rules are records of their own code.
"$VHDTOOL" create a.vhd 5M > /dev/null
expect_exit 3 "$VHDTOOL" check --json --azure a.vhd > j.json 2>/dev/null
python3 -c '
import json
r = json.load(open("j.json"))
codes = {x["code"] for x in r["diagnostics"]}
assert codes == {"azure-rule"}, r
' || fail "azure: $(cat j.json)"

# A clean image: no records.
"$VHDTOOL" check --json a.vhd > j.json
python3 -c '
import json
r = json.load(open("j.json"))
assert r["clean"] is True and r["diagnostics"] == [] and r["problems"] == []
' || fail "clean: $(cat j.json)"
echo ok
