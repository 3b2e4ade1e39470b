# Reply sending (nbd/server.c conn_reply, tests/nbd/sendpath.py): one
# worker sends a connection's replies while its client reads them; a
# client that pauses has the rest sent by the poller, and a worker takes
# over again when it reads: every reply must still arrive whole, in one
# piece, with its own data.  A client that never reads must not hold the
# only worker (--threads 1): another client's READ is answered in < 2 s.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils

"$VHDTOOL" create disk.vhd 64M
start_server --unix "$SOCK" disk.vhd
cmds=()
for k in $(seq 0 15); do
	cmds+=(-c "write -P $((k + 1)) ${k}M 1M")
done
qemu-io -f raw "${cmds[@]}" "nbd+unix:///?socket=$SOCK" >/dev/null || fail "qemu-io write"
"$PY" "$TOP/tests/nbd/sendpath.py" slow "$SOCK"
stop_server

start_server --unix "$SOCK" --threads 1 disk.vhd
"$PY" "$TOP/tests/nbd/sendpath.py" stuck "$SOCK"
stop_server
