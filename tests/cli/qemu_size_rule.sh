# The size QEMU's vpc driver reads (issue 16): the library's rule for
# QEMU before 10.0 (vhd_qemu_size, info's "qemu_size") must be what the
# installed qemu-img (7.2 on Debian 12) says, on every image other software
# made (SHARED_FIXTURES) and on images of each creator application QEMU
# knows (and some it does not).  info names the QEMU version of each
# "QEMU ... reads" line.  The 10.0 rule is checked in test_quirks.
. "$TOP/tests/lib.sh"
need python3 python3
need qemu-img qemu-utils
shared_fixtures || fail "SHARED_FIXTURES missing (expected.tsv)"
case "$(qemu-img --version | head -1)" in
"qemu-img version "[1-9].*) ;;     # before 10.0: the rule under test
*) fail "qemu-img is not before 10.0: $(qemu-img --version | head -1)" ;;
esac

# file: our pre-10.0 size against qemu-img's
same() {
	ours=$("$VHDTOOL" info --json "$1" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["qemu_size"])') ||
		fail "$1: info failed"
	theirs=$(qemu-img info -f vpc --output=json "$1" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["virtual-size"])') ||
		fail "$1: qemu-img info failed"
	[ "$ours" = "$theirs" ] ||
		fail "$1: we say QEMU 7.2 reads $ours bytes, it reads $theirs"
	n=$((n + 1))
}

n=0
while IFS="$(printf '\t')" read -r f creator type size sha expect notes; do
	case "$f" in "#"*) continue ;; esac
	[ "$expect" = ok ] || continue
	cp "$SHARED_FIXTURES/$f" .
	same "$f"
done < "$SHARED_FIXTURES/expected.tsv"
[ "$n" -ge 10 ] || fail "only $n shared fixtures compared"

# Every creator application: a 1 GiB - 1 MiB disk (not an exact CHS
# capacity, so the two sizes differ), footers rewritten with the creator.
"$VHDTOOL" create d.vhd 1023M > /dev/null
"$VHDTOOL" create --type fixed f.vhd 3M > /dev/null
for app in 'vpc ' qemu qem2 'win ' 'd2v ' 'tap\0' CTXS 'wa\0\0' vbox lvhd 'xyz '; do
	for img in d.vhd f.vhd; do
		out="c-$(printf '%s' "$app" | tr -c 'a-z0-9' _)-$img"
		cp "$img" "$out"
		python3 - "$out" "$app" <<'PY'
import sys
path, app = sys.argv[1], sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
assert len(app) == 4
f = open(path, "r+b")
f.seek(0, 2); size = f.tell()
offs = [size - 512]
f.seek(0); 
if f.read(8) == b"conectix": offs.append(0)
for off in offs:
    f.seek(off); b = bytearray(f.read(512))
    b[28:32] = app
    b[64:68] = b"\0\0\0\0"
    s = (~sum(b)) & 0xffffffff
    b[64:68] = s.to_bytes(4, "big")
    f.seek(off); f.write(b)
PY
		same "$out"
	done
done

# info says which QEMU each line is about: an lvhd image reads short only
# before 10.0, a 'vpc ' image short in both.
"$VHDTOOL" info d.vhd > out
grep -q "QEMU before 10.0 reads [0-9]* bytes (the CHS capacity)" out ||
	fail "no pre-10.0 line: $(cat out)"
grep -q "QEMU 10.0 and later reads 1072693248 bytes (the current size)" out ||
	fail "no 10.0 line: $(cat out)"
"$VHDTOOL" info c-vpc_-d.vhd > out
grep -q "QEMU (7.2 and 10.0 alike) takes the CHS" out || fail "vpc: $(cat out)"
"$VHDTOOL" info c-win_-d.vhd > out
if grep -q "QEMU" out; then fail "win: $(cat out)"; fi
python3 -c '
import json, subprocess, sys
i = json.loads(subprocess.check_output([sys.argv[1], "info", "--json", "d.vhd"]))
assert i["qemu_10_size"] == i["virtual_size"] != i["qemu_size"] == i["chs_size"], i
' "$VHDTOOL" || fail "qemu_10_size"
echo "ok ($n images)"
