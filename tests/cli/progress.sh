# -p: a progress line (percent, bytes, rate) on a terminal, nothing when
# standard error is not one, every few seconds with --progress=always.
. "$TOP/tests/lib.sh"
need script bsdutils

mkdata raw.img 8 2
"$VHDTOOL" convert -p raw.img a.vhd 2>err
[ ! -s err ] || fail "progress written to a non-terminal: $(cat err)"
"$VHDTOOL" convert --progress=always raw.img b.vhd 2>err
grep -q "100.0%.*MiB / 8 MiB.*/s" err || fail "no final line: $(cat err)"
# on a terminal: carriage-return redraws
script -qec "\"$VHDTOOL\" convert -p raw.img c.vhd" /dev/null > tty.out
grep -q "100.0%" tty.out || fail "no progress on a terminal: $(cat -v tty.out)"
tr -d '\n' < tty.out | grep -q "$(printf '\r')" || fail "no redraw"
for cmd in "resize -p c.vhd 16M" "compact -p c.vhd" "convert -p c.vhd c.img"; do
	script -qec "\"$VHDTOOL\" $cmd" /dev/null > tty.out || fail "$cmd failed"
	grep -q "100.0%" tty.out || fail "$cmd: no progress: $(cat -v tty.out)"
done
"$VHDTOOL" create -P c.vhd child.vhd >/dev/null 2>&1 ||
	"$VHDTOOL" create --parent c.vhd child.vhd >/dev/null
"$VHDTOOL" merge --progress=always child.vhd 2>err >/dev/null
grep -q "100.0%" err || fail "merge: no progress: $(cat err)"
expect_exit 2 "$VHDTOOL" convert --progress=sometimes raw.img d.vhd 2>/dev/null
# resize and compact count blocks and say so; 100% is printed once
# (issue 14).  A resize that moves blocks to grow the BAT:
"$VHDTOOL" convert raw.img r.vhd >/dev/null
"$VHDTOOL" resize --progress=always r.vhd 4G 2>err >/dev/null
grep -q "100.0%  [0-9]* / [0-9]* blocks" err || fail "resize: no unit: $(cat err)"
[ "$(grep -c "100.0%" err)" -eq 1 ] || fail "resize: 100% not once: $(cat err)"
"$VHDTOOL" compact --progress=always r.vhd 2>err >/dev/null
grep -q "100.0%  [0-9]* / [0-9]* blocks" err || fail "compact: no unit: $(cat err)"
[ "$(grep -c "100.0%" err)" -eq 1 ] || fail "compact: 100% not once: $(cat err)"
echo ok
