# Sourced by every script test (tests/<area>/*.sh).  The runner sets
# VHDTOOL, VHDFUSE, VHDNBD, BUILD, TOP, T (scratch dir, also the cwd) and
# SHARED_FIXTURES (images made by other software; may be absent).
set -eu

fail() { echo "FAIL: $*" >&2; exit 1; }
# need COMMAND PACKAGE: a missing peer tool fails the test and says what to
# install (make check installs them when run as root).
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 not found: apt-get install $2"; }
# expect_exit CODE COMMAND...: run, demand that exact exit status.
expect_exit() {
	want=$1; shift
	set +e; "$@"; got=$?; set -e
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}
# Deterministic test data: mkdata FILE SIZE_MIB SEED (random, reproducible).
mkdata() {
	head -c $(( $2 * 1048576 )) /dev/zero | \
		openssl enc -aes-128-ctr -nosalt -pass "pass:$3" 2>/dev/null > "$1" || \
		fail "openssl missing: apt-get install openssl"
}
shared_fixtures() { [ -f "${SHARED_FIXTURES:-}/expected.tsv" ]; }
# vhdfuse_write IMAGE SRC SEEK BS: write SRC into IMAGE's disk at SEEK
# blocks of BS bytes (dd's units), through vhdfuse mounted on ./disk.  In
# the foreground, so the unmount can wait until vhdfuse has exited and
# dropped its lock: fusermount3 -u returns before that, and the next
# vhdtool would find the image "in use".  The caller needs fusermount3 and
# sets trap 'fusermount3 -u disk 2>/dev/null || true' EXIT.
vhdfuse_write() {
	: > disk
	"$VHDFUSE" -f "$1" disk 2>fuse.err &
	fpid=$!
	for _ in $(seq 200); do
		mountpoint -q disk && break
		kill -0 "$fpid" 2>/dev/null || break
		sleep 0.05
	done
	mountpoint -q disk || { cat fuse.err; fail "vhdfuse $1 failed"; }
	dd if="$2" of=disk bs="$4" seek="$3" conv=notrunc,fsync status=none
	fusermount3 -u disk
	wait "$fpid" || { cat fuse.err; fail "vhdfuse $1 exited $?"; }
}

# A command prefix that runs a program in a network namespace of its own
# (only a loopback, down): as root a plain one, since a chroot (the fresh
# machine's root) refuses user namespaces; otherwise through a user
# namespace.  Use it unquoted: $PRIVATE_NET prog args.
if [ "$(id -u)" -eq 0 ]; then PRIVATE_NET="unshare -n"; else PRIVATE_NET="unshare -rn"; fi
