# A differencing child served and written: reads show the child's writes
# over the parent's data, and the parent file stays byte-identical.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need qemu-io qemu-utils

mkdata base.raw 8 diffparent
"$VHDTOOL" convert base.raw parent.vhd
"$VHDTOOL" create --parent parent.vhd child.vhd
sha256sum parent.vhd >parent.sha
start_server --unix "$SOCK" child.vhd
uri="nbd+unix:///child?socket=$SOCK"
qemu-io -f raw -c 'write -P 0x42 1M 64k' -c 'write -z 3M 4k' -c 'discard 5M 1M' -c 'write -P 0x43 7000 100' \
	"$uri" >/dev/null
cp base.raw model.raw
qemu-io -f raw -c 'write -P 0x42 1M 64k' -c 'write -z 3M 4k' -c 'write -z 5M 1M' -c 'write -P 0x43 7000 100' \
	model.raw >/dev/null
need qemu-img qemu-utils
qemu-img compare -f raw -F raw model.raw "$uri" || fail "child over NBD differs from the model"
nbdinfo --map "$uri" | grep -q "data" || fail "child map shows no data"
stop_server
sha256sum -c --quiet parent.sha || fail "serving the child modified its parent"
# The parent alone still reads as the base data.
start_server --unix "$SOCK" --read-only parent.vhd
qemu-img compare -f raw -F raw base.raw "nbd+unix:///parent?socket=$SOCK" || fail "parent content changed"
stop_server
# --parent names the parent explicitly (here: after moving it).
mkdir elsewhere && mv parent.vhd elsewhere/
start_server --unix "$SOCK" --read-only --parent elsewhere/parent.vhd child.vhd
qemu-img compare -f raw -F raw model.raw "nbd+unix:///child?socket=$SOCK" || fail "child with --parent differs"
stop_server
