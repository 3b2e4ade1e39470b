# Writing VHDX, judged by readers we did not write.
#  - vhdtool create makes fixed and dynamic VHDX of every block size
#    (1M..256M); vhdnbd serves them read-write; qemu-io writes, zeroes and
#    discards through NBD; the same commands on a raw file are the
#    reference: qemu-img check finds no errors, qemu-img compare and 7-Zip
#    read the reference.
#  - 4 KiB logical sectors (QEMU 7.2 cannot open them): 7-Zip judges, and
#    the NBD export advertises 4096 as its minimum block size.
#  - a differencing child (vhdtool create --parent) written through NBD:
#    vhdimount (libvhdi) and 7-Zip read parent + child as the reference.
#  - VHDX made by qemu-img (block_state_zero on and off, fixed), written by
#    us: qemu-img check and compare, and we read what we wrote.
#  - convert raw -> VHDX (dynamic, fixed, a .avhdx name, --to vhdx).
#  - mixed chains are refused at creation, and nothing is left behind.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-img qemu-utils
need qemu-io qemu-utils
need 7zz 7zip
need vhdimount libvhdi-utils
need fusermount fuse3
uri="nbd+unix:///?socket=$SOCK"

ops=(-c 'write -P 0x5a 1000k 3M' -c 'write -P 0x66 30M 1M'
     -c 'write -z 1M 512k' -c 'discard 8M 8M' -c 'write -P 0x11 63M 1M'
     -c 'write -P 0x77 12345 999' -c 'write -P 0x21 40M 9M'
     -c 'discard 40M 2M' -c 'write -z 44M 4M')
truncate -s 64M ref.raw
qemu-io -f raw "${ops[@]}" ref.raw > /dev/null

served_write() {   # image: apply ops through vhdnbd
	start_server --unix "$SOCK" "$1"
	qemu-io -f raw "${ops[@]}" "$uri" > qio.log || { cat qio.log; fail "$1: qemu-io"; }
	stop_server
}

judge() {   # image
	qemu-img check -q -f vhdx "$1" || fail "$1: qemu-img check"
	qemu-img compare -q -f vhdx -F raw "$1" ref.raw || fail "$1: qemu-img compare"
	qemu-io -r -f vhdx -c 'read -P 0x66 30M 1M' -c 'read -P 0x77 12345 999' \
		-c 'read -P 0 8M 8M' "$1" > qio.log || { cat qio.log; fail "$1: qemu-io reads"; }
	rm -f ours.raw; "$VHDTOOL" convert "$1" ours.raw > /dev/null
	cmp ours.raw ref.raw || fail "$1: we read it differently"
	seven "$1"
}

