# QEMU writes into a child we made, and our parent locators survive.
# QEMU's vpc driver opens a differencing disk as a plain dynamic one and
# puts its first new block right after the BAT; our locator data lies
# between the header and the BAT (like Windows'), so it is not overwritten.
# Judged after moving the chain so that only the relative locator (W2ru)
# can find the parent: check is clean, info and qemu-img see the chain's
# data.  Then set-parent (new locators into the room before the BAT, file
# size unchanged) and more QEMU writes, and the chain still resolves.
. "$TOP/tests/lib.sh"
need qemu-io qemu-utils
need qemu-img qemu-utils

mkdir -p a/images a/vms
"$VHDTOOL" create a/images/base.vhd 16M >/dev/null
qemu-io -f vpc -c "write -P 0x11 0 8M" a/images/base.vhd >/dev/null
"$VHDTOOL" create --parent a/images/base.vhd a/vms/child.vhd >/dev/null
qemu-io -f vpc -c "write -P 0x22 0 64k" -c "write -P 0x33 6M 4k" \
	-c "write -P 0x44 12M 2M" a/vms/child.vhd >/dev/null || fail "qemu-io write"
mv a b    # the absolute locator (W2ku) now points nowhere

chain_ok() {   # CHILD PARENT-NAME: check clean, parent found, data right
	"$VHDTOOL" check "$1" >check.out 2>&1 || { cat check.out; fail "check $1 after QEMU writes"; }
	"$VHDTOOL" info "$1" | grep -q "^parent: .*$2" || fail "$1: parent $2 not found"
	"$VHDTOOL" convert "$1" flat.raw || fail "convert $1"
	# QEMU marks every sector of a block it allocates as present (SPEC
	# §7 #10), so the rest of such a block reads as zeros, not as the
	# parent's data.
	qemu-io -f raw -c "read -P 0x22 0 64k" -c "read -P 0 64k 1984k" \
		-c "read -P 0x11 2M 4M" -c "read -P 0x33 6M 4k" \
		-c "read -P 0 $((6 * 1048576 + 4096)) $((2 * 1048576 - 4096))" \
		-c "read -P 0 8M 4M" -c "read -P 0x44 12M 2M" -c "read -P 0 14M 2M" flat.raw |
		grep -q "Pattern verification failed" && fail "$1: chain data wrong"
	rm -f flat.raw
}
chain_ok b/vms/child.vhd base.vhd

# set-parent to a copy: the new locators go into the room before the BAT.
cp b/images/base.vhd b/images/base-copy-with-a-longer-name.vhd
size0=$(stat -c %s b/vms/child.vhd)
"$VHDTOOL" set-parent b/vms/child.vhd b/images/base-copy-with-a-longer-name.vhd >/dev/null ||
	fail "set-parent"
[ "$(stat -c %s b/vms/child.vhd)" = "$size0" ] || fail "set-parent grew the file"
qemu-io -f vpc -c "write -P 0x44 12M 1M" b/vms/child.vhd >/dev/null || fail "qemu-io write 2"
rm b/images/base.vhd
mv b c
chain_ok c/vms/child.vhd base-copy-with-a-longer-name.vhd
echo ok
