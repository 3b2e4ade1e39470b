# Process life: SIGTERM and SIGINT end the server cleanly (exit 0, pid file
# and socket removed) with every acknowledged write in the file; systemd
# socket activation (LISTEN_FDS on fd 3); --help, --version, usage errors
# and unopenable images give the documented exit codes.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils

"$VHDNBD" --help | grep -q "Usage: vhdnbd" || fail "--help"
"$VHDNBD" --version | grep -q "^vhdnbd [0-9]" || fail "--version"
expect_exit 2 "$VHDNBD" 2>/dev/null
expect_exit 2 "$VHDNBD" --no-such-option x.vhd 2>/dev/null
expect_exit 2 "$VHDNBD" --port 99999 x.vhd 2>/dev/null
expect_exit 1 "$VHDNBD" --unix "$SOCK" missing.vhd 2>err.txt
grep -q "^vhdnbd: .*missing.vhd" err.txt || fail "message for a missing image: $(cat err.txt)"
head -c 1048576 /dev/urandom >garbage.vhd
expect_exit 3 "$VHDNBD" --unix "$SOCK" garbage.vhd 2>/dev/null

"$VHDTOOL" create disk.vhd 8M
for sig in TERM INT; do
	start_server --unix "$SOCK" disk.vhd
	qemu-io -f raw -c "write -P 0x3$((${#sig})) 0 1M" "nbd+unix:///?socket=$SOCK" >/dev/null
	kill -$sig "$SERVER_PID"
	set +e; wait "$SERVER_PID"; rc=$?; set -e; SERVER_PID=""
	[ "$rc" -eq 0 ] || fail "exit $rc after SIG$sig"
	[ ! -e "$T/nbd.pid" ] || fail "pid file left after SIG$sig"
	[ ! -e "$SOCK" ] || fail "socket left after SIG$sig"
	qemu-io --image-opts -c "read -P 0x3$((${#sig})) 0 1M" "$(vpc_opts disk.vhd)" >/dev/null ||
		fail "write lost after SIG$sig"
done

# SIGTERM while a client is connected and idle: still a clean exit.
start_server --unix "$SOCK" disk.vhd
"$PY" -c '
import nbd, sys, time
h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(b"q" * 4096, 8192); time.sleep(30)' \
	"nbd+unix:///?socket=$SOCK" 2>/dev/null &
client=$!
sleep 0.5
stop_server
kill $client 2>/dev/null || true; wait $client 2>/dev/null || true
qemu-io --image-opts -c "read -P 0x71 8192 4096" "$(vpc_opts disk.vhd)" >/dev/null ||
	fail "write from a connected client lost at shutdown"

# Socket activation: a listening socket on fd 3, LISTEN_PID = the server.
"$PY" - "$VHDNBD" "$T/act.sock" "$T/nbd.pid" disk.vhd <<'PY' 2>>"$T/nbd.log" &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[2]); s.listen(8)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], [sys.argv[1], "--pid-file", sys.argv[3], sys.argv[4]])
PY
SERVER_PID=$!
for _ in $(seq 50); do [ -s "$T/nbd.pid" ] && break; sleep 0.1; done
[ -s "$T/nbd.pid" ] || fail "socket-activated server did not start"
[ "$(nbdinfo --size "nbd+unix:///?socket=$T/act.sock")" = 8388608 ] || fail "socket activation"
stop_server
