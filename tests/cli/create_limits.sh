# create: the largest VHD (2040G) is made fast and small; 2041G, sizes that
# are not a multiple of 512 and malformed sizes are refused clearly.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

start=$(date +%s%N)
"$VHDTOOL" create big.vhd 2040G >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 1000 ] || fail "2040G dynamic took ${ms} ms"
bytes=$(stat -c %s big.vhd)
[ "$bytes" -lt $((10 * 1048576)) ] || fail "2040G dynamic is $bytes bytes"
used=$(du -k big.vhd | cut -f1)
[ "$used" -lt 10240 ] || fail "2040G dynamic uses $used KiB"
q=$(qemu-img info --output=json --image-opts \
	driver=vpc,force_size_calc=current_size,file.filename=big.vhd | grep '"virtual-size"')
case "$q" in *2190433320960*) ;; *) fail "qemu-img reads $q";; esac
"$VHDTOOL" check big.vhd >/dev/null || fail "check of 2040G image failed"

expect_exit 1 "$VHDTOOL" create big2.vhd 2041G 2>err
[ ! -e big2.vhd ] || fail "2041G left a file behind"
grep -q "big2.vhd: .*2040 GiB" err || fail "no clear message: $(cat err)"
[ "$(wc -l < err)" -eq 1 ] || fail "message not one line: $(cat err)"

expect_exit 1 "$VHDTOOL" create odd.vhd 1000 2>err
grep -q "odd.vhd: .*multiple of 512" err || fail "no clear message: $(cat err)"
[ ! -e odd.vhd ] || fail "bad size left a file behind"

expect_exit 2 "$VHDTOOL" create x.vhd 12Q 2>err
grep -q "bad size '12Q'" err || fail "malformed size not named: $(cat err)"
grep -q "^Try 'vhdtool create --help'" err || fail "no pointer to --help on a malformed size"
expect_exit 2 "$VHDTOOL" create x.vhd 2>/dev/null
expect_exit 2 "$VHDTOOL" create --type sparse x.vhd 1M 2>/dev/null
[ ! -e x.vhd ] || fail "usage error left a file behind"

# An existing file is never replaced.
echo keep > exists.vhd
expect_exit 1 "$VHDTOOL" create exists.vhd 1M 2>err
grep -q "exists.vhd" err || fail "no file name in: $(cat err)"
[ "$(cat exists.vhd)" = keep ] || fail "create overwrote an existing file"
echo ok
