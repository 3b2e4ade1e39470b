# vhdtool check --repair: without --repair nothing is written (exit 3 on
# damage); with it, a torn or missing trailing footer comes back from the
# copy (the file then equals the undamaged image, and qemu-img reads the
# same data), leaked space after the last block is cut off (the warning
# goes away, data unchanged), a bad footer copy is rewritten; what cannot
# be fixed without guessing (a header checksum mismatch) is reported as
# "not repaired", left alone, and still exits 3.  --json keeps stdout JSON.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need python3 python3
need qemu-io qemu-utils
V="$TOP/fixtures/valid"
C="$TOP/fixtures/corrupt"

for f in no-trailing-footer zeroed-trailing-footer; do
	cp "$V/$f.vhd" a.vhd
	before=$(sha256sum <a.vhd)
	expect_exit 3 "$VHDTOOL" check a.vhd
	[ "$(sha256sum <a.vhd)" = "$before" ] || fail "check without --repair wrote to $f"
	"$VHDTOOL" check --repair a.vhd >out.txt 2>&1 || { cat out.txt >&2; fail "check --repair $f"; }
	grep -q "^a.vhd: repaired: trailing footer" out.txt || fail "$f: no fix line: $(cat out.txt)"
	grep -q "no problems found" out.txt || fail "$f: re-check: $(cat out.txt)"
	cmp a.vhd "$V/dyn-base.vhd" || fail "$f: repaired file differs from the undamaged image"
	qemu-img compare -f vpc -F vpc a.vhd "$V/dyn-base.vhd" >/dev/null || fail "$f: qemu-img reads different data"
	echo "$f: $(head -1 out.txt)"
done

# leaked space: a dynamic image whose footer sits 1 MiB past the last block
"$VHDTOOL" create -b 64K b.vhd 8M >/dev/null
qemu-io -f vpc -c "write -P 0x5a 100000 300000" b.vhd >/dev/null
sz=$(stat -c %s b.vhd)
/usr/bin/python3 - b.vhd <<'EOF'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
foot = d[-512:]
d[-512:] = b"\xa5" * 512
d += b"\xa5" * (1 << 20) + foot
open(p, "wb").write(d)
EOF
"$VHDTOOL" convert -O raw b.vhd b1.raw
"$VHDTOOL" check b.vhd >out.txt || fail "leaked space is not damage: $(cat out.txt)"
grep -q "warning: .*leaked" out.txt || fail "no leak warning: $(cat out.txt)"
"$VHDTOOL" check --repair b.vhd >out.txt || fail "check --repair on a leak: $(cat out.txt)"
grep -q "repaired: .*leaked" out.txt || fail "no leak fix line: $(cat out.txt)"
grep -q warning out.txt && fail "warning left after repair: $(cat out.txt)"
[ "$(stat -c %s b.vhd)" -eq "$sz" ] || fail "repaired size $(stat -c %s b.vhd), want $sz"
"$VHDTOOL" convert -O raw b.vhd b2.raw
cmp b1.raw b2.raw || fail "repair changed the data"
qemu-img compare -f raw -F vpc b1.raw b.vhd >/dev/null || fail "qemu-img disagrees after the repair"
echo "leak: $(head -1 out.txt)"

# a damaged footer copy at offset 0
cp "$V/dyn-base.vhd" c.vhd
printf 'X' | dd of=c.vhd bs=1 seek=20 conv=notrunc status=none
expect_exit 3 "$VHDTOOL" check c.vhd
"$VHDTOOL" check --repair --json c.vhd >out.json 2>err.txt || fail "check --repair --json: $(cat out.json err.txt)"
/usr/bin/python3 -c 'import json,sys; j=json.load(open("out.json")); sys.exit(0 if j["clean"] else 1)' ||
	fail "--json output not clean JSON: $(cat out.json)"
grep -q "repaired: footer copy at offset 0" err.txt || fail "no fix line on stderr with --json: $(cat err.txt)"
cmp c.vhd "$V/dyn-base.vhd" || fail "copy repair: file differs"

# what cannot be fixed without guessing
for f in header-checksum footer-checksum truncated-in-block; do
	cp "$C/$f.vhd" d.vhd
	before=$(sha256sum <d.vhd)
	set +e; "$VHDTOOL" check --repair d.vhd >out.txt 2>&1; rc=$?; set -e
	[ "$rc" -eq 3 ] || fail "$f: check --repair exited $rc, want 3"
	grep -q "not repaired" out.txt || fail "$f: no 'not repaired' line: $(cat out.txt)"
	[ "$(sha256sum <d.vhd)" = "$before" ] || fail "$f: changed by a refused repair"
	echo "$f: $(grep "not repaired" out.txt | head -1)"
done
echo "repair: ok"
