# convert never overwrites an existing DST without -f, refuses to write
# onto its source, and removes a partial DST when the copy fails.
. "$TOP/tests/lib.sh"

mkdata raw.img 4 9
"$VHDTOOL" convert raw.img a.vhd
echo precious > dst.img
sum=$(sha256sum dst.img)
expect_exit 1 "$VHDTOOL" convert a.vhd dst.img 2>err
grep -q "dst.img: .*exists" err || fail "no clear message: $(cat err)"
[ "$(wc -l < err)" -eq 1 ] || fail "not one line: $(cat err)"
[ "$(sha256sum dst.img)" = "$sum" ] || fail "existing DST was modified"

"$VHDTOOL" convert -f a.vhd dst.img
cmp raw.img dst.img || fail "-f did not replace DST with the disk"

sum=$(sha256sum a.vhd)
expect_exit 1 "$VHDTOOL" convert -f a.vhd a.vhd 2>err
grep -q "a.vhd: .*source" err || fail "no clear message: $(cat err)"
[ "$(sha256sum a.vhd)" = "$sum" ] || fail "source was modified"

# A write failure part way (file size limit, 1 MiB) removes the partial DST.
for dst in part.img part.vhd; do
	set +e
	( trap '' XFSZ; ulimit -f 1024; exec "$VHDTOOL" convert raw.img "$dst" ) 2>err
	rc=$?
	set -e
	[ "$rc" -eq 1 ] || fail "$dst: failed copy exited $rc: $(cat err)"
	grep -q "$dst" err || fail "$dst: message does not name it: $(cat err)"
	[ ! -e "$dst" ] || fail "$dst: partial output left behind"
done

# Missing source, and a raw source that is not a multiple of 512.
expect_exit 1 "$VHDTOOL" convert nosuch.vhd x.img 2>err
grep -q "nosuch.vhd" err || fail "no file name: $(cat err)"
[ ! -e x.img ] || fail "output created for a missing source"
# Odd sizes are padded with zeros to the sector, as qemu-img does, and
# the padding is said (issue 14).
head -c 1000 /dev/urandom > odd.img
"$VHDTOOL" convert odd.img odd.vhd >/dev/null 2>err
grep -q "odd.img: .*512.*padded with zeros to 1024" err || fail "no clear message: $(cat err)"
"$VHDTOOL" convert odd.vhd odd.raw >/dev/null
[ "$(stat -c %s odd.raw)" -eq 1024 ] || fail "not padded to a sector"
cmp -n 1000 odd.img odd.raw || fail "padded data differs"
[ "$(tail -c 24 odd.raw | tr -d '\0' | wc -c)" -eq 0 ] || fail "padding is not zeros"
# --azure pads to a whole MiB (at least 20 MiB) and says so.
"$VHDTOOL" convert --azure odd.img az.vhd >/dev/null 2>err
grep -q "odd.img: .*padded with zeros to 20971520" err || fail "--azure: $(cat err)"
"$VHDTOOL" check --azure az.vhd > /dev/null || fail "--azure output not Azure-ready"
# Standard input is named as such, never as a spool file; an empty
# stream and a device that never ends are refused clearly.
expect_exit 1 "$VHDTOOL" convert - e.vhd < /dev/null 2>err
grep -q "^vhdtool: standard input: is empty" err || fail "empty stdin: $(cat err)"
grep -q spool err && fail "spool file named: $(cat err)"
expect_exit 1 "$VHDTOOL" convert /dev/zero z.vhd 2>err
grep -q "^vhdtool: /dev/zero: .*never ends" err || fail "/dev/zero: $(cat err)"
[ ! -e z.vhd ] && [ ! -e e.vhd ] || fail "output left behind"
printf 'not a vhd footer' | "$VHDTOOL" convert --from vhd - x.vhd 2>err && fail "--from vhd accepted text"
grep -q spool err && fail "spool file named: $(cat err)"
grep -q "standard input" err || fail "stdin not named: $(cat err)"
echo ok
