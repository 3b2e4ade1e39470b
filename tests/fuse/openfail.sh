# An image that cannot be opened never gets mounted: non-zero exit, one
# clear message naming the file, nothing in /proc/mounts.
. "$TOP/tests/fuse/fuselib"

touch mnt; mkdir dmnt
# refuse CODE PATTERN ARGS...: vhdfuse ARGS exits CODE, stderr matches
refuse() {
	code=$1 pat=$2; shift 2
	set +e; "$VHDFUSE" "$@" 2>err; got=$?; set -e
	eval "m=\${$#}"
	mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m"; fail "vhdfuse $* mounted"; }
	not_mounted "$m"
	[ "$got" -eq "$code" ] || fail "vhdfuse $*: exit $got, expected $code ($(cat err))"
	cat err
	grep -q "^vhdfuse: .*$pat" err || fail "vhdfuse $*: message: $(cat err)"
	[ "$(wc -l < err)" -le 3 ] || fail "vhdfuse $*: too chatty: $(cat err)"
}
refuse 1 "missing.vhd" missing.vhd mnt
refuse 1 "missing.vhd" missing.vhd dmnt
mkdata junk.vhd 1 3
refuse 3 "junk.vhd" junk.vhd mnt
# a damaged dynamic image: BAT entry pointing past the end of the file
"$VHDTOOL" create bad.vhd 8M
dd if=/dev/urandom of=bad.vhd bs=1 count=512 seek=512 conv=notrunc status=none
refuse 3 "bad.vhd" bad.vhd mnt
# a differencing disk whose parent is gone
"$VHDTOOL" create p.vhd 8M
"$VHDTOOL" create --parent p.vhd c.vhd
mv p.vhd gone.vhd
refuse 1 "c.vhd" c.vhd mnt
refuse 1 "nope.vhd" --parent nope.vhd c.vhd mnt
# bad mount point, bad option, usage
"$VHDTOOL" create ok.vhd 8M
refuse 1 "nowhere" ok.vhd nowhere
refuse 2 "" ok.vhd
set +e; "$VHDFUSE" -o no_such_option ok.vhd mnt 2>err; got=$?; set -e
[ "$got" -ne 0 ] || { fusermount3 -u mnt; fail "unknown -o option accepted"; }
not_mounted mnt
# a write-locked image: the second read-write mount is refused
fmount ok.vhd mnt
refuse 1 "ok.vhd" ok.vhd dmnt
funmount mnt
# --help and --version go to stdout, exit 0
"$VHDFUSE" --help | grep -q "IMAGE MOUNTPOINT" || fail "--help"
"$VHDFUSE" --version | grep -q "^vhdfuse [0-9]" || fail "--version"
