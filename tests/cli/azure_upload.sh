# vhdtool upload against Azurite (HTTP), Shared Key and SAS: a dynamic
# VHD, a differencing chain and a raw image each become an Azure-ready
# fixed VHD blob (whole-MiB size, convert --azure's footer) that QEMU reads
# as the source and check --azure accepts; Get Page Ranges shows exactly
# the data extents plus the footer, and the bytes sent (counted by a proxy)
# are the data, not the disk.  download brings each back, sparse.
# Existing blobs: refused, replaced with -f, wrong type/size named.
. "$TOP/tests/lib.sh"
. "$TOP/tests/azurite.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils

mib=1048576
azurite_start
$AZBLOB container "$AZ/disks"
proxy_start ""

# expect_ranges BLOB EXTENTS_FILE DISKSIZE: page ranges = extents + footer.
expect_ranges() {
	$AZBLOB ranges "$1" > got.ranges
	{ cat "$2"; echo "$3 $(( $3 + 512 ))"; } > want.ranges
	diff want.ranges got.ranges >/dev/null ||
		fail "$1: page ranges differ: want $(tr '\n' ' ' < want.ranges) got $(tr '\n' ' ' < got.ranges)"
}
# judge SRC BLOBURL FMT: the whole blob, fetched independently, is a fixed
# VHD QEMU reads as SRC, and check --azure passes on it.
judge() {
	rm -f blob.vhd
	$AZBLOB get "$2" blob.vhd
	"$VHDTOOL" check --azure blob.vhd > check.out ||
		fail "check --azure on the blob of $1: $(cat check.out)"
	qemu-img compare -q -f "$3" -F vpc "$1" blob.vhd ||
		fail "blob of $1 differs from it"
}
# sent_ok BEFORE DATA: bytes the proxy forwarded since BEFORE are at most
# DATA + 1% + the footer.
sent_ok() {
	sent=$(( $(proxy_bytes) - $1 ))
	max=$(( $2 + $2 / 100 + 512 ))
	[ "$sent" -le "$max" ] || fail "sent $sent bytes for $2 bytes of data (max $max)"
	[ "$sent" -ge "$2" ] || fail "sent $sent bytes, less than the data ($2)"
}

# 1. A dynamic VHD (64 MiB disk: already whole MiB) with scattered data,
#    a zero-filled allocated range (not sent), a lone sector.
"$VHDTOOL" create d.vhd 64M >/dev/null
qemu-io -f vpc -c 'write -P 0xab 0 3M' -c 'write -P 0xcd 10M 64k' \
	-c 'write -P 0 20M 2M' -c 'write -P 0x11 41943552 512' \
	-c 'write -P 0x22 62M 1M' d.vhd >/dev/null
printf '0 3145728\n10485760 10551296\n41943552 41944064\n65011712 66060288\n' > d.ext
data=$(awk '{ n += $2 - $1 } END { print n }' d.ext)
b0=$(proxy_bytes)
"$VHDTOOL" upload -c 4 d.vhd "$PX/disks/d.vhd" > out || fail "upload d.vhd"
grep -q "uploaded" out || fail "no summary: $(cat out)"
sent_ok "$b0" "$data"
expect_ranges "$AZ/disks/d.vhd" d.ext $(( 64 * mib ))
judge d.vhd "$AZ/disks/d.vhd" vpc
"$VHDTOOL" download "$AZ/disks/d.vhd" back.img >/dev/null || fail "download raw"
qemu-img compare -q -f vpc -F raw d.vhd back.img || fail "downloaded raw differs"
[ "$(stat -c %s back.img)" -eq $(( 64 * mib )) ] || fail "raw size $(stat -c %s back.img)"
alloc=$(( $(stat -c %b back.img) * $(stat -c %B back.img) ))
[ "$alloc" -le $(( 8 * mib )) ] || fail "downloaded raw not sparse: $alloc bytes allocated"
# download reads only the page ranges: the answers it gets through the
# proxy are the data plus the footer (read twice: checked, then as a page)
# plus the small properties and page list answers.
a0=$(proxy_answered)
"$VHDTOOL" download -c 8 "$PX/disks/d.vhd" back.vhd >/dev/null || fail "download vhd"
got=$(( $(proxy_answered) - a0 ))
[ "$got" -le $(( data + 1024 + 4096 )) ] || fail "download read $got bytes for $data of data"
"$VHDTOOL" info back.vhd | grep -q dynamic || fail "download .vhd is not dynamic"
qemu-img compare -q -f vpc -F vpc d.vhd back.vhd || fail "downloaded VHD differs"
"$VHDTOOL" check back.vhd >/dev/null || fail "downloaded VHD not clean"

# 2. SAS instead of the key (the key removed from the environment).
sas=$($AZBLOB sas "$PX/disks/sas.vhd")
b0=$(proxy_bytes)
env -u AZURE_STORAGE_KEY "$VHDTOOL" upload --progress=always d.vhd "$sas" > out 2>err ||
	fail "SAS upload: $(cat err)"
grep -q "100.0%" err || fail "no progress: $(cat err)"
grep -q "sig=\|${sas##*sig=}" out err && fail "SAS signature printed"
sent_ok "$b0" "$data"
expect_ranges "$AZ/disks/sas.vhd" d.ext $(( 64 * mib ))
env -u AZURE_STORAGE_KEY "$VHDTOOL" download "$sas" sas.img >/dev/null || fail "SAS download"
cmp sas.img back.img || fail "SAS download differs"

