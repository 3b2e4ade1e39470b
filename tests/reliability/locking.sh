# Locking: an image open for writing (served read-write by vhdnbd, or
# mounted by vhdfuse) cannot be opened by a second writer -- another
# vhdnbd, vhdfuse, vhdtool merge / set-parent / check --repair -- which
# fails (with --lock-wait 0: under 2 s, exit 1) naming the file and saying
# it is in use; the parents of a served child are locked against writers
# too; inspection of the served image needs -U, its parent's readers go on,
# and after the writer goes away everything works again.  (QEMU as the
# other party: lock_qemu.sh; readers: lock_readers.sh.)
. "$TOP/tests/lib.sh"
need timeout coreutils
need fusermount3 fuse3
need mountpoint util-linux
need flock util-linux
[ -x "$VHDNBD" ] || fail "vhdnbd not built: $VHDNBD"
[ -x "$VHDFUSE" ] || fail "vhdfuse not built: $VHDFUSE"

PIDS=""
MNTS=""
cleanup() {
	rc=$?
	set +e
	for m in $MNTS; do mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }; done
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	exit $rc
}
trap cleanup EXIT

# serve NAME ARGS...: vhdnbd in the background on $T/NAME.sock
serve() {
	name=$1; shift
	rm -f "$T/$name.pid"
	"$VHDNBD" --pid-file "$T/$name.pid" --unix "$T/$name.sock" "$@" 2>>"$T/$name.log" &
	PIDS="$PIDS $!"
	for _ in $(seq 100); do
		[ -s "$T/$name.pid" ] && return 0
		sleep 0.05
	done
	cat "$T/$name.log" >&2
	fail "vhdnbd $* did not start"
}
unserve() {
	p=$(cat "$T/$1.pid")
	kill -TERM "$p"
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
	fail "vhdnbd $1 did not stop"
}

# refused FILE COMMAND...: exit 1 within 2 s, one line naming FILE and
# saying "in use"; the image is unchanged.
refused() {
	file=$1; shift
	before=$(sha256sum <"$file")
	start=$(date +%s%N)
	set +e; timeout 10 "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$rc" -eq 1 ] || { cat "$T/err" >&2; fail "'$*' exited $rc, want 1 (in use)"; }
	[ "$ms" -lt 2000 ] || fail "'$*' took $ms ms to fail"
	grep -q "in use" "$T/err" || fail "'$*': no 'in use' message: $(cat "$T/err")"
	grep -q "$(basename "$file")" "$T/err" || fail "'$*': message does not name $file: $(cat "$T/err")"
	[ "$(sha256sum <"$file")" = "$before" ] || fail "'$*' changed $file"
	echo "refused as expected: $*: $(head -1 "$T/err")"
}

"$VHDTOOL" create -b 64K base.vhd 32M >/dev/null
"$VHDTOOL" create --parent base.vhd child.vhd >/dev/null
"$VHDTOOL" create --parent base.vhd child2.vhd >/dev/null
touch mnt mnt2

# 1. child served read-write
serve one child.vhd
refused child.vhd "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" child.vhd
refused child.vhd "$VHDFUSE" --lock-wait 0 child.vhd mnt
refused child.vhd "$VHDTOOL" --lock-wait 0 merge --keep child.vhd
refused child.vhd "$VHDTOOL" --lock-wait 0 set-parent child.vhd base.vhd
refused child.vhd "$VHDTOOL" --lock-wait 0 check --repair child.vhd
# ... and its parent is locked against writers
refused base.vhd "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" base.vhd
refused base.vhd "$VHDFUSE" --lock-wait 0 base.vhd mnt
refused base.vhd "$VHDTOOL" --lock-wait 0 merge --keep child2.vhd
refused base.vhd "$VHDTOOL" --lock-wait 0 check --repair base.vhd
# consistent readers of the served image are refused too (as qemu-img
# info is); -U reads it anyway; the parent is only read, so its readers
# go on
refused child.vhd "$VHDTOOL" --lock-wait 0 info child.vhd
refused child.vhd "$VHDTOOL" --lock-wait 0 check child.vhd
refused child.vhd "$VHDTOOL" --lock-wait 0 convert child.vhd c.raw
"$VHDTOOL" info -U child.vhd >/dev/null 2>&1 || fail "info -U on a served image"
"$VHDTOOL" check -U child.vhd >/dev/null 2>&1 || fail "check -U on a served image"
"$VHDTOOL" convert -U child.vhd c.raw || fail "convert -U from a served image"
"$VHDTOOL" info base.vhd >/dev/null || fail "info on a served image's parent"
serve ro --read-only base.vhd
nbdinfo "nbd+unix:///?socket=$T/ro.sock" >/dev/null || fail "read-only server on the parent"
unserve ro
# a second child of the same parent can be served (parents are shared)
serve sib child2.vhd
unserve sib
unserve one

# 2. the same after the writer is gone: everything works again
serve one child.vhd
unserve one
"$VHDTOOL" set-parent child.vhd base.vhd || fail "set-parent after the server stopped"
"$VHDTOOL" check --repair child.vhd >/dev/null || fail "check --repair after the server stopped"

# 3. mounted read-write by vhdfuse: the servers and tools are refused
"$VHDFUSE" child.vhd mnt || fail "vhdfuse child.vhd"
MNTS="$T/mnt"
refused child.vhd "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" child.vhd
refused child.vhd "$VHDFUSE" --lock-wait 0 child.vhd "$T/mnt2"
refused base.vhd "$VHDNBD" --lock-wait 0 --unix "$T/two.sock" base.vhd
refused child.vhd "$VHDTOOL" --lock-wait 0 merge --keep child.vhd
"$VHDTOOL" info -U child.vhd >/dev/null 2>&1 || fail "info -U on a mounted image"
fusermount3 -u mnt
for _ in $(seq 50); do
	"$VHDTOOL" check --repair child.vhd >/dev/null 2>&1 && break
	sleep 0.1
done
"$VHDTOOL" check --repair child.vhd >/dev/null || fail "lock not released after unmount"
"$VHDTOOL" merge child.vhd || fail "merge after unmount"
# 4. Older versions of our tools lock with flock(2) only (SPEC.md 8.4):
#    we take it too, so they and we still exclude each other.  flock(1)
#    stands in for them.
"$VHDTOOL" create old.vhd 32M >/dev/null
flock -o -x old.vhd sleep 30 &
FL=$!; PIDS="$PIDS $FL"
sleep 0.3
refused old.vhd "$VHDTOOL" --lock-wait 0 info old.vhd
grep -Eq "in use by flock \(pid $FL\), which is writing it" "$T/err" || fail "flock holder not named: $(cat "$T/err")"
refused old.vhd "$VHDNBD" --lock-wait 0 -r --unix "$T/two.sock" old.vhd
pkill -P $FL sleep; wait $FL 2>/dev/null || true
flock -o -s old.vhd sleep 30 &
FL=$!; PIDS="$PIDS $FL"
sleep 0.3
refused old.vhd "$VHDTOOL" --lock-wait 0 resize old.vhd 64M
"$VHDTOOL" --lock-wait 0 info old.vhd >/dev/null || fail "info beside an old reader"
pkill -P $FL sleep; wait $FL 2>/dev/null || true
serve one old.vhd
flock -n -s old.vhd true && fail "an old reader's flock got in beside our writer"
unserve one
serve ro -r old.vhd
flock -n -x old.vhd true && fail "an old writer's flock got in beside our reader"
flock -n -s old.vhd true || fail "an old reader's flock was kept out by our reader"
unserve ro
echo "locking: ok"
