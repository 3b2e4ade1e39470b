# libvhdi (vhdimount) reads the chains we write exactly as we do, at every
# level: writes of whole 4 KiB groups, zeros over parent data, a merge
# into a differencing parent, and last writes smaller than 4 KiB into a
# child.  libvhdi takes a sector as present in a child when any earlier
# sector of the same bitmap byte (8 sectors) is, so a writer must keep each
# child's bitmap bytes all-or-nothing to be read right by it.
. "$TOP/tests/lib.sh"
. "$TOP/tests/diff/diff-lib.bash"

mkdir c && cd c
head -c $((8 * K * K)) /dev/zero >model.base
"$VHDTOOL" create --block-size 512K base.vhd 8M >/dev/null
fuse_on base.vhd
put model.base 0 $((256 * K)) b1
put model.base $((3 * BS)) $BS b2
fuse_off
cp model.base model.mid
"$VHDTOOL" create --parent base.vhd mid.vhd >/dev/null
fuse_on mid.vhd
put model.mid 4096 8192 m1
put model.mid $((3 * BS + 8192)) 16384 zero
put model.mid $((5 * BS - 4096)) $((BS + 8192)) m2
fuse_off
cp model.mid model.top
"$VHDTOOL" create --parent mid.vhd top.vhd >/dev/null
fuse_on top.vhd
put model.top 0 4096 t1
put model.top $((BS - 4096)) 8192 t2
put model.top $((7 * BS)) 4096 zero
fuse_off
for f in base mid top; do same_as_model $f.vhd model.$f; done
vhdi_same top.vhd 1 model.base
vhdi_same top.vhd 2 model.mid
vhdi_same top.vhd 3 model.top

# merge top into mid (kept): mid and top still read right for libvhdi
"$VHDTOOL" merge --keep top.vhd >/dev/null
vhdi_same top.vhd 2 model.top
vhdi_same top.vhd 3 model.top

# sub-4K writes into the child
fuse_on top.vhd
put model.top 100 10 t3
put model.top $((64 * K + 1536)) 1024 t4
fuse_off
same_as_model top.vhd model.top
echo "libvhdi after sub-4K child writes (the writer must store whole 4 KiB" \
	"groups, filling the rest from the parent):" >&2
vhdi_same top.vhd 3 model.top
echo ok