# 3. A differencing chain, flattened: the child's data over the parent's.
#    QEMU does not write differencing VHDs: the child is written through
#    vhdnbd, and the expected disk is built byte by byte.
"$VHDTOOL" create -P d.vhd child.vhd >/dev/null
"$VHDNBD" -u "$T/nbd.sock" --pid-file "$T/nbd.pid" child.vhd 2>nbd.log &
AZ_PIDS="$AZ_PIDS $!"
for _ in $(seq 1 100); do [ -s "$T/nbd.pid" ] && break; sleep 0.1; done
qemu-io -f raw -c 'write -P 0x77 1M 4M' -c 'write -P 0x88 30M 1M' \
	"nbd+unix:///?socket=$T/nbd.sock" >/dev/null || fail "write through vhdnbd"
kill "$(cat "$T/nbd.pid")"; sleep 0.5
python3 - <<'PY'
m = 1 << 20
d = bytearray(64 * m)
for off, n, b in ((0, 3 * m, 0xab), (10 * m, 65536, 0xcd),
                  (41943552, 512, 0x11), (62 * m, m, 0x22),
                  (m, 4 * m, 0x77), (30 * m, m, 0x88)):
    d[off:off + n] = bytes([b]) * n
open("chain.img", "wb").write(d)
PY
printf '0 5242880\n10485760 10551296\n31457280 32505856\n41943552 41944064\n65011712 66060288\n' > c.ext
"$VHDTOOL" upload child.vhd "$AZ/disks/child.vhd" >/dev/null || fail "upload chain"
expect_ranges "$AZ/disks/child.vhd" c.ext $(( 64 * mib ))
judge chain.img "$AZ/disks/child.vhd" raw

# 4. Raw, 30 MiB + 1536 bytes: the blob is 31 MiB + 512 like convert
#    --azure's file, whose footer it matches but for the id and time.
mkdata rnd 2 7
truncate -s $(( 30 * mib + 1536 )) raw.img
dd if=rnd of=raw.img bs=1M seek=5 conv=notrunc status=none
b0=$(proxy_bytes)
"$VHDTOOL" upload raw.img "$PX/disks/raw.vhd" >/dev/null || fail "upload raw"
sent_ok "$b0" $(( 2 * mib ))
printf '5242880 7340032\n' > r.ext
expect_ranges "$AZ/disks/raw.vhd" r.ext $(( 31 * mib ))
cp raw.img want.img; truncate -s $(( 31 * mib )) want.img
[ "$("$VHDTOOL" upload --print-size raw.img)" -eq $(( 31 * mib + 512 )) ] || fail "--print-size"
judge want.img "$AZ/disks/raw.vhd" raw
"$VHDTOOL" convert --azure raw.img conv.vhd >/dev/null
cmp -l blob.vhd conv.vhd > diffs || true
# Only the footer's timestamp (4), checksum (4) and unique id (16) differ.
awk -v base=$(( 31 * mib )) '$1 - 1 < base { exit 1 }
	{ o = $1 - 1 - base; if (!((o >= 24 && o < 28) || (o >= 64 && o < 84))) exit 1 }' diffs ||
	fail "blob differs from convert --azure beyond the footer's id and time"

# 5. Existing blobs: refused unless -f; wrong type and size named.
expect_exit 1 "$VHDTOOL" upload d.vhd "$AZ/disks/d.vhd" 2>err
grep -q "already exists" err || fail "existing blob: $(cat err)"
expect_exit 1 "$VHDTOOL" upload raw.img "$AZ/disks/child.vhd" 2>err
grep -q "exists with size $(( 64 * mib + 512 ))" err || fail "wrong size not named: $(cat err)"
$AZBLOB blockblob "$AZ/disks/block.vhd"
expect_exit 1 "$VHDTOOL" upload raw.img "$AZ/disks/block.vhd" 2>err
grep -q "BlockBlob, not a page blob" err || fail "wrong type not named: $(cat err)"
"$VHDTOOL" upload -f raw.img "$AZ/disks/block.vhd" >/dev/null || fail "-f over a block blob"
judge want.img "$AZ/disks/block.vhd" raw
# -f over a page blob of another size: replaced.
"$VHDTOOL" upload -f raw.img "$AZ/disks/sas.vhd" >/dev/null || fail "-f other size"
expect_ranges "$AZ/disks/sas.vhd" r.ext $(( 31 * mib ))
# -f on a page blob of the right size: cleared, then only the new data.
"$VHDTOOL" upload -f child.vhd "$AZ/disks/d.vhd" >/dev/null || fail "-f same size"
expect_ranges "$AZ/disks/d.vhd" c.ext $(( 64 * mib ))
judge chain.img "$AZ/disks/d.vhd" raw
# An empty page blob of the right size (a managed disk's upload URL) is
# taken as it is.
$AZBLOB pageblob "$AZ/disks/empty.vhd" $(( 31 * mib + 512 ))
"$VHDTOOL" upload raw.img "$AZ/disks/empty.vhd" >/dev/null || fail "empty page blob"
judge want.img "$AZ/disks/empty.vhd" raw
echo ok
