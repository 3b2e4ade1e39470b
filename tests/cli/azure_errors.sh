# vhdtool upload/download errors against Azurite: a wrong SAS signature, a
# read-only SAS, a wrong key, a missing container, a missing blob, bad
# URLs, an unreachable host, no credentials: each one line on stderr
# naming the blob, exit 1, nothing created locally, and the SAS signature
# never shown (nor in -p progress output).
. "$TOP/tests/lib.sh"
. "$TOP/tests/azurite.sh"

mib=1048576
azurite_start
$AZBLOB container "$AZ/disks"
mkdata rnd 1 3
truncate -s $(( 20 * mib )) src.img
dd if=rnd of=src.img conv=notrunc status=none
"$VHDTOOL" upload src.img "$AZ/disks/good.vhd" >/dev/null || fail "setup upload"

# one_line EXPECTED_EXIT PATTERN CMD...: exactly one stderr line matching
# PATTERN, no signature anywhere in the output.
one_line() {
	code=$1 pat=$2; shift 2
	expect_exit "$code" "$@" > out 2> err
	[ "$(wc -l < err)" -eq 1 ] || fail "'$*': not one line: $(cat err)"
	grep -q -- "$pat" err || fail "'$*': no '$pat' in: $(cat err)"
	grep -q "vhdtool: " err || fail "no program name: $(cat err)"
	! grep -qi "sig=\|$badsig" out err || fail "signature shown: $(cat err)"
}

sas=$($AZBLOB sas "$AZ/disks/s.vhd")
sig=${sas##*sig=}
# A wrong signature of the same shape.
badsig=QQQQ${sig#????}
bad=${sas%sig=*}sig=$badsig
one_line 1 "access denied (HTTP 403" env -u AZURE_STORAGE_KEY "$VHDTOOL" upload --progress=always src.img "$bad"
grep -q "check the SAS token" err || fail "no hint: $(cat err)"
one_line 1 "access denied (HTTP 403" env -u AZURE_STORAGE_KEY "$VHDTOOL" download "$bad" out.img
[ ! -e out.img ] || fail "download after 403 left out.img"
# A read-only SAS: reading works, writing is refused.
ro=$($AZBLOB sas "$AZ/disks/good.vhd" r)
env -u AZURE_STORAGE_KEY "$VHDTOOL" download "$ro" ro.img >/dev/null || fail "read-only SAS download"
badsig=${ro##*sig=}
one_line 1 "HTTP 403" env -u AZURE_STORAGE_KEY "$VHDTOOL" upload -f src.img "$ro"
# A wrong account key.
one_line 1 "access denied (HTTP 403" env AZURE_STORAGE_KEY="$(printf 'x%.0s' $(seq 64) | base64 -w0)" \
	"$VHDTOOL" upload src.img "$AZ/disks/k.vhd"
grep -q "AZURE_STORAGE_KEY" err || fail "no hint: $(cat err)"

# Missing container, missing blob.
one_line 1 "container not found" "$VHDTOOL" upload src.img "$AZ/nocontainer/x.vhd"
one_line 1 "no such blob" "$VHDTOOL" download "$AZ/disks/missing.vhd" m.img
[ ! -e m.img ] || fail "download of a missing blob left m.img"

# Bad URLs, no credentials, an unreachable host (port 1 refuses).
one_line 1 "not a blob URL" "$VHDTOOL" upload src.img "ftp://127.0.0.1/disks/x.vhd"
one_line 1 "CONTAINER/BLOB" "$VHDTOOL" upload src.img "http://127.0.0.1:$AZ_PORT/devstoreaccount1"
one_line 1 "not a blob URL" "$VHDTOOL" download "disks/x.vhd" x.img
one_line 1 "no credentials" env -u AZURE_STORAGE_KEY "$VHDTOOL" upload src.img "$AZ/disks/n.vhd"
start=$(date +%s)
one_line 1 "reachable" "$VHDTOOL" upload src.img "http://127.0.0.1:1/devstoreaccount1/disks/x.vhd"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "an unreachable host took retries"
one_line 1 "reachable" "$VHDTOOL" download "http://127.0.0.1:1/devstoreaccount1/disks/x.vhd" x.img
[ ! -e x.img ] || fail "download from nowhere left x.img"

# Local problems: nothing is sent, no blob is created.
one_line 1 "nothere.img: No such file" "$VHDTOOL" upload nothere.img "$AZ/disks/l.vhd"
head -c 1000 rnd > odd.img
one_line 1 "multiple of 512" "$VHDTOOL" upload odd.img "$AZ/disks/l.vhd"
$AZBLOB ranges "$AZ/disks/l.vhd" >/dev/null 2>&1 && fail "a blob was created for a bad source"
touch exists.img
one_line 1 "already exists" "$VHDTOOL" download "$AZ/disks/good.vhd" exists.img
[ ! -s exists.img ] || fail "download replaced exists.img without -f"
# Not a VHD blob: a block blob, a page blob without a footer.
$AZBLOB blockblob "$AZ/disks/block"
one_line 3 "not a page blob" "$VHDTOOL" download "$AZ/disks/block" b.img
$AZBLOB pageblob "$AZ/disks/nofooter" $(( 20 * mib + 512 ))
one_line 3 "no valid VHD footer" "$VHDTOOL" download "$AZ/disks/nofooter" b.img
[ ! -e b.img ] || fail "refused download left b.img"
# Usage errors exit 2.
expect_exit 2 "$VHDTOOL" upload src.img 2>/dev/null
expect_exit 2 "$VHDTOOL" upload -f --resume src.img "$AZ/disks/u.vhd" 2>/dev/null
expect_exit 2 "$VHDTOOL" download --connections 0 "$AZ/disks/good.vhd" u.img 2>/dev/null
"$VHDTOOL" upload --help | grep -q "AZURE_STORAGE_KEY" || fail "upload --help"
echo ok
