# vhdtool info, map and check on a chain of three VHDX (tests/vhdx/gen.py
# diff-512: a child .vhdx over a Hyper-V-style checkpoint .avhdx over a
# dynamic base): info (text and JSON) names every level with its format,
# type and DataWriteGuid, and each child's parent_linkage is its parent's
# DataWriteGuid; map attributes every run to the level that holds it;
# check is clean; a missing grandparent is reported (exit 1, JSON
# parent_missing); mixed chains (a VHD child over a VHDX) are refused by
# every command, naming the parent and the format.
. "$TOP/tests/lib.sh"
need python3 python3
gen="$TOP/tests/vhdx/gen.py"

python3 "$gen" make diff-512 .
kid=diff-512.vhdx mid=diff-512-mid.avhdx base=diff-512-base.vhdx
[ -f "$mid" ] || fail "gen.py made no .avhdx"

"$VHDTOOL" info "$kid" > info.txt || fail "info failed: $(cat info.txt)"
for f in "$kid" "$mid" "$base"; do
	"$VHDTOOL" info --json "$f" > "$f.json" || fail "info --json $f failed"
done
python3 - "$kid" "$mid" "$base" <<'PY' || fail "info --json: wrong chain"
import json, sys
kid, mid, base = (json.load(open(f + '.json')) for f in sys.argv[1:])
for d, want in ((kid, 'differencing'), (mid, 'differencing'), (base, 'dynamic')):
    assert d['format'] == 'vhdx' and d['type'] == want, d
    assert d['warnings'] == [] and d['parent_missing'] is False, d
    assert d['parent_problem'] is None, d
assert kid['parent_linkage'] == mid['data_write_guid'], (kid, mid)
assert mid['parent_linkage'] == base['data_write_guid'], (mid, base)
assert base['parent_linkage'] is None and base['parent'] is None
assert kid['parent'] == sys.argv[2] and mid['parent'] == sys.argv[3]
assert kid['parent_path'] == '.\\' + sys.argv[2], kid['parent_path']
chain = [(c['file'], c['format'], c['type'], c['data_write_guid']) for c in kid['chain']]
assert chain == [(sys.argv[1], 'vhdx', 'differencing', kid['data_write_guid']),
                 (sys.argv[2], 'vhdx', 'differencing', mid['data_write_guid']),
                 (sys.argv[3], 'vhdx', 'dynamic', base['data_write_guid'])], chain
assert len(mid['chain']) == 2 and len(base['chain']) == 1
PY
guid() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_write_guid"])' "$1.json"; }
grep -q "^  0  differencing $(guid "$kid")  $kid\$" info.txt || fail "info: level 0: $(cat info.txt)"
grep -q "^  1  differencing $(guid "$mid")  $mid\$" info.txt || fail "info: level 1: $(cat info.txt)"
grep -q "^  2  dynamic      $(guid "$base")  $base\$" info.txt || fail "info: level 2: $(cat info.txt)"
grep -q "^parent linkage: *$(guid "$mid")" info.txt || fail "info: linkage: $(cat info.txt)"

# The map: who holds each run (gen.py's chain: see diff-512 there).
"$VHDTOOL" map --json "$kid" > map.json
python3 - map.json "$kid" "$mid" "$base" <<'PY' || fail "map: $(cat map.json)"
import json, sys
K = 1024
M = K * K
kid, mid, base = sys.argv[2:]
m = [(e['offset'], e['length'], e['depth'], e['file'], e['zero']) for e in json.load(open(sys.argv[1]))]
want = [
    (0, M, 0, kid, False),                       # the child's full block
    (M, M, -1, None, True),                      # ZERO in the child
    (2 * M, 4 * K, 2, base, False),              # the middle's partial block:
    (2 * M + 4 * K, 4 * K, 1, mid, False),       #   its sectors 8..15
    (3 * M - 512, 512, 1, mid, False),           #   and its last sector
    (3 * M, 3 * 512, 0, kid, False),             # the child's partial block
    (5 * M, M // 2, 1, mid, False),              # the middle's full block
    (5 * M + M // 2, 2 * K, 0, kid, False),      #   under 4 of the child's sectors
    (6 * M, M, -1, None, True),                  # ZERO in the middle
]
for w in want:
    assert w in m, ('missing', w)
PY

"$VHDTOOL" check --json "$kid" > check.json || fail "check: $(cat check.json)"
grep -q '"clean": true' check.json || fail "check: $(cat check.json)"

# The base gone: described as far as it goes, exit 1, the problem named.
mv "$base" gone.vhdx
expect_exit 1 "$VHDTOOL" info --json "$kid" > miss.json 2> err.txt
python3 - miss.json "$base" <<'PY' || fail "missing base: $(cat miss.json)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d['parent_missing'] is True and sys.argv[2] in d['parent_problem'], d
PY
expect_exit 1 "$VHDTOOL" info "$kid" > miss.txt 2> err.txt
grep -q '(missing)' miss.txt || fail "missing base: $(cat miss.txt)"
grep -q "parent not available.*$base" err.txt || fail "missing base: $(cat err.txt)"
expect_exit 1 "$VHDTOOL" map "$kid" > /dev/null 2> err.txt
grep -q "$base" err.txt || fail "map, missing base: $(cat err.txt)"
mv gone.vhdx "$base"

# A mixed chain: a VHD child whose parent file is a VHDX.
"$VHDTOOL" create p.vhd 24578K > /dev/null
"$VHDTOOL" create --parent p.vhd c.vhd > /dev/null
cp "$base" p.vhd
for cmd in info map check convert; do
	set -- "$cmd" c.vhd
	[ "$cmd" = convert ] && set -- convert c.vhd out.raw
	set +e; "$VHDTOOL" "$@" > err.txt 2>&1; rc=$?; set -e
	[ "$rc" -ne 0 ] || fail "mixed chain: $cmd succeeded"
	grep -q "p.vhd'\\?: a VHDX image, where only a VHD can be used" err.txt ||
		fail "mixed chain: $cmd: $(cat err.txt)"
done
[ ! -e out.raw ] || fail "mixed chain: convert left an output"
echo ok
