# Locks QEMU and we both honour (issue 14, item 1): our image lock is
# QEMU's OFD byte-range protocol, so each side refuses the other.
#  - vhdnbd / vhdfuse serving read-write: qemu-io (rw and -r), qemu-img
#    resize and info, qemu-nbd and qemu-storage-daemon are refused; the
#    write qemu-io used to slip in is not lost because it never happens;
#    qemu-img info -U still reads.
#  - qemu-nbd / qemu-storage-daemon / qemu-io serving read-write: vhdnbd,
#    vhdfuse, vhdtool resize/info/convert are refused, naming the holder
#    and its pid.
#  - a QEMU reader (qemu-io -r, qemu-nbd -r) keeps our writers out but
#    lets our readers in, and the other way round.
. "$TOP/tests/lib.sh"
. "$TOP/tests/reliability/lock-lib.bash"

"$VHDTOOL" create c.vhd 64M >/dev/null
touch mnt

# 1. vhdnbd serves c.vhd read-write: every QEMU opener is refused.
vhdnbd_hold one c.vhd
refused c.vhd "$QEMU_BUSY" qemu-io -f vpc -c 'write -P 0x55 8M 1M' c.vhd
refused c.vhd "$QEMU_BUSY" qemu-io -f vpc -r -c 'read 0 1M' c.vhd
refused c.vhd "$QEMU_BUSY" qemu-img resize -f vpc c.vhd 128M
refused c.vhd "$QEMU_BUSY" qemu-img info c.vhd
refused c.vhd "$QEMU_BUSY" qemu-nbd -f vpc --socket="$T/q.sock" c.vhd
refused c.vhd "$QEMU_BUSY" qemu-nbd -r -f vpc --socket="$T/q.sock" c.vhd
refused c.vhd "$QEMU_BUSY|lock" qemu-storage-daemon \
	--blockdev "driver=file,node-name=f0,filename=c.vhd" \
	--blockdev "driver=vpc,node-name=d0,file=f0"
allowed qemu-img info -U c.vhd
# The server's own writes land and stay (what qemu-io used to destroy).
qemu-io -f raw -c 'write -P 0x66 8M 1M' "nbd+unix:///?socket=$T/one.sock" >/dev/null ||
	fail "write through vhdnbd"
stop_pid "$HOLDER"
qemu-io -f vpc -r -c 'read -P 0x66 8M 1M' c.vhd | grep -q "read 1048576" ||
	fail "data written through vhdnbd is not in c.vhd"
"$VHDTOOL" check c.vhd >/dev/null || fail "check after the server stopped"

# 2. vhdfuse mounts it read-write: the same.
fuse_hold mnt --lock-wait 0 "$T/c.vhd"
refused c.vhd "$QEMU_BUSY" qemu-io -f vpc -c 'write -P 0x55 8M 1M' c.vhd
refused c.vhd "$QEMU_BUSY" qemu-img info c.vhd
refused c.vhd "$QEMU_BUSY" qemu-nbd -f vpc --socket="$T/q.sock" c.vhd
fuse_release mnt

# 3. qemu-nbd serves it read-write: our writers and readers are refused,
#    and the message names qemu-nbd and its pid.
qemu_nbd_hold q c.vhd
QN="in use by qemu-nbd \(pid $HOLDER\), which is writing it"
refused c.vhd "$QN" "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" c.vhd
refused c.vhd "$QN" "$VHDNBD" --lock-wait 0 -r --unix "$T/two.sock" c.vhd
refused c.vhd "$QN" "$VHDFUSE" --lock-wait 0 c.vhd mnt
refused c.vhd "$QN" "$VHDFUSE" --lock-wait 0 -r c.vhd mnt
refused c.vhd "$QN" "$VHDTOOL" --lock-wait 0 resize c.vhd 512M
refused c.vhd "$QN" "$VHDTOOL" --lock-wait 0 compact c.vhd
refused c.vhd "$QN" "$VHDTOOL" --lock-wait 0 info c.vhd
refused c.vhd "$QN" "$VHDTOOL" --lock-wait 0 convert c.vhd c.raw
refused c.vhd "$QN" "$VHDTOOL" --lock-wait 0 create --parent c.vhd kid.vhd
[ ! -e c.raw ] && [ ! -e kid.vhd ] || fail "a refused command left an output"
allowed "$VHDTOOL" info -U c.vhd
grep -q "may be inconsistent" "$T/err" || fail "info -U does not say it may be inconsistent"
stop_pid "$HOLDER"

# 4. qemu-storage-daemon exports it read-write: the same.
qsd_hold qsd c.vhd rw
QS="in use by qemu-storage-daemon \(pid $HOLDER\), which is writing it"
refused c.vhd "$QS" "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" c.vhd
refused c.vhd "$QS" "$VHDTOOL" --lock-wait 0 resize c.vhd 512M
refused c.vhd "$QS" "$VHDTOOL" --lock-wait 0 check c.vhd
stop_pid "$HOLDER"

# 5. qemu-io holds it read-write (interactive): the same.
qemu_io_hold qio c.vhd
refused c.vhd "in use by qemu-io \(pid $HOLDER\), which is writing it" \
	"$VHDTOOL" --lock-wait 0 resize c.vhd 512M
qemu_io_stop

# 6. QEMU readers keep our writers out and let our readers in.
qemu_io_hold qio -r c.vhd
refused c.vhd "in use by qemu-io \(pid $HOLDER\), which is reading it" \
	"$VHDTOOL" --lock-wait 0 resize c.vhd 512M
refused c.vhd "in use by qemu-io" "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" c.vhd
allowed "$VHDTOOL" --lock-wait 0 info c.vhd
allowed "$VHDTOOL" --lock-wait 0 check c.vhd
qemu_io_stop
qemu_nbd_hold q -r c.vhd
QH=$HOLDER
vhdnbd_hold ro -r c.vhd     # two readers side by side
nbdinfo "nbd+unix:///?socket=$T/ro.sock" >/dev/null || fail "vhdnbd -r beside qemu-nbd -r"
refused c.vhd "in use by (qemu-nbd \(pid $QH\), vhdnbd \(pid $HOLDER\)|vhdnbd \(pid $HOLDER\), qemu-nbd \(pid $QH\)), which are reading it" \
	"$VHDTOOL" --lock-wait 0 resize c.vhd 512M
stop_pid "$QH"
# ... and our reader keeps QEMU's writers out but lets its readers in.
refused c.vhd "$QEMU_BUSY" qemu-img resize -f vpc c.vhd 128M
refused c.vhd "$QEMU_BUSY" qemu-io -f vpc -c 'write 0 512' c.vhd
allowed qemu-io -f vpc -r -c 'read 0 512' c.vhd
allowed qemu-img info c.vhd
stop_pid "$HOLDER"

# 7. Nobody holds it: everything works again.
allowed qemu-io -f vpc -c 'write -P 0x77 0 512' c.vhd
allowed "$VHDTOOL" --lock-wait 0 resize c.vhd 256M
echo "lock_qemu: ok"
