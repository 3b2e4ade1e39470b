# qemu:allocation-depth, as qemu-nbd --allocation-depth has it: for each
# extent the level of the chain that holds it (1 = the top image, 2 = its
# parent, 0 = no image).  Checked on a two-level VHD chain against the
# expected map, and against qemu-nbd serving the same chain built as qcow2
# (QEMU cannot follow a VHD parent); a single dynamic VHD against the
# expected map, and against qemu-nbd -f vpc where the two can agree.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils
need qemu-img qemu-utils
need qemu-nbd qemu-utils

M=1048576
"$VHDTOOL" create base.vhd 8M >/dev/null
start_server --unix "$SOCK" base.vhd
# Whole 2 MiB blocks in the parent (QEMU's vpc maps whole blocks).
qemu-io -f raw -c "write -P 0x11 $((2*M)) $((2*M))" -c "write -P 0x12 $((6*M)) $((2*M))" \
	"nbd+unix:///?socket=$SOCK" >/dev/null
stop_server
"$VHDTOOL" create --parent base.vhd child.vhd >/dev/null
start_server --unix "$SOCK" child.vhd
qemu-io -f raw -c "write -P 0x21 $((3*M)) 65536" -c "write -P 0x22 $((5*M)) 131072" \
	"nbd+unix:///?socket=$SOCK" >/dev/null
nbdinfo --map=qemu:allocation-depth "nbd+unix:///?socket=$SOCK" >ours.map
# Both contexts on one request: the allocation map still agrees.
nbdinfo --map "nbd+unix:///?socket=$SOCK" >alloc.map
stop_server
cat ours.map

# expected: offset length depth
cat >expected.map <<EOF2
0 $((2*M)) 0
$((2*M)) $((1*M)) 2
$((3*M)) 65536 1
$((3*M+65536)) $((1*M-65536)) 2
$((4*M)) $((1*M)) 0
$((5*M)) 131072 1
$((5*M+131072)) $((1*M-131072)) 0
$((6*M)) $((2*M)) 2
EOF2
awk '{ print $1, $2, $3 }' ours.map >ours3.map
diff expected.map ours3.map || fail "allocation depth of the chain differs from the expected map"
grep -q "^ *0 .*hole,zero" alloc.map || fail "base:allocation wrong next to the depth context"

# The same chain as qcow2 (64 KiB clusters), served by qemu-nbd -A.
qemu-img create -q -f qcow2 -o cluster_size=65536 base.qcow2 8M
qemu-io -f qcow2 -c "write -P 0x11 $((2*M)) $((2*M))" -c "write -P 0x12 $((6*M)) $((2*M))" base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=65536 -b base.qcow2 -F qcow2 child.qcow2
qemu-io -f qcow2 -c "write -P 0x21 $((3*M)) 65536" -c "write -P 0x22 $((5*M)) 131072" child.qcow2 >/dev/null
qsock="$T/q.sock"
qemu-nbd -t -A -f qcow2 -k "$qsock" child.qcow2 &
qpid=$!
for _ in $(seq 50); do [ -S "$qsock" ] && break; sleep 0.1; done
nbdinfo --map=qemu:allocation-depth "nbd+unix:///?socket=$qsock" >qemu.map || { kill $qpid; fail "qemu-nbd map"; }
kill $qpid; wait $qpid 2>/dev/null || true
awk '{ print $1, $2, $3 }' qemu.map >qemu3.map
diff qemu3.map ours3.map || fail "allocation depth differs from qemu-nbd on the same chain"

# A single dynamic VHD: ours and qemu-nbd -f vpc on the very file.
start_server --unix "$SOCK" --read-only base.vhd
nbdinfo --map=qemu:allocation-depth "nbd+unix:///?socket=$SOCK" | awk '{ print $1, $2, $3 }' >ours1.map
stop_server
rm -f "$qsock"
qemu-nbd -t -A -r -k "$qsock" --image-opts "$(vpc_opts base.vhd)" &
qpid=$!
for _ in $(seq 50); do [ -S "$qsock" ] && break; sleep 0.1; done
nbdinfo --map=qemu:allocation-depth "nbd+unix:///?socket=$qsock" | awk '{ print $1, $2, $3 }' >qemu1.map ||
	{ kill $qpid; fail "qemu-nbd map of base.vhd"; }
kill $qpid; wait $qpid 2>/dev/null || true
cat ours1.map qemu1.map
printf '0 %d 0\n%d %d 1\n%d %d 0\n%d %d 1\n' $((2*M)) $((2*M)) $((2*M)) $((4*M)) $((2*M)) $((6*M)) $((2*M)) >expected1.map
diff expected1.map ours1.map || fail "allocation depth of a dynamic VHD"
# QEMU's vpc driver reports unallocated blocks as zero, which its block
# layer counts as allocated in the top image: it says 1 everywhere.  What
# we call 1 must be 1 there too.
"$PY" - ours1.map qemu1.map <<'PY'
import sys
def load(f):
    return [tuple(map(int, l.split())) for l in open(f)]
ours, qemu = load(sys.argv[1]), load(sys.argv[2])
def depth(m, o):
    for off, ln, d in m:
        if off <= o < off + ln:
            return d
    raise SystemExit("offset %d not in map" % o)
for off, ln, d in ours:
    for o in range(off, off + ln, 65536):
        assert d == 0 or depth(qemu, o) == d, (off, ln, d, depth(qemu, o))
PY
