# Who may connect, and what they learn:
# - --allow ADDR[/PREFIX] (repeatable, IPv4 and IPv6): other TCP clients are
#   closed before the first byte of the handshake; bad values are usage
#   errors;
# - serving read-write on a non-loopback address warns at start (tried in
#   a private network namespace, so nothing is exposed); loopback or
#   --read-only does not;
# - Unix sockets: a second server refuses a path where one answers
#   ("Address already in use"), a stale socket is replaced, and a server
#   removes the path at exit only if it is still its own socket.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"

"$VHDTOOL" create disk.vhd 8M

# greeting HOST PORT: print how many greeting bytes the server sends.
greeting() {
	"$PY" - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.settimeout(5)
b = b""
try:
    while len(b) < 18:
        x = s.recv(18 - len(b))
        if not x:
            break
        b += x
except (ConnectionResetError, socket.timeout):
    pass
print(len(b))
PY
}
have_v6() { "$PY" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; }

expect_exit 2 "$VHDNBD" --allow 10.0.0.0/33 disk.vhd 2>/dev/null
expect_exit 2 "$VHDNBD" --allow not-an-address disk.vhd 2>/dev/null
expect_exit 2 "$VHDNBD" --allow ::1/129 disk.vhd 2>/dev/null

port=$(free_port)
start_server --bind 127.0.0.1 --port "$port" --allow 10.0.0.0/8 --allow fd00::/8 disk.vhd
[ "$(greeting 127.0.0.1 "$port")" = 0 ] || fail "127.0.0.1 not in --allow but got a greeting"
expect_exit 1 nbdinfo --size "nbd://127.0.0.1:$port" 2>/dev/null
stop_server
grep -q "refused a connection from 127.0.0.1" "$T/nbd.log" || fail "refusal not logged"

port=$(free_port)
start_server --bind 127.0.0.1 --port "$port" --allow 10.0.0.0/8 --allow 127.0.0.0/8 disk.vhd
[ "$(greeting 127.0.0.1 "$port")" = 18 ] || fail "127.0.0.1 in 127.0.0.0/8 refused"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 8388608 ] || fail "allowed client not served"
stop_server

port=$(free_port)
start_server --bind 127.0.0.1 --port "$port" --allow 127.0.0.2 disk.vhd
[ "$(greeting 127.0.0.1 "$port")" = 0 ] || fail "127.0.0.1 matched --allow 127.0.0.2"
stop_server

if have_v6; then
	port=$(free_port)
	start_server --bind ::1 --port "$port" --allow 127.0.0.1 disk.vhd
	[ "$(greeting ::1 "$port")" = 0 ] || fail "::1 matched --allow 127.0.0.1"
	stop_server
	start_server --bind ::1 --port "$port" --allow ::1/128 disk.vhd
	[ "$(nbdinfo --size "nbd://[::1]:$port")" = 8388608 ] || fail "::1 in --allow ::1/128 refused"
	stop_server
	start_server --bind ::1 --port "$port" --allow 8000::/1 --allow ::2/127 disk.vhd
	[ "$(greeting ::1 "$port")" = 0 ] || fail "::1 matched --allow 8000::/1 or ::2/127"
	stop_server
fi
# Unix-socket clients are not subject to --allow.
start_server --unix "$SOCK" --allow 10.0.0.1 disk.vhd
[ "$(nbdinfo --size "nbd+unix:///?socket=$SOCK")" = 8388608 ] || fail "--allow refused a Unix client"
stop_server

# The start-up warning: loopback and read-only are quiet.
port=$(free_port)
: >"$T/nbd.log"
start_server --bind 127.0.0.1 --port "$port" disk.vhd
stop_server
grep -q "warning" "$T/nbd.log" && fail "warning on loopback: $(cat "$T/nbd.log")"
if $PRIVATE_NET true 2>/dev/null; then
	# All addresses, in a namespace of our own (only a loopback, down).
	$PRIVATE_NET "$VHDNBD" --port "$port" disk.vhd 2>warn.txt &
	p=$!
	for _ in $(seq 50); do grep -q warning warn.txt && break; sleep 0.1; done
	kill -TERM $p; wait $p || true
	grep -Eq "warning: serving read-write without TLS on (0.0.0.0|::)," warn.txt ||
		fail "no warning for read-write on all addresses: $(cat warn.txt)"
	$PRIVATE_NET "$VHDNBD" --read-only --port "$port" disk.vhd 2>warn.txt &
	p=$!
	sleep 1
	kill -TERM $p; wait $p || true
	grep -q warning warn.txt && fail "warning with --read-only: $(cat warn.txt)"
else
	fail "$PRIVATE_NET (a network namespace) not available for the warning test"
fi

# Unix sockets: a live server keeps its path.  (A second image: the first
# is locked by the server using it.)
"$VHDTOOL" create disk2.vhd 4M >/dev/null
start_server --unix "$SOCK" disk.vhd
first=$SERVER_PID
expect_exit 1 "$VHDNBD" --unix "$SOCK" disk2.vhd 2>second.txt
grep -q "Address already in use" second.txt || fail "second server: $(cat second.txt)"
[ "$(nbdinfo --size "nbd+unix:///?socket=$SOCK")" = 8388608 ] || fail "first server lost its socket"
# The path taken over meanwhile (removed and bound by another server):
# the first server must not remove the new socket when it exits.
rm -f "$SOCK"
"$VHDNBD" --unix "$SOCK" --pid-file "$T/other.pid" disk2.vhd 2>>"$T/nbd.log" &
other=$!
for _ in $(seq 50); do [ -s "$T/other.pid" ] && break; sleep 0.1; done
stop_server
[ -S "$SOCK" ] || { kill $other; fail "exiting server removed another server's socket"; }
[ "$(nbdinfo --size "nbd+unix:///?socket=$SOCK")" = 4194304 ] || { kill $other; fail "second server not answering"; }
kill -TERM $other; wait $other || fail "second server exit status"
[ ! -e "$SOCK" ] || fail "second server left its own socket"
# A stale socket (server killed) is replaced.
start_server --unix "$SOCK" disk.vhd
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
[ -S "$SOCK" ] || fail "no stale socket to test with"
start_server --unix "$SOCK" disk.vhd
[ "$(nbdinfo --size "nbd+unix:///?socket=$SOCK")" = 8388608 ] || fail "stale socket not replaced"
stop_server
# Not a socket: never removed.
echo keep >"$T/plain"
expect_exit 1 "$VHDNBD" --unix "$T/plain" disk.vhd 2>/dev/null
[ "$(cat "$T/plain")" = keep ] || fail "a plain file at the socket path was touched"
