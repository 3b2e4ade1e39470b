# create: virtual size and CHS geometry of new images agree with qemu-img
# (read by current size) and with the specification's CHS algorithm.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need python3 python3

qsize() {   # FILE [plain]: qemu's virtual size, by current size unless plain
	if [ "${2:-}" = plain ]; then
		qemu-img info --output=json -f vpc "$1"
	else
		qemu-img info --output=json --image-opts \
			"driver=vpc,force_size_calc=current_size,file.filename=$1"
	fi | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

for spec in "dynamic 1M 1048576" "dynamic 10M 10485760" "fixed 3M 3145728" \
	    "dynamic 1G 1073741824" "fixed 512 512" "dynamic 100000256 100000256" \
	    "dynamic 200G 214748364800"; do
	set -- $spec
	f="$1-$2.vhd"
	"$VHDTOOL" create --type "$1" "$f" "$2" >/dev/null
	[ "$(qsize "$f")" = "$3" ] || fail "$f: qemu-img sees $(qsize "$f"), want $3"
	"$VHDTOOL" info --json "$f" > info.json
	# Our geometry must be the specification's (VHD spec appendix) and our
	# CHS capacity must be what plain qemu-img (CHS rule) reads, unless the
	# creator is one qemu takes the current size from.
	python3 - "$f" "$3" "$(qsize "$f" plain)" <<'PY' || fail "$f: geometry check failed"
import json, sys
f, size, qplain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
i = json.load(open("info.json"))
t = min(size // 512, 65535 * 16 * 255)
if t >= 65535 * 16 * 63:
    spt, heads = 255, 16; cth = t // spt
else:
    spt = 17; cth = t // spt
    heads = max((cth + 1023) // 1024, 4)
    if cth >= heads * 1024 or heads > 16:
        spt, heads = 31, 16; cth = t // spt
    if cth >= heads * 1024:
        spt, heads = 63, 16; cth = t // spt
cyl = cth // heads
g = i["geometry"]
assert (g["cylinders"], g["heads"], g["sectors"]) == (cyl, heads, spt), (f, g, cyl, heads, spt)
assert i["chs_size"] == cyl * heads * spt * 512, (f, i["chs_size"])
assert i["virtual_size"] == size, (f, i["virtual_size"], size)
assert i["type"] in ("fixed", "dynamic"), i["type"]
app = i["creator"]["app"]
qemu_uses_current = app in ("win", "qem2", "d2v", "tap", "CTXS") or (cyl, heads, spt) == (65535, 16, 255)
want = size if qemu_uses_current else i["chs_size"]
assert qplain == want, (f, "plain qemu-img reads", qplain, "expected", want, "creator", app)
assert i["qemu_size"] == qplain, (f, "info says qemu reads", i["qemu_size"], "it reads", qplain)
PY
done
echo ok
