# nbdinfo sees the export as advertised: size, every transmission flag,
# block size limits, base:allocation and qemu:allocation-depth; over a Unix
# socket and over TCP (127.0.0.1 and ::1); --read-only and --export change
# what they should.  Descriptions (INFO and LIST) never carry the server's
# directory; --description replaces them.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"

"$VHDTOOL" create disk.vhd 48M
start_server --unix "$SOCK" disk.vhd
nbdinfo --json "nbd+unix:///?socket=$SOCK" >info.json
check() { got=$(json_get info.json "j['exports'][0]$1"); [ "$got" = "$2" ] || fail "$1 is $got, expected $2"; }
check "['export-size']" 50331648
check "['export-name']" disk
check "['is_read_only']" False
for f in can_flush can_fua can_trim can_zero can_fast_zero can_df can_multi_conn can_cache; do
	check "['$f']" True
done
check "['block_size_minimum']" 1
check "['block_size_preferred']" 4096
check "['block_size_maximum']" 33554432
check "['contexts']" "['base:allocation', 'qemu:allocation-depth']"
check "['description']" "dynamic VHD disk.vhd"
nbdinfo --list --json "nbd+unix:///?socket=$SOCK" >list.json
grep -q '"description": "dynamic VHD disk.vhd"' list.json || { cat list.json; fail "LIST description"; }
grep -q '"description": "[^"]*/' list.json && fail "a path in the LIST description"
got=$(json_get info.json "j['structured']"); [ "$got" = True ] || fail "structured replies not negotiated"
# The named export is the same disk.
nbdinfo --size "nbd+unix:///disk?socket=$SOCK" | grep -qx 50331648 || fail "export 'disk' has the wrong size"
expect_exit 1 nbdinfo "nbd+unix:///nosuch?socket=$SOCK" 2>/dev/null
stop_server
[ ! -e "$SOCK" ] || fail "Unix socket left behind"

port=$(free_port)
mkdir -p sub/dir && cp disk.vhd sub/dir/
start_server --read-only --port "$port" --export myname "$T/sub/dir/disk.vhd"
nbdinfo --json "nbd://127.0.0.1:$port/myname" >info.json
check "['description']" "dynamic VHD disk.vhd (read-only)"
nbdinfo --list --json "nbd://127.0.0.1:$port" >list.json
grep -q "sub/dir" info.json list.json && fail "the image's directory reaches clients"
check "['export-size']" 50331648
check "['is_read_only']" True
check "['can_trim']" False
check "['can_zero']" False
check "['can_multi_conn']" True
# The default export ("") is the same image, under its canonical name.
nbdinfo --json "nbd://127.0.0.1:$port" >info.json
check "['export-size']" 50331648
# IPv6 loopback too, when the host has it.
if "$PY" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
	nbdinfo --size "nbd://[::1]:$port/myname" | grep -qx 50331648 || fail "IPv6 export size wrong"
fi
stop_server
# --description: what clients see instead.
start_server --unix "$SOCK" --description "scratch disk" disk.vhd
nbdinfo --json "nbd+unix:///?socket=$SOCK" >info.json
check "['description']" "scratch disk"
nbdinfo --list --json "nbd+unix:///?socket=$SOCK" >list.json
grep -q '"description": "scratch disk"' list.json || { cat list.json; fail "LIST --description"; }
stop_server
