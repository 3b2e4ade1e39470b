# Every VHDX of the published format, written from nothing by
# tests/vhdx/gen.py (fixed, dynamic, differencing chains of three with
# .avhdx; 512- and 4096-byte logical sectors; block sizes 1 MiB..256 MiB;
# the current header in either slot, a newer damaged header; shuffled
# region and metadata tables with unknown optional entries; BAT
# sector-bitmap entries crossed; payload states 0, 1, 2, 3 (with stale
# offsets at non-zero bytes), 6 and 7; sizes not a block multiple; 64 TiB
# disks).  For each: our raw conversion holds exactly the generator's
# content; info --json gives the type, sizes, block size and the current
# header's DataWriteGuid; map never calls data zero; check is clean; and
# the readers we did not write that can open it read the same content:
# qemu-img convert (512-byte sectors, not differencing; for 64 TiB, which
# QEMU takes minutes to convert, qemu-io reads of the data and round it),
# vhdimount
# (libvhdi; not differencing, see SPEC.md) and 7zz (small disks).
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need qemu-io qemu-utils
need vhdimount libvhdi-utils
need fusermount3 fuse3
need 7zz 7zip
need python3 python3
gen="$TOP/tests/vhdx/gen.py"
mnt="$T/mnt"
# 64 TiB raw files do not fit ext4 (16 TiB files): tmpfs holds them sparse.
big=$(mktemp -d /dev/shm/vhdx_gen.XXXXXX)
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || true; rm -rf "$big"; }
trap cleanup EXIT
mkdir -p "$mnt"

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

n=0
python3 "$gen" cases > cases.txt
while IFS='	' read -r c judges; do
	rm -rf d "$big"/* && mkdir d
	python3 "$gen" make "$c" d
	j=d/$c.json
	img=$(field "$j" path)
	size=$(field "$j" size)
	raw=ours.raw
	[ "$size" -le $((1 << 40)) ] || raw=$big/ours.raw
	rm -f ours.raw
	"$VHDTOOL" convert "$img" "$raw" > /dev/null || fail "$c: convert failed"
	python3 "$gen" verify "$j" "$raw" || fail "$c: our conversion reads wrong"
	rm -f "$raw"
	"$VHDTOOL" info --json "$img" > info.json || fail "$c: info failed"
	python3 - "$j" info.json <<'PY' || fail "$c: info: $(cat info.json)"
import json, sys
w, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert i["format"] == "vhdx", i
assert i["type"] == w["type"], (i["type"], w["type"])
assert i["virtual_size"] == w["size"]
assert i["logical_sector_size"] == w["lss"]
assert i["physical_sector_size"] == w["pss"]
assert i["block_size"] == w["block_size"]
assert i["data_write_guid"] == w["data_write_guid"], "not the current header's"
PY
	"$VHDTOOL" map --json "$img" > map.json || fail "$c: map failed"
	python3 "$gen" map "$j" map.json || fail "$c: map"
	"$VHDTOOL" check "$img" > /dev/null || fail "$c: check reports problems"
	for who in $judges; do
		case $who in
		qemu)
			qemu-img convert -f vhdx -O raw "$img" "$raw" ||
				fail "$c: qemu-img cannot read it"
			python3 "$gen" verify "$j" "$raw" || fail "$c: qemu-img reads otherwise"
			rm -f "$raw" ;;
		qemu-io)
			python3 "$gen" qemu-io "$j" "$img" ||
				fail "$c: qemu-io reads otherwise" ;;
		vhdi)
			vhdimount "$img" "$mnt" > vhdimount.log 2>&1 ||
				{ cat vhdimount.log; fail "$c: vhdimount failed"; }
			for i in 1 2 3 4 5 6 7 8 9 10; do [ -e "$mnt/vhdi1" ] && break; sleep 0.2; done
			python3 "$gen" verify "$j" "$mnt/vhdi1" --probe ||
				fail "$c: vhdimount reads otherwise"
			fusermount3 -u "$mnt" ;;
		7z)
			rm -rf x7
			7zz x -y -ox7 "$img" > 7z.log || { cat 7z.log; fail "$c: 7zz failed"; }
			out=$(ls x7)
			python3 "$gen" verify "$j" "x7/$out" || fail "$c: 7-Zip reads otherwise"
			rm -rf x7 ;;
		esac
	done
	n=$((n + 1))
done < cases.txt
[ "$n" -ge 30 ] || fail "only $n cases ran"
echo ok
