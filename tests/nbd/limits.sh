# Bounded resources, no lock-out (loopback only, bounded in time and
# count; measured with tests/nbd/limits.py):
# - a silent client is dropped after --handshake-timeout (default 10 s);
# - 1,000 silent connections held open do not keep a libnbd client out
#   (served within 2 s), and the "too many" log lines are rate-limited;
# - 1,000 negotiated idle clients add fewer than 100 threads;
# - 4 clients that queue 400 READs of 32 MiB and never read keep the peak
#   RSS under 512 MiB, others are still served, and SIGTERM still ends the
#   server with exit 0 within 10 s, with the image flushed.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils

"$VHDTOOL" create disk.vhd 64M

# Handshake timeout: configured, then the default.
port=$(free_port)
start_server --bind 127.0.0.1 --port "$port" --handshake-timeout 2 disk.vhd
"$PY" "$TOP/tests/nbd/limits.py" timeout "$port" 1.5 4
# Flood of silent connections.
"$PY" "$TOP/tests/nbd/limits.py" flood "$port"
stop_server
n=$(grep -c "too many connections" "$T/nbd.log" || true)
echo "log lines about too many connections: $n"
[ "$n" -ge 1 ] || fail "no log line about the connection flood"
[ "$n" -le 8 ] || { cat "$T/nbd.log"; fail "$n log lines for one flood: not rate-limited"; }
grep -Eq "more like it|held back" "$T/nbd.log" || fail "held-back log lines not counted"

port=$(free_port)
start_server --bind 127.0.0.1 --port "$port" disk.vhd
"$PY" "$TOP/tests/nbd/limits.py" timeout "$port" 9 12
stop_server

# Threads: a pool, not threads per client.
start_server --unix "$SOCK" --threads 8 disk.vhd
"$PY" "$TOP/tests/nbd/limits.py" idle "$SOCK" "$SERVER_PID"
stop_server

# Clients that never read their replies.
start_server --unix "$SOCK" disk.vhd
qemu-io -f raw -c 'write -P 0x6b 1M 1M' "nbd+unix:///?socket=$SOCK" >/dev/null
"$PY" "$TOP/tests/nbd/limits.py" stuck "$SOCK" "$SERVER_PID"
set +e; wait "$SERVER_PID"; rc=$?; set -e
SERVER_PID=""
[ "$rc" -eq 0 ] || { cat "$T/nbd.log"; fail "exit status $rc after SIGTERM with stuck clients"; }
grep -q "dropping .* client" "$T/nbd.log" || fail "stuck clients not reported as dropped"
[ ! -e "$SOCK" ] || fail "socket left behind"
qemu-io --image-opts -c "read -P 0x6b 1M 1M" "$(vpc_opts disk.vhd)" >/dev/null ||
	fail "write lost at shutdown with stuck clients"
"$VHDTOOL" check disk.vhd >/dev/null || fail "image not clean after shutdown"
