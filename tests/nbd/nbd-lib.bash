# Sourced by tests/nbd/*.sh after tests/lib.sh: start and stop vhdnbd.
#   start_server ARGS...   run "$VHDNBD" --pid-file $T/nbd.pid ARGS... in the
#                          background, wait until it listens; killed on exit
#   stop_server            SIGTERM, wait, demand exit status 0
#   free_port              print a free TCP port on 127.0.0.1
#   SOCK                   a Unix socket path in $T
need nbdinfo libnbd-bin
need python3 python3
[ -x "$VHDNBD" ] || fail "vhdnbd not built: $VHDNBD"
SOCK="$T/nbd.sock"
SERVER_PID=""
PY=/usr/bin/python3

cleanup_server() {
	if [ -n "$SERVER_PID" ]; then
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
	fi
}
trap cleanup_server EXIT

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_server() {
	rm -f "$T/nbd.pid"
	"$VHDNBD" --pid-file "$T/nbd.pid" "$@" 2>>"$T/nbd.log" &
	SERVER_PID=$!
	for _ in $(seq 100); do
		[ -s "$T/nbd.pid" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || {
			cat "$T/nbd.log" >&2; SERVER_PID=""; fail "vhdnbd $* exited early"; }
		sleep 0.1
	done
	[ -s "$T/nbd.pid" ] || fail "vhdnbd $* did not write its pid file"
	[ "$(cat "$T/nbd.pid")" = "$SERVER_PID" ] || fail "pid file holds $(cat "$T/nbd.pid"), not $SERVER_PID"
}

stop_server() {
	[ -n "$SERVER_PID" ] || fail "no server to stop"
	kill -TERM "$SERVER_PID"
	set +e; wait "$SERVER_PID"; rc=$?; set -e
	SERVER_PID=""
	[ "$rc" -eq 0 ] || { cat "$T/nbd.log" >&2; fail "vhdnbd exited $rc after SIGTERM"; }
	[ ! -e "$T/nbd.pid" ] || fail "pid file left behind"
}

# json_get FILE EXPR: evaluate a Python expression on the parsed JSON (j).
json_get() {
	"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# vpc_opts FILE: qemu --image-opts for a VHD read by its current size.
vpc_opts() {
	echo "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=$1"
}
