# vhdtool upload through a fault-injecting proxy in front of Azurite:
# 503 with Retry-After (honoured: the wait is the server's), connections
# dropped in the middle of a request body, slow answers; each upload still
# gives the whole blob.  kill -9 in the middle leaves a blob without a
# footer that download refuses; --resume then sends only the pages the
# blob lacks (counted by the proxy) and gives the same page ranges and data
# as an uninterrupted upload.
. "$TOP/tests/lib.sh"
. "$TOP/tests/azurite.sh"
need qemu-img qemu-utils

mib=1048576
azurite_start
$AZBLOB container "$AZ/disks"

# 40 MiB disk, 24 MiB of random data in 3 runs (6 Put Page requests).
mkdata rnd 24 5
truncate -s $(( 40 * mib )) src.img
dd if=rnd of=src.img bs=1M count=8 conv=notrunc status=none
dd if=rnd of=src.img bs=1M skip=8 seek=12 count=8 conv=notrunc status=none
dd if=rnd of=src.img bs=1M skip=16 seek=30 count=8 conv=notrunc status=none
printf '0 8388608\n12582912 20971520\n31457280 39845888\n41943040 41943552\n' > want.ranges

# check_blob NAME: ranges exact, data equal to src.img, check --azure.
check_blob() {
	$AZBLOB ranges "$AZ/disks/$1" > got.ranges
	diff want.ranges got.ranges >/dev/null ||
		fail "$1: ranges $(tr '\n' ' ' < got.ranges)"
	rm -f blob.vhd
	$AZBLOB get "$AZ/disks/$1" blob.vhd
	qemu-img compare -q -f raw -F vpc src.img blob.vhd || fail "$1: data differs"
	"$VHDTOOL" check --azure blob.vhd >/dev/null || fail "$1: check --azure"
}
retried() { sed -n 's/.*requests, \([0-9]*\) retried.*/\1/p' "$1"; }

# 1. Every 3rd request answered 503 with Retry-After: 1.
proxy_start "503every=3"
start=$(date +%s%N)
"$VHDTOOL" upload -c 1 src.img "$PX/disks/busy.vhd" > out || fail "upload through 503s"
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(retried out)" -ge 2 ] || fail "no retries counted: $(cat out)"
# Retry-After honoured: at least one second per retry (-c 1: in series),
# where the backoff alone would wait 0.25 s.
[ "$el" -ge $(( $(retried out) * 1000 )) ] || fail "retried after less than Retry-After: ${el} ms"
check_blob busy.vhd
kill "$PX_PID"

# 2. Every 2nd request with a body: the connection dropped half-way.
proxy_start "dropevery=2"
"$VHDTOOL" upload -c 3 src.img "$PX/disks/drop.vhd" > out || fail "upload through drops"
# Every 2nd request with a body is cut, retries included, so one request
# may be cut several times: the count of distinct retried requests varies
# with the order of the 3 connections (2 to 9 were seen), never below 2.
[ "$(retried out)" -ge 2 ] || fail "drops not retried: $(cat out)"
check_blob drop.vhd
"$VHDTOOL" download -c 3 "$PX/disks/drop.vhd" back.img >/dev/null || fail "download through drops"
cmp src.img back.img || fail "download through drops differs"
kill "$PX_PID"

# 3. Every 4th request with a body never answered: --timeout 2 gives it
#    up after 2 s without progress and retries it.
proxy_start "hangevery=4,hang=30"
start=$(date +%s)
"$VHDTOOL" upload --timeout 2 -c 2 src.img "$PX/disks/hang.vhd" > out || fail "upload through hangs"
[ $(( $(date +%s) - start )) -lt 25 ] || fail "timeouts not detected"
[ "$(retried out)" -ge 1 ] || fail "hangs not retried: $(cat out)"
check_blob hang.vhd
kill "$PX_PID"

# 4. Slow answers (0.3 s each), 8 connections.
proxy_start "delay=0.3"
"$VHDTOOL" upload -c 8 src.img "$PX/disks/slow.vhd" > out || fail "upload slow"
check_blob slow.vhd

# 5. kill -9 in the middle, then --resume.
"$VHDTOOL" upload -c 1 src.img "$PX/disks/cut.vhd" > out 2>&1 &
up=$!
b0=$(proxy_bytes)
for _ in $(seq 1 200); do
	[ "$(( $(proxy_bytes) - b0 ))" -ge $(( 8 * mib )) ] && break
	sleep 0.05
done
kill -9 "$up"; wait "$up" 2>/dev/null || true
sleep 1     # a request in flight reaches Azurite or not; either is fine
$AZBLOB ranges "$AZ/disks/cut.vhd" > part.ranges
grep -q "^41943040 " part.ranges && fail "interrupted upload has a footer"
held=$(awk '{ n += $2 - $1 } END { print n + 0 }' part.ranges)
[ "$held" -gt 0 ] && [ "$held" -lt $(( 24 * mib )) ] || fail "held $held bytes after kill"
expect_exit 3 "$VHDTOOL" download "$AZ/disks/cut.vhd" cut.img 2>err
grep -q "no valid VHD footer" err || fail "download of a cut blob: $(cat err)"
[ ! -e cut.img ] || fail "download left cut.img"
expect_exit 1 "$VHDTOOL" upload src.img "$AZ/disks/cut.vhd" 2>err
grep -q -- "--resume" err || fail "no hint to resume: $(cat err)"
b0=$(proxy_bytes)
"$VHDTOOL" upload --resume -c 4 src.img "$PX/disks/cut.vhd" > out || fail "resume"
sent=$(( $(proxy_bytes) - b0 ))
need=$(( 24 * mib - held ))
[ "$sent" -le $(( need + need / 100 + 512 )) ] ||
	fail "resume sent $sent bytes; the blob lacked $need"
check_blob cut.vhd
# A second --resume on the whole blob sends nothing but the footer.
b0=$(proxy_bytes)
"$VHDTOOL" upload --resume src.img "$PX/disks/cut.vhd" >/dev/null || fail "resume again"
[ "$(( $(proxy_bytes) - b0 ))" -eq 512 ] || fail "resume of a whole blob sent $(( $(proxy_bytes) - b0 ))"
check_blob cut.vhd
# Every Put Page through the proxies carried the right Content-MD5.
! ls "$T"/px.count.*.md5 >/dev/null 2>&1 || fail "Put Page without a right Content-MD5"
echo ok
