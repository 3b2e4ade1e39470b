# Chains made by other software (../shared/fixtures, see expected.tsv):
# blktap's child reads to its hash wherever the pair is moved, Windows'
# orphan is refused naming its parent, qemu's name-only child reads when
# told to ignore its checksums, blktap's raw-parent child reads or refuses
# clearly; and writing into blktap's child keeps new blocks after all of
# its metadata (batmap, locators) and leaves the parent unchanged.
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"
need python3 python3
shared_fixtures || fail "no fixtures in SHARED_FIXTURES='${SHARED_FIXTURES:-}'"
F=$SHARED_FIXTURES
hash_of() { awk -F'\t' -v f="$1" '$1 == f { print $5 }' "$F/expected.tsv"; }
flat_sum() {   # IMAGE [convert options]: SHA-256 of the flattened disk
	img=$1; shift
	rm -f "$T/flat.raw"
	"$VHDTOOL" convert "$@" --to raw "$img" "$T/flat.raw" >/dev/null ||
		fail "convert '$img' failed"
	sum "$T/flat.raw"
}

mkdir -p a/b
cp "$F/tap-child-8M.vhd" "$F/tap-parent-8M.vhd" a/b/
[ "$(flat_sum a/b/tap-child-8M.vhd)" = "$(hash_of tap-child-8M.vhd)" ] ||
	fail "tap-child-8M.vhd does not read to its hash"
mv a/b moved
[ "$(flat_sum moved/tap-child-8M.vhd)" = "$(hash_of tap-child-8M.vhd)" ] ||
	fail "tap-child-8M.vhd moved does not read to its hash"

cp "$F/win10-diskpart-child-noparent.vhd" win.vhd
set +e; "$VHDTOOL" convert --to raw win.vhd out.raw >/dev/null 2>"$T/err"; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "orphan Windows child: exit $rc, expected 1"
grep -q fat-parent.vhd "$T/err" || fail "orphan Windows child: message does not name fat-parent.vhd: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "orphan Windows child: more than one line on stderr"

cp "$F/image-differential.vhd" "$F/image.vhd" .
[ "$(flat_sum image-differential.vhd --ignore-checksum)" = "$(hash_of image-differential.vhd)" ] ||
	fail "image-differential.vhd (parent by header name only) misread"

cp "$F/tap-child-of-raw.vhd" "$F/tap-rawparent.img" .
set +e; "$VHDTOOL" convert --to raw tap-child-of-raw.vhd raw.out >/dev/null 2>"$T/err"; rc=$?; set -e
if [ "$rc" -eq 0 ]; then
	[ "$(sum raw.out)" = "$(hash_of tap-child-of-raw.vhd)" ] || fail "tap-child-of-raw.vhd misread"
else
	[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q tap-child-of-raw "$T/err" ||
		fail "tap-child-of-raw.vhd refused unclearly: $(cat "$T/err")"
fi

# Writing into blktap's child.
cd moved
sp=$(sum tap-parent-8M.vhd)
"$VHDTOOL" convert --to raw tap-child-8M.vhd model >/dev/null
python3 - tap-child-8M.vhd >meta.before <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
ft = d[-512:]
ho = struct.unpack('>Q', ft[16:24])[0]
h = d[ho:ho + 1024]
bat, n, bs = struct.unpack('>QxxxxII', h[16:36])
end = max(ho + 1024, bat + (n * 4 + 511) // 512 * 512)
for i in range(8):
    code, space, length, _, off = struct.unpack('>IIIIQ', h[576 + 24 * i:600 + 24 * i])
    if code:
        ext = space if space >= length else space * 512
        end = max(end, off + ext)
        print('loc', i, d[off:off + length].hex())
b = bat + (n * 4 + 511) // 512 * 512
if d[b:b + 8] == b'tdbatmap':
    moff, msz = struct.unpack('>QI', d[b + 8:b + 20])
    end = max(end, b + 512, moff + msz * 512)
    print('batmap', d[b:b + 512].hex())
entries = struct.unpack('>%dI' % n, d[bat:bat + 4 * n])
print('end', end)
for e in entries:
    print('bat', e)
PY
fuse_on tap-child-8M.vhd
put model 0 4096 x1                         # block 0, held by the child?
put model $((2 * K * K + 5000)) 70000 x2    # block 1
put model $((6 * K * K)) $((2 * K * K)) x3  # block 3, whole
put model $((4 * K * K + 512)) 512 zero     # block 2: zeros over the parent
fuse_off
same_as_model tap-child-8M.vhd model
vhdi_same tap-child-8M.vhd 2 model
[ "$(sum tap-parent-8M.vhd)" = "$sp" ] || fail "writing the child changed its parent"
"$VHDTOOL" check tap-child-8M.vhd >/dev/null || fail "check of the written blktap child not clean"
python3 - tap-child-8M.vhd meta.before <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
before = open(sys.argv[2]).read().split('\n')
end = int([l for l in before if l.startswith('end ')][0].split()[1])
old = [int(l.split()[1]) for l in before if l.startswith('bat ')]
ho = struct.unpack('>Q', d[-512 + 16:-512 + 24])[0]
h = d[ho:ho + 1024]
bat, n = struct.unpack('>QxxxxI', h[16:32])
for i in range(8):
    code, space, length, _, off = struct.unpack('>IIIIQ', h[576 + 24 * i:600 + 24 * i])
    if code:
        want = [l for l in before if l.startswith('loc %d ' % i)][0].split()[2]
        assert d[off:off + length].hex() == want, 'locator %d data changed' % i
bl = [l for l in before if l.startswith('batmap ')]
if bl:
    b = bat + (n * 4 + 511) // 512 * 512
    assert d[b:b + 8] == b'tdbatmap', 'batmap header overwritten'
entries = struct.unpack('>%dI' % n, d[bat:bat + 4 * n])
new = 0
for i, e in enumerate(entries):
    if e != old[i]:
        assert old[i] == 0xFFFFFFFF, 'block %d moved' % i
        assert e * 512 >= end, 'new block %d at %d, inside metadata ending at %d' % (i, e * 512, end)
        new += 1
assert new >= 1, 'no new block was allocated'
PY
[ $? -eq 0 ] || fail "new blocks overlap blktap metadata"
echo ok
