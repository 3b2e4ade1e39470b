# merge on VHDX chains, judged by readers we did not write:
#  - gen.py's diff-512 chain (a Hyper-V-style .avhdx checkpoint between a
#    child and a dynamic base, with partial blocks, ZERO and full blocks at
#    every level): the chain's raw conversion is taken BEFORE any merge;
#    merging the child into the .avhdx, then the .avhdx into the base,
#    leaves a base that qemu-img compares identical to it, qemu-img check
#    passes and 7-Zip extracts the same bytes; --into the base at once does
#    the same and removes both images above it.
#  - a chain made by vhdtool create --parent, written through vhdfuse at
#    each level: merge --into the grandparent, same judges.
#  - after a merge with --keep the parent has a new DataWriteGuid (the
#    format's rule on the first write), which the kept child accepts as
#    its parent_linkage2 (recorded before the merge's first write, what
#    makes an interrupted merge resumable): the child still reads as the
#    chain did, by us and by 7-Zip; once the parent is written again the
#    child is refused, the linkage named.
#  - a mixed chain (a VHD child over a file that is a VHDX) is refused,
#    naming the file and the format, and nothing is modified.
. "$TOP/tests/lib.sh"
need python3 python3
need qemu-img qemu-utils
need 7zz 7zip
need fusermount3 fuse3
[ -f "$VHDFUSE" ] && [ -x "$VHDFUSE" ] || fail "vhdfuse not built ($VHDFUSE is not a program)"
gen="$TOP/tests/vhdx/gen.py"

