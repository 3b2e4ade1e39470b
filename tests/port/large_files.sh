# large_files.sh - a vhdtool built for a 32-bit target on files over
# 4 GiB, through every command that stats or sizes files: convert (and
# convert --azure), check --azure, info, resize and compact; and a
# timestamp past 2038.  With a 32-bit off_t, stat() fails with EOVERFLOW
# past 2 GiB ("cannot be uploaded: unreadable", sizes reported as 0); with
# a 32-bit time_t the date wraps to 1901.
#
# Run by scripts/portability.sh for the 32-bit targets (natively or under
# qemu-user), by hand:  RUN="qemu-i386" VHDTOOL=build-port/i686/vhdtool \
#                        sh tests/port/large_files.sh SCRATCH_DIR
# The files are sparse: a few MiB on disk.
set -eu
: "${VHDTOOL:?VHDTOOL: the vhdtool to test}"
RUN=${RUN:-}
w=${1:?usage: large_files.sh SCRATCH_DIR}
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck disable=SC2086
V() { $RUN "$VHDTOOL" "$@"; }
fsize() { stat -c %s "$1"; }
json_num() {    # key file: the number after "key":
	sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$2" | head -1
}
mib=1048576
cd "$w"

# Raw disk of 4160 MiB with data below 2 GiB, between 2 and 4 GiB and
# past 4 GiB.
truncate -s $((4160 * mib)) big.raw
for m in 1 3000 4150; do
	printf 'data at %s MiB' $m | dd of=big.raw bs=1M seek=$m conv=notrunc status=none
done
region() {      # file MiB
	dd if="$1" bs=1M skip="$2" count=1 status=none | od -An -c | head -2
}

# convert --azure: a fixed VHD of 4160 MiB + 512.
V convert --azure big.raw az.vhd > out.txt 2>&1 || fail "convert --azure: $(cat out.txt)"
[ "$(fsize az.vhd)" = $((4160 * mib + 512)) ] || fail "az.vhd is $(fsize az.vhd) bytes"
# check --azure stats it.
V check --azure az.vhd > out.txt 2>&1 || fail "check --azure: $(cat out.txt)"
grep -q "meets Azure" out.txt || fail "check --azure: $(cat out.txt)"
# info: file size and disk size past 4 GiB.
V info --json az.vhd > info.json 2>&1 || fail "info: $(cat info.json)"
[ "$(json_num file_size info.json)" = $((4160 * mib + 512)) ] ||
	fail "info file_size: $(cat info.json)"
# resize: grow the fixed disk by 1 MiB; still Azure-ready.
V resize --json az.vhd 4161M > out.txt 2>&1 || fail "resize: $(cat out.txt)"
[ "$(json_num new_size out.txt)" = $((4161 * mib)) ] || fail "resize: $(cat out.txt)"
[ "$(fsize az.vhd)" = $((4161 * mib + 512)) ] || fail "resized az.vhd is $(fsize az.vhd) bytes"
V check --azure az.vhd > out.txt 2>&1 || fail "check --azure after resize: $(cat out.txt)"

# convert: raw -> dynamic -> raw keeps every region and the size.
V convert -O vhd -t dynamic big.raw dyn.vhd > out.txt 2>&1 || fail "convert to dynamic: $(cat out.txt)"
V convert -O raw dyn.vhd back.raw > out.txt 2>&1 || fail "convert to raw: $(cat out.txt)"
[ "$(fsize back.raw)" = $((4160 * mib)) ] || fail "back.raw is $(fsize back.raw) bytes"
for m in 1 3000 4150 4159; do
	[ "$(region big.raw $m)" = "$(region back.raw $m)" ] ||
		fail "convert: MiB $m differs: $(region back.raw $m)"
done
# The fixed disk holds the data where the raw disk has it (reading it
# through vhdtool would scan 4 GiB of zeros: too slow under qemu-user).
for m in 1 3000 4150; do
	[ "$(region big.raw $m)" = "$(region az.vhd $m)" ] || fail "az.vhd: MiB $m differs"
done
rm -f back.raw

# compact: a dynamic image whose file is over 4 GiB (its footer moved
# 5 GiB out: leaked space after the last block), closed up again.
cp dyn.vhd gap.vhd
n=$(fsize gap.vhd)
tail -c 512 gap.vhd > foot
truncate -s $((n - 512)) gap.vhd
truncate -s $((5120 * mib)) gap.vhd
cat foot >> gap.vhd
V info --json gap.vhd > info.json 2>&1 || fail "info (gap): $(cat info.json)"
[ "$(json_num file_size info.json)" = $((5120 * mib + 512)) ] ||
	fail "info file_size (gap): $(cat info.json)"
V compact --json gap.vhd > out.txt 2>&1 || fail "compact: $(cat out.txt)"
[ "$(json_num size_before out.txt)" = $((5120 * mib + 512)) ] ||
	fail "compact size_before: $(cat out.txt)"
[ "$(json_num size_after out.txt)" = "$(fsize gap.vhd)" ] ||
	fail "compact size_after: $(cat out.txt), file $(fsize gap.vhd)"
[ "$(fsize gap.vhd)" -lt $((4096 * mib)) ] || fail "compact left $(fsize gap.vhd) bytes"
V convert -O raw gap.vhd gap.raw > out.txt 2>&1 || fail "convert compacted: $(cat out.txt)"
for m in 1 3000 4150; do
	[ "$(region big.raw $m)" = "$(region gap.raw $m)" ] || fail "compact: MiB $m differs"
done
rm -f gap.raw

# A timestamp past 2038: 2100-01-01 (3155760000 s after 2000-01-01) in
# the footer of a small fixed disk, checksum recomputed.
V create -t fixed ts.vhd 1M > out.txt 2>&1 || fail "create: $(cat out.txt)"
off=$(( $(fsize ts.vhd) - 512 ))
printf '\274\031\023\200' | dd of=ts.vhd bs=1 seek=$((off + 24)) conv=notrunc status=none
sum=$(dd if=ts.vhd bs=512 skip=$((off / 512)) count=1 status=none | od -An -tu1 -v |
	tr -s ' ' '\n' | awk 'NF { i++; if (i < 65 || i > 68) s += $1 } END { print s }')
c=$(( (~sum) & 0xffffffff ))
printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((c >> 24 & 255)) $((c >> 16 & 255)) \
	$((c >> 8 & 255)) $((c & 255)))" | dd of=ts.vhd bs=1 seek=$((off + 64)) conv=notrunc status=none
V info ts.vhd > out.txt 2>&1 || fail "info (2100): $(cat out.txt)"
grep -q '^timestamp: *2100-01-01T00:00:00Z$' out.txt || fail "timestamp: $(grep timestamp out.txt)"
echo "ok: convert, convert --azure, check --azure, info, resize, compact over 4 GiB; 2100 timestamp"
