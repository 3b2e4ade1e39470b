# check groups repeated problems and exits 1 (not 3) for a missing parent
# (issue 14).
. "$TOP/tests/lib.sh"
need python3 python3

# One flipped bit in Max Table Entries (header offset 28) makes dozens of
# BAT entries "wrong": the text shows a few, then how many more.
"$VHDTOOL" create d.vhd 100G > /dev/null
python3 -c '
f = open("d.vhd", "r+b"); f.seek(512 + 28 + 3); b = f.read(1)
f.seek(512 + 28 + 3); f.write(bytes([b[0] ^ 0x40]))'
expect_exit 3 "$VHDTOOL" check d.vhd > out 2> err
[ "$(grep -c "BAT entry" out)" -eq 3 ] || fail "not 3 BAT lines: $(cat out)"
grep -q "^d.vhd: \.\.\. and [0-9][0-9]* more like it$" out || fail "no grouping line: $(cat out)"
n=$(sed -n 's/.*and \([0-9]*\) more like it/\1/p' out)
total=$(sed -n 's/.*damaged: \([0-9]*\) problems found/\1/p' err)
[ "$(wc -l < out)" -lt 10 ] || fail "too many lines: $(wc -l < out)"
# The count adds up with the JSON list, which keeps every problem.
"$VHDTOOL" check --json d.vhd 2>/dev/null > j.json || true
python3 -c '
import json, sys
p = json.load(open("j.json"))["problems"]
bat = [x for x in p if "BAT entry" in x]
assert len(bat) == 3 + int(sys.argv[1]), (len(bat), sys.argv[1])
assert len(p) == int(sys.argv[2]), (len(p), sys.argv[2])' "$n" "$total" || fail "counts differ"

# A missing parent is an error (exit 1), as for info and the others.
"$VHDTOOL" create b.vhd 8M > /dev/null
"$VHDTOOL" create --parent b.vhd c.vhd > /dev/null
mv b.vhd moved.vhd
expect_exit 1 "$VHDTOOL" check c.vhd > out 2> err
grep -q "parent not found" out || fail "no parent line: $(cat out)"
grep -q "^vhdtool: c.vhd: its parent is missing" err || fail "summary: $(cat err)"
expect_exit 1 "$VHDTOOL" info c.vhd > /dev/null 2>&1
# Damage beside a missing parent is still damage (exit 3).
printf 'X' | dd of=c.vhd bs=1 seek=$(( $(stat -c %s c.vhd) - 500 )) conv=notrunc status=none
expect_exit 3 "$VHDTOOL" check c.vhd > out 2> err
echo ok
