# With DST "-" standard output holds the disk alone (issue 14, item 6):
# --json and the summary go to standard error; a file DST gets one
# summary line on standard output.  The source is made by qemu-img; the
# stream is compared byte for byte with a plain raw conversion.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils

mkdata data.raw 3 21
qemu-img convert -q -f raw -O vpc data.raw d.vhd
"$VHDTOOL" convert d.vhd plain.raw > summary
[ "$(wc -l < summary)" -eq 1 ] || fail "convert to a file: not one summary line: $(cat summary)"
grep -q "^d.vhd -> plain.raw: raw image, disk of " summary || fail "summary: $(cat summary)"

"$VHDTOOL" convert --json d.vhd - > out.raw 2> err
cmp out.raw plain.raw || fail "the stream is not the disk alone"
grep -q '^{"source": "d.vhd", "destination": "-"' err || fail "no JSON on stderr: $(cat err)"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' err || fail "stderr JSON does not parse"

# A fixed VHD stream: raw data then the footer.
"$VHDTOOL" convert --json --type fixed d.vhd - > out.vhd 2> err
grep -q '"type": "fixed"' err || fail "fixed stream: no JSON on stderr"
cmp -n "$(stat -c %s plain.raw)" out.vhd plain.raw || fail "fixed stream differs"
"$VHDTOOL" check out.vhd > /dev/null || fail "fixed stream: not a valid VHD"
[ "$(stat -c %s out.vhd)" -eq $(( $(stat -c %s plain.raw) + 512 )) ] || fail "fixed stream: extra bytes"
# Without --json, a stream run prints nothing on stdout but the disk.
"$VHDTOOL" convert d.vhd - > quiet.raw 2> err
cmp quiet.raw plain.raw || fail "plain stream"
echo ok
