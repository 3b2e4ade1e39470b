# --read-only (and -o ro) mounts refuse every kind of write with EROFS and
# leave the image byte-identical.
. "$TOP/tests/fuse/fuselib"

mkdata model.raw 3 1
truncate -s 8M model.raw
"$VHDTOOL" convert model.raw a.vhd
before=$(sha a.vhd)
touch mnt
for opt in --read-only "-o ro"; do
	# shellcheck disable=SC2086
	fmount $opt a.vhd mnt
	cmp mnt model.raw || fail "$opt: contents"
	/usr/bin/python3 - mnt <<'PY' || fail "$opt: a write was not refused with EROFS"
import errno, os, sys
p = sys.argv[1]
try:
    os.open(p, os.O_WRONLY)
    sys.exit("open for writing succeeded")
except OSError as e:
    if e.errno != errno.EROFS:
        sys.exit("open for writing: %s" % e)
fd = os.open(p, os.O_RDONLY)
for what, fn in (("punch", lambda: os.posix_fallocate(fd, 0, 4096)),
                 ("truncate", lambda: os.truncate(p, 0))):
    try:
        fn()
        sys.exit(what + " succeeded")
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EBADF):
            sys.exit("%s: %s" % (what, e))
PY
	if printf 'x' | dd of=mnt bs=1 seek=5 conv=notrunc status=none 2>err; then
		fail "$opt: dd wrote"
	fi
	grep -q "Read-only file system" err || fail "$opt: dd said: $(cat err)"
	funmount mnt
	[ "$(sha a.vhd)" = "$before" ] || fail "$opt: image changed"
done
# a read-only mount takes no write lock: two at once work
mkdir d1 d2
fmount --read-only a.vhd d1
fmount --read-only a.vhd d2
cmp d1/disk d2/disk || fail "two read-only mounts differ"
funmount d1; funmount d2
[ "$(sha a.vhd)" = "$before" ] || fail "image changed"
