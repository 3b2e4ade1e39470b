# Raw-socket conformance (tests/nbd/proto.py): negotiation edge cases,
# INFO == GO, error codes, structured replies, block status rules, DISC
# after pipelined requests, and hostile clients that must not disturb
# the server.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"

"$VHDTOOL" create disk.vhd 40M
start_server --unix "$SOCK" disk.vhd
"$PY" "$TOP/tests/nbd/proto.py" "$SOCK" disk 41943040
stop_server
