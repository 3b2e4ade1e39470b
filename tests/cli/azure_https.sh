# vhdtool upload/download over HTTPS against Azurite with a self-signed
# certificate: refused until the client is told to trust it (--ca-file or
# CURL_CA_BUNDLE), then with both Shared Key and SAS the blob holds the
# disk (qemu-img compare) and passes check --azure.
. "$TOP/tests/lib.sh"
. "$TOP/tests/azurite.sh"
need qemu-img qemu-utils

mib=1048576
azurite_start https
[ "${AZ%%:*}" = https ] || fail "not https: $AZ"
$AZBLOB container "$AZ/disks"
ca=$CURL_CA_BUNDLE
mkdata rnd 3 9
"$VHDTOOL" create d.vhd 24M >/dev/null
truncate -s $(( 24 * mib )) want.img
dd if=rnd of=want.img bs=1M seek=4 conv=notrunc status=none
"$VHDTOOL" convert -f want.img d.vhd >/dev/null

# Not trusted: one line naming the certificate problem, exit 1.
expect_exit 1 env -u CURL_CA_BUNDLE "$VHDTOOL" upload d.vhd "$AZ/disks/k.vhd" 2>err
[ "$(wc -l < err)" -eq 1 ] || fail "not one line: $(cat err)"
grep -qi "certificate\|issuer\|verif" err || fail "no certificate reason: $(cat err)"

# Shared Key, the CA from --ca-file.
env -u CURL_CA_BUNDLE "$VHDTOOL" upload --ca-file "$ca" d.vhd "$AZ/disks/k.vhd" >/dev/null ||
	fail "upload with --ca-file"
$AZBLOB get "$AZ/disks/k.vhd" blob.vhd
qemu-img compare -q -f raw -F vpc want.img blob.vhd || fail "https Shared Key blob differs"
"$VHDTOOL" check --azure blob.vhd >/dev/null || fail "check --azure"
$AZBLOB ranges "$AZ/disks/k.vhd" > got
printf '4194304 7340032\n25165824 25166336\n' | diff - got >/dev/null ||
	fail "ranges: $(cat got)"

# SAS, the CA from CURL_CA_BUNDLE.
sas=$($AZBLOB sas "$AZ/disks/s.vhd")
env -u AZURE_STORAGE_KEY "$VHDTOOL" upload -c 2 d.vhd "$sas" >/dev/null || fail "upload with SAS"
env -u AZURE_STORAGE_KEY "$VHDTOOL" download "$sas" back.vhd >/dev/null || fail "download with SAS"
qemu-img compare -q -f raw -F vpc want.img back.vhd || fail "https SAS round trip differs"
rm -f blob.vhd
$AZBLOB get "$AZ/disks/s.vhd" blob.vhd
"$VHDTOOL" check --azure blob.vhd >/dev/null || fail "check --azure (SAS)"
echo ok