judge() {   # IMAGE REF: a dynamic VHDX that must read as REF
	qemu-img check -q -f vhdx "$1" || fail "$1: qemu-img check"
	qemu-img compare -q -f vhdx -F raw "$1" "$2" || fail "$1: qemu-img compare with $2"
	rm -rf x7
	7zz x -y -ox7 "$1" > 7z.log || { cat 7z.log; fail "$1: 7zz failed"; }
	cmp "$2" x7/* || fail "$1: 7-Zip reads other bytes than $2"
	"$VHDTOOL" check "$1" > /dev/null || fail "$1: vhdtool check"
}

python3 "$gen" make diff-512 .
kid=diff-512.vhdx mid=diff-512-mid.avhdx base=diff-512-base.vhdx
[ -f "$mid" ] || fail "gen.py made no .avhdx"
mkdir orig && cp "$kid" "$mid" "$base" orig/
"$VHDTOOL" convert "$kid" flat.raw
"$VHDTOOL" convert "$mid" mid.raw
"$VHDTOOL" convert "$base" base.raw
cmp -s flat.raw base.raw && fail "the chain reads as its base: nothing to merge"
guid() { "$VHDTOOL" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_write_guid"])'; }

# Step by step, keeping the child: it still reads as the chain did.
g0=$(guid "$mid")
"$VHDTOOL" merge --keep "$kid" > out.txt || fail "merge: $(cat out.txt)"
grep -q "merged '$kid' into '$mid'" out.txt || fail "merge said: $(cat out.txt)"
[ -e "$kid" ] || fail "--keep removed the child"
g1=$(guid "$mid")
[ "$g0" != "$g1" ] || fail "the merge left the parent's DataWriteGuid $g0"
"$VHDTOOL" convert "$mid" m.raw
cmp flat.raw m.raw || fail "the .avhdx does not read as the chain did"
"$VHDTOOL" convert "$kid" kept.raw > /dev/null || fail "the kept child is refused"
cmp flat.raw kept.raw || fail "the kept child does not read as the chain did"
rm -rf x7
7zz x -y -ox7 "$kid" > 7z.log || { cat 7z.log; fail "$kid: 7zz failed after merge --keep"; }
cmp flat.raw x7/* || fail "7-Zip reads the kept child otherwise"
# The parent written again: its DataWriteGuid is nobody's linkage.
cp "$kid" kid.keep && cp "$mid" mid.keep
"$VHDTOOL" set-parent "$kid" "$mid" > /dev/null || fail "set-parent on the kept child"
: > disk
"$VHDFUSE" -f "$mid" disk 2>fuse.err &
fpid=$!
for _ in $(seq 200); do mountpoint -q disk && break; sleep 0.05; done
mountpoint -q disk || { cat fuse.err; fail "vhdfuse $mid failed"; }
dd if=/dev/zero of=disk bs=4k count=1 conv=notrunc,fsync status=none
fusermount3 -u disk
wait "$fpid" || { cat fuse.err; fail "vhdfuse $mid exited $?"; }
g2=$(guid "$mid")
set +e; "$VHDTOOL" convert "$kid" stale.raw > /dev/null 2> err.txt; rc=$?; set -e
[ "$rc" -ne 0 ] && [ ! -e stale.raw ] || fail "the stale child was read"
grep -qi "has DataWriteGuid {$g2}, expected parent_linkage {$g1}" err.txt ||
	fail "stale child: $(cat err.txt)"
mv kid.keep "$kid" && mv mid.keep "$mid"
# Then the .avhdx into the base (removed this time).
"$VHDTOOL" merge "$mid" > out.txt || fail "merge: $(cat out.txt)"
[ ! -e "$mid" ] || fail "merged .avhdx not removed"
judge "$base" flat.raw

# The same chain --into the base at once.
rm -f "$kid" "$base"
cp orig/* .
"$VHDTOOL" merge --json --into "$base" "$kid" > out.json || fail "merge --into: $(cat out.json)"
python3 - out.json "$kid" "$mid" "$base" <<'PY' || fail "merge --json: $(cat out.json)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d == {'child': sys.argv[2], 'into': sys.argv[4], 'removed': sys.argv[2:4]}, d
PY
[ ! -e "$kid" ] && [ ! -e "$mid" ] || fail "merge --into left images above the target"
judge "$base" flat.raw

# Our own chain: create --parent, each level written through vhdfuse.
write_into() { vhdfuse_write "$1" "$2" "$3" 1K; }   # IMAGE SRC SEEK_KIB
trap 'fusermount3 -u disk 2>/dev/null || true' EXIT
mkdata raw.img 40 51
mkdata p1 3 52
mkdata p2 1 53
"$VHDTOOL" convert raw.img g.vhdx > /dev/null
"$VHDTOOL" create --parent g.vhdx mid.avhdx > /dev/null
write_into mid.avhdx p1 1000          # unaligned, over three 2 MiB blocks
"$VHDTOOL" create --parent mid.avhdx top.avhdx > /dev/null
write_into top.avhdx p2 2047
write_into top.avhdx p2 35000
"$VHDTOOL" convert top.avhdx flat2.raw
cp raw.img want.raw
dd if=p1 of=want.raw bs=1K seek=1000 conv=notrunc status=none
dd if=p2 of=want.raw bs=1K seek=2047 conv=notrunc status=none
dd if=p2 of=want.raw bs=1K seek=35000 conv=notrunc status=none
cmp want.raw flat2.raw || fail "the chain does not read as written"
"$VHDTOOL" merge --into g.vhdx top.avhdx > out.txt || fail "merge --into: $(cat out.txt)"
[ ! -e top.avhdx ] && [ ! -e mid.avhdx ] || fail "merge --into left images above the target"
judge g.vhdx flat2.raw

# A mixed chain: a VHD child whose parent file is a VHDX.  Refused, the
# parent named, nothing changed.
"$VHDTOOL" create p.vhd 24578K > /dev/null
"$VHDTOOL" create --parent p.vhd c.vhd > /dev/null
cp orig/"$base" p.vhd
sum=$(md5sum c.vhd p.vhd)
expect_exit 1 "$VHDTOOL" merge c.vhd > /dev/null 2> err.txt
grep -q "p.vhd'\\?: a VHDX image, where only a VHD can be used" err.txt ||
	fail "mixed chain: $(cat err.txt)"
[ "$(md5sum c.vhd p.vhd)" = "$sum" ] || fail "mixed chain: merge modified a file"
echo ok
