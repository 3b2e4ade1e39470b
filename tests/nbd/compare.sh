# A random mix of writes, zeroes and discards applied both to a raw model
# file and (over TCP) to the export; qemu-img compare finds them equal,
# over NBD and in the VHD file afterwards.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils
need qemu-img qemu-utils

size=$((12 * 1048576))
truncate -s $size model.raw
"$VHDTOOL" create --block-size 1M disk.vhd 12M
port=$(free_port)
start_server --bind 127.0.0.1 --port "$port" disk.vhd
uri="nbd://127.0.0.1:$port"
"$PY" - $size >cmds.txt <<'PY'
import random, sys
size = int(sys.argv[1]); r = random.Random(1234)
for i in range(150):
    ln = r.choice([512, 4096, 65536, 1 << 20, r.randrange(1, 300000)])
    off = r.randrange(0, size - ln)
    k = r.random()
    if k < 0.6:
        print("write -P %d %d %d" % (r.randrange(1, 256), off, ln))
    elif k < 0.8:
        print("write -z %d %d" % (off, ln))
    else:
        print("discard %d %d" % (off, ln))
PY
args=()
while read -r line; do args+=(-c "$line"); done <cmds.txt
qemu-io -f raw "${args[@]}" model.raw >/dev/null
qemu-io -f raw "${args[@]}" "$uri" >out.txt
grep -qi "error\|fail" out.txt && { grep -i "error\|fail" out.txt | head; fail "qemu-io over NBD failed"; }
qemu-img compare -f raw -F raw model.raw "$uri" || fail "export differs from the model"
stop_server
qemu-img compare --image-opts "driver=raw,file.filename=model.raw" "$(vpc_opts disk.vhd)" ||
	fail "VHD file differs from the model"
