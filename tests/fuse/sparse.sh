# The mount is sparse-aware: SEEK_DATA/SEEK_HOLE follow the image's
# allocation, st_blocks counts stored bytes, punching a hole deallocates
# blocks in the image and zero-range reads back zeros.
. "$TOP/tests/fuse/fuselib"

alloc() { "$VHDTOOL" info -U --json "$1" 2>/dev/null | sed -n 's/.*"allocated_bytes": *\([0-9]*\).*/\1/p'; }
mkdata model.raw 1 4                  # data in block 0 only (2 MiB blocks)
truncate -s 32M model.raw
"$VHDTOOL" convert model.raw a.vhd
touch mnt
fmount a.vhd mnt
M=1048576
/usr/bin/python3 - mnt $M <<'PY' || fail "seek/stat before writes"
import os, sys
p, M = sys.argv[1], int(sys.argv[2])
fd = os.open(p, os.O_RDWR)
st = os.fstat(fd)
assert st.st_size == 32 * M, st.st_size
assert 0 < st.st_blocks * 512 < st.st_size, ("st_blocks", st.st_blocks)
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
assert os.lseek(fd, 0, os.SEEK_HOLE) == 2 * M, os.lseek(fd, 0, os.SEEK_HOLE)
h = os.lseek(fd, 5 * M, os.SEEK_HOLE); assert h == 5 * M, h
try:
    os.lseek(fd, 3 * M, os.SEEK_DATA); sys.exit("SEEK_DATA found data in a hole")
except OSError as e:
    assert e.errno == 6, e      # ENXIO: no data after 3 MiB
before = st.st_blocks
os.pwrite(fd, b"x", 20 * M + 100)
os.fsync(fd)    # the new block's BAT entry is committed at a flush
assert os.lseek(fd, 3 * M, os.SEEK_DATA) == 20 * M
assert os.lseek(fd, 20 * M, os.SEEK_HOLE) == 22 * M
assert os.fstat(fd).st_blocks > before, "st_blocks did not grow"
PY
printf 'x' | dd of=model.raw bs=1 seek=$((20 * M + 100)) conv=notrunc status=none
a1=$(alloc a.vhd)
[ "$a1" -eq $((4 * M)) ] || fail "allocated bytes after a write: $a1"

# punch the whole block at 20 MiB: deallocated, reads zeros, a hole again
fallocate --punch-hole -o $((20 * M)) -l $((2 * M)) mnt
dd if=/dev/zero of=model.raw bs=$M seek=20 count=2 conv=notrunc status=none
a2=$(alloc a.vhd)
[ "$a2" -lt "$a1" ] || fail "punch-hole did not free the block ($a1 -> $a2)"
/usr/bin/python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    os.lseek(fd, 3 << 20, os.SEEK_DATA); sys.exit('data after the punched block')
except OSError as e:
    assert e.errno == 6, e
" mnt || fail "SEEK_DATA after punch-hole"
# partial punch and zero-range inside block 0 read back as zeros
fallocate --punch-hole -o 1000 -l 3000 mnt
fallocate --zero-range -o 70000 -l 100000 mnt
dd if=/dev/zero of=model.raw bs=1 seek=1000 count=3000 conv=notrunc status=none
dd if=/dev/zero of=model.raw bs=1 seek=70000 count=100000 conv=notrunc status=none
cmp mnt model.raw || fail "contents after punch/zero-range"
# plain allocation (mode 0) is not supported
if fallocate -o 0 -l 4096 mnt 2>err; then fail "fallocate mode 0 succeeded"; fi
grep -q "not supported" err || fail "fallocate mode 0: $(cat err)"
funmount mnt
# Discarded blocks leave their file space unreferenced until compaction
# (libvhd never reuses it within a session); check names that space as a
# warning, which is not damage.
set +e; "$VHDTOOL" check a.vhd > chk 2>&1; rc=$?; set -e
cat chk
[ "$rc" -eq 0 ] || fail "check after discard exited $rc"
! grep -v -e "warning: .*leaked" chk | grep -qv "no problems" ||
	fail "check after discard reported more than leaked space"
"$VHDTOOL" convert a.vhd back.raw
cmp back.raw model.raw || fail "image differs from the model"
