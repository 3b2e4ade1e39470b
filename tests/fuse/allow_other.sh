# vhdfuse -o allow_other (issue 15, item 5): other users see the disk, so
# the kernel checks their access (default_permissions) against the image
# file's own owner and mode: a user who cannot write the image cannot
# write the disk, one who cannot read it cannot read the disk.  Checked
# as the unprivileged user "nobody" through setpriv.
. "$TOP/tests/fuse/fuselib"
need setpriv util-linux
need python3 python3
[ "$(id -u)" -eq 0 ] || fail "needs root (mounts for another user)"
id nobody >/dev/null 2>&1 || fail "no user 'nobody'"

# nobody needs a way to the mount points: a world-searchable directory.
pub=$(mktemp -d /tmp/vhdfuse-ao.XXXXXX)
chmod 755 "$pub"
trap 'cleanup; rm -rf "$pub"' EXIT
"$VHDTOOL" create a.vhd 16M >/dev/null
touch "$pub/f"
mkdir "$pub/d"

# as_nobody OP PATH: OP is read or write; prints ok or the errno name.
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 - "$1" "$2" <<'PY'
import errno, os, sys
op, p = sys.argv[1], sys.argv[2]
try:
    fd = os.open(p, os.O_RDONLY if op == "read" else os.O_WRONLY)
    if op == "read":
        os.pread(fd, 512, 0)
    else:
        os.pwrite(fd, b"x" * 512, 0)
    os.close(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}
# expect MODE WHAT-READ WHAT-WRITE [vhdfuse options]: mount a.vhd (made
# MODE) on the file and on the directory, and check what nobody may do.
expect() {
	mode=$1 rd=$2 wr=$3; shift 3
	chmod "$mode" a.vhd
	for mnt in "$pub/f" "$pub/d"; do
		fmount -o allow_other "$@" a.vhd "$mnt"
		disk=$mnt; [ -d "$mnt" ] && disk=$mnt/disk
		st=$(stat -c '%a %u %g' "$disk")
		want=$(stat -c '%a %u %g' a.vhd)
		case " $* " in *" -r "*) want=$(printf '%o' $(( 0$mode & 0444 )))" ${want#* }" ;; esac
		[ "$st" = "$want" ] || fail "mode $mode $*: disk shows '$st', want '$want'"
		got=$(as_nobody read "$disk")
		[ "$got" = "$rd" ] || fail "mode $mode $*: nobody read: $got, want $rd"
		got=$(as_nobody write "$disk")
		[ "$got" = "$wr" ] || fail "mode $mode $*: nobody write: $got, want $wr"
		fusermount3 -u "$mnt"
		echo "mode $mode $* on $(basename "$mnt"): read $rd, write $wr"
	done
}
expect 644 ok EACCES
expect 600 EACCES EACCES
expect 666 ok ok
expect 666 ok EROFS -r
chown nobody a.vhd
expect 600 ok ok
chown root a.vhd
# Without allow_other nobody sees nothing at all (FUSE's own rule).
chmod 666 a.vhd
fmount a.vhd "$pub/f"
got=$(as_nobody read "$pub/f")
[ "$got" = EACCES ] || fail "without allow_other: nobody read: $got"
fusermount3 -u "$pub/f"
echo "allow_other: ok"
