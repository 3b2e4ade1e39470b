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
head -c 1000 /dev/urandom > odd.img
expect_exit 1 "$VHDTOOL" convert odd.img odd.vhd 2>err
grep -q "odd.img: .*512" err || fail "no clear message: $(cat err)"
[ ! -e odd.vhd ] || fail "output created for an odd-sized source"
echo ok
