# Damaged VHDX images (tests/vhdx/craft.py damage: 39 cases of headers,
# region tables, metadata items, BAT entries, log entries) are refused by info, map, check and convert: exit 3,
# one line on stderr naming the file and the field, no output file, the
# image's bytes unchanged.  One damaged header or region table alone is
# tolerated (the other copy is used) and reads as before.  A .vhdx name is
# no licence to copy noise as raw, nor to write another format.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils
need python3 python3
need sha256sum coreutils
craft="$TOP/tests/vhdx/craft.py"

qemu-img create -q -f vhdx -o block_size=1M base.vhdx 64M
qemu-io -c 'write -P 0x5a 0 3M' -c 'write -P 0x66 10M 1M' base.vhdx >/dev/null
qemu-img convert -f vhdx -O raw base.vhdx base.raw

n=0
for c in $(python3 "$craft" cases); do
	cp base.vhdx "$c.vhdx"
	python3 "$craft" damage "$c.vhdx" "$c"
	sha256sum "$c.vhdx" > sum
	for cmd in info map check; do
		expect_exit 3 "$VHDTOOL" $cmd "$c.vhdx" > out.txt 2> err.txt
		[ "$(wc -l < err.txt)" -eq 1 ] ||
			fail "$c: $cmd: expected one line on stderr: $(cat err.txt)"
		grep -q "^vhdtool: $c.vhdx: " err.txt || fail "$c: $cmd: $(cat err.txt)"
	done
	"$VHDTOOL" info "$c.vhdx" 2> err.txt || true
	case $c in
	header-log-outside) grep -q 'header [12]: the log at' err.txt ;;
	header-*) grep -q 'header 1.*header 2' err.txt ;;
	region-*) grep -q 'region table.*the copy' err.txt ;;
	metadata-*) grep -q 'metadata' err.txt ;;
	bat-*) grep -q 'BAT' err.txt ;;
	log-*) grep -q 'log entry' err.txt ;;
	esac || fail "$c: the message does not name the structure: $(cat err.txt)"
	grep -Eq 'expected|overlap|past the end|must lie inside|a second|missing|but no' err.txt ||
		fail "$c: the message gives no expected value: $(cat err.txt)"
	expect_exit 3 "$VHDTOOL" convert "$c.vhdx" out.raw 2> err.txt
	[ ! -e out.raw ] || fail "$c: convert left an output file"
	sha256sum -c --quiet sum || fail "$c: the damaged image was modified"
	n=$((n + 1))
done
[ "$n" -ge 39 ] || fail "only $n damage cases ran"

# One header, one region table damaged: the other copy serves.
cp base.vhdx one.vhdx
python3 - one.vhdx <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[64 * 1024] ^= 1      # header 1 signature
b[192 * 1024] ^= 1     # region table 1 signature
open(sys.argv[1], 'wb').write(b)
PY
"$VHDTOOL" convert one.vhdx one.raw
cmp one.raw base.raw || fail "one damaged copy: reads differently"

# A file named .vhdx that is no VHDX is not copied as a raw disk, and a
# .vhdx destination is written as a VHDX (not in another format under that
# name).
head -c 1048576 /dev/urandom > noise.vhdx
expect_exit 3 "$VHDTOOL" convert noise.vhdx out.raw 2> err.txt
grep -q "not a VHDX image" err.txt || fail "noise.vhdx: $(cat err.txt)"
[ ! -e out.raw ] || fail "noise.vhdx: convert left an output file"
"$VHDTOOL" convert base.raw out.vhdx > /dev/null
qemu-img compare -q -f vhdx -F raw out.vhdx base.raw || fail "out.vhdx: not the VHDX of base.raw"

# Too short for the headers and region tables.
head -c 200000 base.vhdx > short.vhdx
expect_exit 3 "$VHDTOOL" info short.vhdx 2> err.txt
grep -q 'expected at least' err.txt || fail "short: $(cat err.txt)"
echo ok
