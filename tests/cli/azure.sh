# --azure: convert writes a fixed VHD whose size is a whole MiB (at least
# 20 MiB) that qemu-img reads at that size with the same data; check
# --azure accepts it and names each broken rule of other images; in-place
# raw <-> fixed conversion moves no data and refuses what would lose some.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

mib=1048576
mkdata rnd 1 8
# 30 MiB + 3 sectors of raw disk: rounds up to 31 MiB
truncate -s $(( 30 * mib + 1536 )) raw.img
dd if=rnd of=raw.img bs=1M seek=29 conv=notrunc status=none
"$VHDTOOL" convert --azure --json raw.img az.vhd > out.json
grep -q '"size": 32505856' out.json || fail "json: $(cat out.json)"
[ "$(stat -c %s az.vhd)" -eq $(( 31 * mib + 512 )) ] || fail "file size $(stat -c %s az.vhd)"
# plain -f vpc: QEMU must agree on the size (geometry 65535/16/255)
q=$(qemu-img info --output=json -f vpc az.vhd | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
[ "$q" -eq $(( 31 * mib )) ] || fail "qemu-img reads $q bytes"
cp raw.img want.img; truncate -s $(( 31 * mib )) want.img
qemu-img compare -q -f raw -F vpc want.img az.vhd || fail "qemu-img reads other data"
"$VHDTOOL" check --azure az.vhd > out || fail "check --azure: $(cat out)"
grep -q "meets Azure" out || fail "no verdict: $(cat out)"
"$VHDTOOL" check --azure --json az.vhd | grep -q '"azure_ready": true' || fail "json verdict"
# small disks grow to 20 MiB
head -c 1048576 rnd > small.img
"$VHDTOOL" convert --azure small.img small.vhd
[ "$(stat -c %s small.vhd)" -eq $(( 20 * mib + 512 )) ] || fail "small: $(stat -c %s small.vhd)"

# not ready: dynamic, not whole MiB, too small; each rule named, exit 3
"$VHDTOOL" convert --type dynamic raw.img dyn.vhd
expect_exit 3 "$VHDTOOL" check --azure dyn.vhd > out 2>err
grep -q "azure: a dynamic disk" out || fail "dynamic not named: $(cat out)"
grep -q "azure: disk size .* whole number of MiB" out || fail "size not named: $(cat out)"
grep -q "not ready for Azure" err || fail "no summary: $(cat err)"
"$VHDTOOL" create -t fixed tiny.vhd 4M >/dev/null
expect_exit 3 "$VHDTOOL" check --azure tiny.vhd > out 2>/dev/null
grep -q "minimum of 20 MiB" out || fail "minimum not named: $(cat out)"
"$VHDTOOL" check tiny.vhd >/dev/null || fail "plain check should pass"

# in place: raw -> fixed -> raw, the data never moves
cp raw.img ip.img
truncate -s $(( 30 * mib )) ip.img
cp ip.img ip.orig
"$VHDTOOL" convert --in-place ip.img > out
[ "$(stat -c %s ip.img)" -eq $(( 30 * mib + 512 )) ] || fail "no footer appended"
qemu-img compare -q --image-opts driver=raw,file.filename=ip.orig \
	driver=vpc,force_size_calc=current_size,file.filename=ip.img ||
	fail "in-place VHD differs"
"$VHDTOOL" check ip.img >/dev/null || fail "in-place VHD not clean"
"$VHDTOOL" convert --in-place ip.img > out
cmp ip.img ip.orig || fail "fixed -> raw in place is not the raw disk"
expect_exit 1 "$VHDTOOL" convert --in-place --to raw ip.img 2>/dev/null
# --in-place --azure on raw 30 MiB + 1536: rounds up with zeros
cp raw.img ip2.img
"$VHDTOOL" convert --in-place --azure ip2.img >/dev/null
"$VHDTOOL" check --azure ip2.img >/dev/null || fail "in-place --azure not ready"
qemu-img compare -q -f raw -F vpc want.img ip2.img || fail "in-place --azure differs"
# An odd size is padded with zeros to the sector, and said (issue 14).
head -c 1000 rnd > odd.img
cp odd.img odd.orig
"$VHDTOOL" convert --in-place odd.img >/dev/null 2>err
grep -q "odd.img: .*512.*padded with zeros to 1024" err || fail "no padding said: $(cat err)"
[ "$(stat -c %s odd.img)" -eq $((1024 + 512)) ] || fail "in-place odd: size $(stat -c %s odd.img)"
cmp -n 1000 odd.img odd.orig || fail "in-place padding changed the data"
"$VHDTOOL" check odd.img >/dev/null || fail "in-place odd: not a valid fixed VHD"
# refusals: dynamic to raw; nothing changes
sum=$(sha256sum < dyn.vhd)
expect_exit 1 "$VHDTOOL" convert --in-place dyn.vhd 2>err
grep -q "dynamic" err || fail "no reason: $(cat err)"
[ "$(sha256sum < dyn.vhd)" = "$sum" ] || fail "refused conversion changed dyn.vhd"
expect_exit 2 "$VHDTOOL" convert --in-place a b 2>/dev/null
echo ok
