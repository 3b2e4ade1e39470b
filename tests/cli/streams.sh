# Compressed and standard streams: gzip round trips (raw and fixed VHD
# inside, raw and VHD out), standard input and output, a dynamic VHD
# stream (spooled), and refusals where a format cannot stream.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need gzip gzip

mkdata rnd 1 6
truncate -s 5M raw.img
dd if=rnd of=raw.img bs=1M seek=3 conv=notrunc status=none
"$VHDTOOL" convert raw.img raw.img.gz
gzip -t raw.img.gz || fail "not valid gzip"
zcat raw.img.gz | cmp - raw.img || fail "gzip output is not the disk"
[ "$(stat -c %s raw.img.gz)" -lt 2000000 ] || fail "not compressed"
"$VHDTOOL" convert raw.img.gz back.img
cmp back.img raw.img || fail ".gz raw -> raw differs"
"$VHDTOOL" convert raw.img.gz back.vhd
qemu-img compare -q --image-opts driver=raw,file.filename=raw.img \
	driver=vpc,force_size_calc=current_size,file.filename=back.vhd ||
	fail ".gz raw -> dynamic VHD differs"
"$VHDTOOL" check back.vhd >/dev/null || fail "back.vhd not clean"

# VHD inside gzip: fixed (streamed) and dynamic (spooled)
"$VHDTOOL" convert --type fixed raw.img f.vhd
"$VHDTOOL" convert raw.img d.vhd
gzip -k f.vhd d.vhd
for v in f d; do
	"$VHDTOOL" convert "$v.vhd.gz" "$v.img"
	cmp "$v.img" raw.img || fail "$v.vhd.gz -> raw differs"
	"$VHDTOOL" convert - "$v-in.img" < "$v.vhd.gz"
	cmp "$v-in.img" raw.img || fail "$v.vhd.gz on stdin differs"
	"$VHDTOOL" convert - "$v-plain.img" < "$v.vhd"
	cmp "$v-plain.img" raw.img || fail "$v.vhd on stdin differs"
done
# fixed VHD to a .vhd.gz stream, and to standard output
"$VHDTOOL" convert d.vhd out.vhd.gz
zcat out.vhd.gz > out.vhd
qemu-img compare -q --image-opts driver=raw,file.filename=raw.img \
	driver=vpc,force_size_calc=current_size,file.filename=out.vhd ||
	fail ".vhd.gz output differs"
"$VHDTOOL" info out.vhd | grep -q fixed || fail "stream VHD is not fixed"
"$VHDTOOL" convert d.vhd - | cmp - raw.img || fail "raw on stdout differs"
"$VHDTOOL" convert --to vhd d.vhd - > so.vhd
"$VHDTOOL" check so.vhd >/dev/null || fail "stdout VHD not clean"
"$VHDTOOL" convert --gzip d.vhd - | zcat | cmp - raw.img || fail "--gzip stdout differs"
# raw on stdin, --from vhd demanding a footer
cat raw.img | "$VHDTOOL" convert - in.img
cmp in.img raw.img || fail "raw stdin differs"
expect_exit 3 sh -c '"$0" convert --from vhd - x.img < raw.img' "$VHDTOOL" 2>/dev/null
[ ! -e x.img ] || fail "partial output left"

# refusals
expect_exit 2 "$VHDTOOL" convert --type dynamic raw.img - 2>/dev/null
expect_exit 2 "$VHDTOOL" convert --type dynamic raw.img x.vhd.gz 2>/dev/null
# a truncated .gz fails and leaves nothing
head -c 100000 raw.img.gz > cut.gz
expect_exit 1 "$VHDTOOL" convert cut.gz cut.img 2>/dev/null
[ ! -e cut.img ] || fail "partial output of a truncated .gz left"
echo ok
