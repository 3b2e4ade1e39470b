# Data qemu-io writes into an image we created reads back through us, and
# our check stays clean afterwards.
. "$TOP/tests/lib.sh"
need qemu-io qemu-utils
need python3 python3

for type in dynamic fixed; do
	"$VHDTOOL" create --type "$type" "$type.vhd" 8M >/dev/null
	qemu-io -f vpc -c 'write -P 0xab 1000 5000' -c 'write -P 0xcd 5M 4096' \
		"$type.vhd" >qemu-io.log || { cat qemu-io.log; fail "qemu-io write failed"; }
	"$VHDTOOL" check "$type.vhd" >/dev/null || fail "$type: check not clean after qemu-io"
	"$VHDTOOL" convert "$type.vhd" "$type.img"
	python3 - "$type.img" <<'PY' || fail "$type: data read back wrong"
import sys
d = open(sys.argv[1], "rb").read()
assert len(d) == 8 * 1048576, len(d)
M = 1048576
assert d[1000:6000] == b"\xab" * 5000
assert d[5 * M:5 * M + 4096] == b"\xcd" * 4096
assert d[:1000] == bytes(1000)
assert d[6000:5 * M] == bytes(5 * M - 6000)
assert d[5 * M + 4096:] == bytes(3 * M - 4096)
PY
	# And qemu-io reads back what we read.
	qemu-io -f vpc -c 'read -P 0xab 1000 5000' "$type.vhd" >/dev/null ||
		fail "$type: qemu-io reads back something else"
done
echo ok
