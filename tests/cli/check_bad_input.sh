# Bad input: a missing file, a file that is not a VHD, a truncated image and
# a corrupted checksum each give a one-line error naming the file and the
# documented exit code, from check, info, map and convert; and the file is
# never changed.
. "$TOP/tests/lib.sh"
need python3 python3

one_line() {   # FILE-NAME: stderr in err has exactly one line naming it
	[ "$(wc -l < err)" -eq 1 ] || fail "not one line: $(cat err)"
	grep -q "^vhdtool: .*$1" err || fail "does not name $1: $(cat err)"
}

# Missing file.
for cmd in check info map; do
	expect_exit 1 "$VHDTOOL" $cmd nosuch.vhd 2>err; one_line nosuch.vhd
done
expect_exit 1 "$VHDTOOL" convert nosuch.vhd out.img 2>err; one_line nosuch.vhd

# Not a VHD.
mkdata notvhd.img 1 2
sum=$(sha256sum notvhd.img)
expect_exit 3 "$VHDTOOL" check notvhd.img >out 2>err; one_line notvhd.img
grep -q "not a VHD" out || fail "check does not say it is not a VHD: $(cat out)"
expect_exit 3 "$VHDTOOL" info notvhd.img 2>err; one_line notvhd.img
expect_exit 3 "$VHDTOOL" map notvhd.img 2>err; one_line notvhd.img
[ "$(sha256sum notvhd.img)" = "$sum" ] || fail "not-a-VHD file changed"
# A .vhd whose footer and copy are both gone is not taken for a raw disk.
cp notvhd.img nofooter.vhd
expect_exit 3 "$VHDTOOL" convert nofooter.vhd out.img 2>err; one_line nofooter.vhd
grep -q "not a VHD" err || fail "convert does not say it is not a VHD: $(cat err)"
[ ! -e out.img ] || fail "convert copied a broken .vhd as raw"
"$VHDTOOL" convert --from raw nofooter.vhd out.img || fail "--from raw refused"
cmp notvhd.img out.img || fail "--from raw copy differs"
rm out.img

# A dynamic image with data, truncated in the middle of its blocks (the
# footer copy at offset 0 still says VHD).
mkdata raw.img 4 4
"$VHDTOOL" convert raw.img good.vhd
cp good.vhd trunc.vhd
truncate -s $((3 * 1048576)) trunc.vhd
sum=$(sha256sum trunc.vhd)
expect_exit 3 "$VHDTOOL" check trunc.vhd >out 2>err; one_line trunc.vhd
[ -s out ] || fail "check printed no problem for a truncated image"
expect_exit 3 "$VHDTOOL" convert trunc.vhd out.img 2>err; one_line trunc.vhd
[ ! -e out.img ] || fail "convert left output of a truncated image"
set +e; "$VHDTOOL" info trunc.vhd >/dev/null 2>err; rc=$?; set -e
[ "$rc" -eq 3 ] || fail "info on a truncated image exited $rc"
grep -q "trunc.vhd" err || fail "info error does not name the file: $(cat err)"
[ "$(sha256sum trunc.vhd)" = "$sum" ] || fail "truncated image changed"

# A corrupted footer checksum: flip one byte of the checksum in both copies.
cp good.vhd badsum.vhd
python3 - badsum.vhd <<'PY'
import os, sys
f = open(sys.argv[1], "r+b")
size = os.fstat(f.fileno()).st_size
for base in (0, size - 512):
    f.seek(base + 64); b = f.read(1)
    f.seek(base + 64); f.write(bytes([b[0] ^ 0x5a]))
f.close()
PY
sum=$(sha256sum badsum.vhd)
expect_exit 3 "$VHDTOOL" check badsum.vhd >out 2>err; one_line badsum.vhd
grep -qi "checksum" out || fail "check does not name the checksum: $(cat out)"
expect_exit 3 "$VHDTOOL" convert badsum.vhd out.img 2>err; one_line badsum.vhd
grep -qi "checksum" err || fail "convert does not say checksum: $(cat err)"
[ ! -e out.img ] || fail "convert left output of a damaged image"
"$VHDTOOL" convert --ignore-checksum badsum.vhd out.img ||
	fail "--ignore-checksum did not read the image"
cmp raw.img out.img || fail "--ignore-checksum read wrong data"
[ "$(sha256sum badsum.vhd)" = "$sum" ] || fail "damaged image changed"

# A header checksum error alone.
cp good.vhd badhdr.vhd
python3 - badhdr.vhd <<'PY'
import sys
f = open(sys.argv[1], "r+b")
f.seek(512 + 36); b = f.read(1)
f.seek(512 + 36); f.write(bytes([b[0] ^ 0xff]))
PY
expect_exit 3 "$VHDTOOL" check badhdr.vhd >out 2>err; one_line badhdr.vhd
echo ok