seven() {   # image: 7-Zip extracts the disk; it reads as ref.raw
	rm -rf x7; mkdir x7
	7zz x -y -ox7 "$1" > 7z.log || { cat 7z.log; fail "$1: 7zz"; }
	cmp x7/* ref.raw || fail "$1: 7-Zip reads differently"
}

for bs in 1M 2M 8M 32M 64M 256M; do
	"$VHDTOOL" create -b "$bs" "d$bs.vhdx" 64M > /dev/null
	served_write "d$bs.vhdx"
	judge "d$bs.vhdx"
	"$VHDTOOL" check "d$bs.vhdx" > /dev/null || fail "d$bs.vhdx: our check"
done
for bs in 1M 32M; do
	"$VHDTOOL" create --format vhdx -t fixed -b "$bs" "f$bs.img" 64M > /dev/null
	served_write "f$bs.img"
	judge "f$bs.img"
done

# 4 KiB logical sectors
"$VHDTOOL" create -s 4096 -b 2M k4.vhdx 64M > /dev/null
"$VHDTOOL" info k4.vhdx | grep -q '^sector size: *4096 logical' || fail "k4: $("$VHDTOOL" info k4.vhdx)"
start_server --unix "$SOCK" k4.vhdx
nbdinfo --json "$uri" > info.json
[ "$(json_get info.json "j['exports'][0]['block_size_minimum']")" = 4096 ] ||
	fail "4K sectors: minimum block size is not 4096"
qemu-io -f raw "${ops[@]}" "$uri" > qio.log || { cat qio.log; fail "k4: qemu-io"; }
stop_server
seven k4.vhdx
"$VHDTOOL" convert k4.vhdx k4.raw > /dev/null
cmp k4.raw ref.raw || fail "k4: we read differently"

# Differencing: the parent gets half the writes, the child the rest.
# vhdimount (libvhdi 20210425) judges the parent; for a differencing VHDX
# it reads only the parent (a child crafted by the specification,
# tests/vhdx/craft.py diff, too), so 7-Zip judges the chain.
mkdir -p vms
truncate -s 64M refp.raw
qemu-io -f raw "${ops[@]:0:8}" refp.raw > /dev/null
"$VHDTOOL" create -b 1M vms/base.vhdx 64M > /dev/null
start_server --unix "$SOCK" vms/base.vhdx
qemu-io -f raw "${ops[@]:0:8}" "$uri" > /dev/null
stop_server
mkdir -p mnt
vhdimount vms/base.vhdx mnt > vhdimount.log 2>&1 || { cat vhdimount.log; fail "vhdimount"; }
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e mnt/vhdi1 ] && break; sleep 0.2; done
set +e; cmp mnt/vhdi1 refp.raw; rc=$?; set -e
fusermount -u mnt
[ "$rc" -eq 0 ] || fail "vhdimount reads our dynamic VHDX differently"
"$VHDTOOL" create --parent vms/base.vhdx vms/snap.avhdx > out.txt
grep -q 'differencing VHDX' out.txt || fail "$(cat out.txt)"
start_server --unix "$SOCK" vms/snap.avhdx
qemu-io -f raw "${ops[@]:8}" "$uri" > /dev/null
stop_server
"$VHDTOOL" info vms/snap.avhdx > info.txt
grep -q '^parent path: *\.\\base\.vhdx' info.txt || fail "locator: $(cat info.txt)"
rm -rf x7; mkdir x7
7zz x -y -ox7 vms/snap.avhdx > 7z.log || { cat 7z.log; fail "7zz on the child"; }
cmp x7/* ref.raw || fail "7-Zip reads the chain differently"
"$VHDTOOL" convert vms/snap.avhdx chain.raw > /dev/null
cmp chain.raw ref.raw || fail "we read the chain differently"
# The parent is unchanged by the child's writes; a write to the parent
# changes its DataWriteGuid, and the child then refuses it.
"$VHDTOOL" convert vms/base.vhdx p.raw > /dev/null
cmp p.raw refp.raw || fail "the child's writes changed the parent"
start_server --unix "$SOCK" vms/base.vhdx
qemu-io -f raw -c 'write -P 0x99 0 4k' "$uri" > /dev/null
stop_server
if "$VHDTOOL" convert vms/snap.avhdx stale.raw 2> err.txt; then
	fail "a child of a changed parent was read"
fi
grep -q "DataWriteGuid" err.txt || fail "stale parent: $(cat err.txt)"

# VHDX from qemu-img, written by us
for o in block_size=1M,block_state_zero=on block_size=8M,block_state_zero=off \
	 subformat=fixed,block_size=2M; do
	rm -f q.vhdx
	qemu-img create -q -f vhdx -o "$o" q.vhdx 64M
	served_write q.vhdx
	judge q.vhdx
done

# convert raw -> VHDX
"$VHDTOOL" convert ref.raw c.vhdx > out.txt
grep -q 'dynamic VHDX' out.txt || fail "$(cat out.txt)"
judge c.vhdx
"$VHDTOOL" convert -t fixed ref.raw cf.avhdx > /dev/null
judge cf.avhdx
"$VHDTOOL" convert --to vhdx -b 1M ref.raw c1.img > /dev/null
judge c1.img

# Mixed chains: refused, nothing left behind.
"$VHDTOOL" create v.vhd 64M > /dev/null
expect_exit 1 "$VHDTOOL" create --parent v.vhd m.vhdx 2> err.txt
grep -q "m.vhdx: 'v.vhd': a VHD image, where only a VHDX" err.txt || fail "$(cat err.txt)"
[ ! -e m.vhdx ] || fail "a refused child was left behind"
expect_exit 1 "$VHDTOOL" create --parent vms/base.vhdx m.vhd 2> err.txt
grep -q "a VHDX image, where only a VHD" err.txt || fail "$(cat err.txt)"
[ ! -e m.vhd ] || fail "a refused child was left behind"
echo ok
