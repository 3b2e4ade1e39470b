# libnbd clients (python3-libnbd): INFO and GO agree, errors keep the
# connection usable, multi-conn visibility, 40 concurrent clients with
# 16 requests each in flight; a read-only export refuses writes (EPERM).
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
[ -f /usr/lib/python3/dist-packages/nbd.py ] || fail "python nbd module missing: apt-get install python3-libnbd"

"$VHDTOOL" create disk.vhd 16M
start_server --unix "$SOCK" disk.vhd
"$PY" "$TOP/tests/nbd/clients.py" rw "nbd+unix:///disk?socket=$SOCK" 16777216
stop_server
port=$(free_port)
start_server --read-only --bind 127.0.0.1 --port "$port" disk.vhd
"$PY" "$TOP/tests/nbd/clients.py" ro "nbd://127.0.0.1:$port/disk" 16777216
stop_server
