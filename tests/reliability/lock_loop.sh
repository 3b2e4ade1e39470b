# A looping chain (issue 14, "also found"): opened for writing by resize,
# vhdfuse or vhdnbd it says the chain loops (exit 3, as info and check
# do), not that the image is in use -- the loop used to meet our own lock
# first; and info --json gives the reason beside parent_missing.
. "$TOP/tests/lib.sh"
. "$TOP/tests/reliability/lock-lib.bash"
need python3 python3

# a.vhd -> base.vhd -> a.vhd: b.vhd (a child of a.vhd) given base.vhd's
# unique id and put in base.vhd's place.
"$VHDTOOL" create base.vhd 64M >/dev/null
"$VHDTOOL" create --parent base.vhd a.vhd >/dev/null
"$VHDTOOL" create --parent a.vhd b.vhd >/dev/null
python3 - <<'PY'
import struct
def footers(data):
    return [0, len(data) - 512]
base = open("base.vhd", "rb").read()
uuid = base[len(base) - 512 + 68:len(base) - 512 + 84]
b = bytearray(open("b.vhd", "rb").read())
for off in footers(b):
    b[off + 68:off + 84] = uuid
    b[off + 64:off + 68] = b"\0\0\0\0"
    s = (~sum(b[off:off + 512])) & 0xffffffff
    b[off + 64:off + 68] = struct.pack(">I", s)
open("base.vhd", "wb").write(b)
PY
touch mnt

loops() {   # COMMAND...: exit 3, saying the chain loops (check: on stdout)
	set +e; timeout 20 "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e
	[ "$rc" -eq 3 ] || { cat "$T/err" >&2; fail "'$*' exited $rc, want 3"; }
	cat "$T/out" "$T/err" | grep -q "the chain loops" || fail "'$*': $(cat "$T/err")"
	! grep -q "in use" "$T/err" "$T/out" || fail "'$*' says in use: $(cat "$T/err")"
	echo "loop reported: $*: $(head -1 "$T/err")"
}
before=$(cat a.vhd base.vhd | sha256sum)
loops "$VHDTOOL" info a.vhd
loops "$VHDTOOL" check a.vhd
loops "$VHDTOOL" resize a.vhd 128M
loops "$VHDTOOL" map a.vhd
loops "$VHDFUSE" a.vhd mnt
loops "$VHDFUSE" -r a.vhd mnt
loops "$VHDNBD" --unix "$T/s.sock" a.vhd
loops "$VHDNBD" -r --unix "$T/s.sock" a.vhd
[ "$(cat a.vhd base.vhd | sha256sum)" = "$before" ] || fail "an image of the loop changed"
! mountpoint -q mnt || fail "mounted a looping chain"

set +e; "$VHDTOOL" info --json a.vhd >info.json 2>/dev/null; rc=$?; set -e
[ "$rc" -eq 3 ] || fail "info --json on a loop exited $rc"
python3 - <<'PY' || fail "info --json on a loop: $(cat info.json)"
import json
j = json.load(open("info.json"))
assert j["parent_missing"] is True, j
reason = j.get("parent_problem") or ""
assert "loops" in reason, "no reason: %r" % j
PY
echo "lock_loop: ok"
