# Helpers of the locking tests (tests/reliability/lock_*.sh): programs
# that hold an image in the background, and "refused" checks.  Sourced
# after tests/lib.sh.
need timeout coreutils
need qemu-io qemu-utils
need qemu-img qemu-utils
need qemu-nbd qemu-utils
need qemu-storage-daemon qemu-system-common
need nbdinfo libnbd-bin
need fusermount3 fuse3
need mountpoint util-linux
[ -x "$VHDNBD" ] || fail "vhdnbd not built: $VHDNBD"
[ -x "$VHDFUSE" ] || fail "vhdfuse not built: $VHDFUSE"

PIDS=""
MNTS=""
FIFOS=""
lock_cleanup() {
	rc=$?
	set +e
	for m in $MNTS; do mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }; done
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	exit $rc
}
trap lock_cleanup EXIT

# wait_file FILE WHAT: FILE appears (non-empty) within 10 s.
wait_file() {
	for _ in $(seq 200); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	fail "$2 did not start"
}
# stop_pid PID: SIGTERM, and it is gone within 10 s.
stop_pid() {
	kill -TERM "$1"
	for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }; sleep 0.05; done
	fail "process $1 did not stop"
}

# Each starter runs NAME in the background on IMAGE and sets HOLDER to
# its pid once it has the image open (and locked).
vhdnbd_hold() {     # NAME ARGS... (vhdnbd serving on $T/NAME.sock)
	name=$1; shift
	rm -f "$T/$name.pid" "$T/$name.sock"
	"$VHDNBD" --lock-wait 0 --pid-file "$T/$name.pid" --unix "$T/$name.sock" "$@" 2>>"$T/$name.log" &
	PIDS="$PIDS $!"
	wait_file "$T/$name.pid" "vhdnbd $*"
	HOLDER=$(cat "$T/$name.pid")
}
qemu_nbd_hold() {   # NAME ARGS... (qemu-nbd -f vpc serving on $T/NAME.sock)
	name=$1; shift
	rm -f "$T/$name.pid" "$T/$name.sock"
	qemu-nbd -f vpc --socket="$T/$name.sock" --pid-file="$T/$name.pid" "$@" 2>>"$T/$name.log" &
	PIDS="$PIDS $!"
	wait_file "$T/$name.pid" "qemu-nbd $*"
	HOLDER=$(cat "$T/$name.pid")
}
qsd_hold() {        # NAME IMAGE ro|rw (qemu-storage-daemon, NBD export)
	name=$1 img=$2 ro=off w=on
	[ "$3" = ro ] && { ro=on; w=off; }
	rm -f "$T/$name.pid" "$T/$name.sock"
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=f0,filename=$img,read-only=$ro" \
		--blockdev "driver=vpc,node-name=d0,file=f0,read-only=$ro" \
		--nbd-server "addr.type=unix,addr.path=$T/$name.sock" \
		--export "type=nbd,id=e0,node-name=d0,name=d,writable=$w" \
		--pidfile "$T/$name.pid" 2>>"$T/$name.log" &
	PIDS="$PIDS $!"
	wait_file "$T/$name.pid" "qemu-storage-daemon on $img"
	HOLDER=$(cat "$T/$name.pid")
}
fuse_hold() {       # MOUNTPOINT ARGS... (vhdfuse ARGS MOUNTPOINT, absolute paths)
	mnt=$(realpath "$1"); shift
	"$VHDFUSE" "$@" "$mnt" || fail "vhdfuse $* $mnt"
	MNTS="$MNTS $mnt"
	HOLDER=$(pgrep -n -f -x ".*vhdfuse.* $mnt") || fail "no vhdfuse daemon for $mnt"
}
# fuse_release MOUNTPOINT: unmount, and wait until the daemon ($HOLDER)
# has gone (fusermount3 -u returns before it has closed the image).
fuse_release() {
	fusermount3 -u "$1"
	for _ in $(seq 200); do kill -0 "$HOLDER" 2>/dev/null || return 0; sleep 0.05; done
	fail "vhdfuse $HOLDER did not exit after unmount"
}
qemu_io_hold() {    # NAME ARGS... (interactive qemu-io -f vpc; stop with qemu_io_stop)
	name=$1; shift
	rm -f "$T/$name.fifo"; mkfifo "$T/$name.fifo"
	qemu-io -f vpc "$@" <"$T/$name.fifo" >"$T/$name.log" 2>&1 &
	PIDS="$PIDS $!"
	HOLDER=$!
	exec 9>"$T/$name.fifo"
	# open once the file shows its lock bytes in fdinfo
	for _ in $(seq 200); do
		grep -qs OFDLCK /proc/$HOLDER/fdinfo/* && return 0
		sleep 0.05
	done
	cat "$T/$name.log" >&2
	fail "qemu-io $* did not open its image"
}
qemu_io_stop() { exec 9>&-; wait "$HOLDER" || true; }

# refused FILE PATTERN COMMAND...: fails (exit 1) with a message matching
# PATTERN (grep -E) and leaves FILE unchanged.
refused() {
	file=$1 pat=$2; shift 2
	before=$(sha256sum <"$file")
	set +e; timeout 20 "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e
	[ "$rc" -eq 1 ] || { cat "$T/err" >&2; fail "'$*' exited $rc, want 1 (refused)"; }
	grep -Eq "$pat" "$T/err" || fail "'$*': stderr does not match /$pat/: $(cat "$T/err")"
	[ "$(sha256sum <"$file")" = "$before" ] || fail "'$*' changed $file"
	echo "refused as expected: $*: $(head -1 "$T/err")"
}
# allowed COMMAND...: exits 0.
allowed() {
	set +e; timeout 20 "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e
	[ "$rc" -eq 0 ] || { cat "$T/err" >&2; fail "'$*' exited $rc, want 0"; }
	echo "allowed as expected: $*"
}
QEMU_BUSY='Failed to get (shared )?"write" lock'
