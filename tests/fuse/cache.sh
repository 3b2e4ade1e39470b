# --cache serves through the kernel page cache: shared mmap works, and a
# write through a partition file is seen by an open, cached disk file (and
# the other way round) because the daemon invalidates the aliases.
. "$TOP/tests/fuse/fuselib"
need sfdisk fdisk

truncate -s 16M model.raw
printf 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=83\n' | sfdisk -q model.raw
"$VHDTOOL" convert model.raw a.vhd
mkdir mnt
fmount --cache a.vhd mnt
[ "$(ls mnt | tr '\n' ' ')" = "disk p1 p2 " ] || fail "files: $(ls mnt)"
/usr/bin/python3 - mnt <<'PY' || fail "page-cache coherence between disk and partitions"
import mmap, os, sys, time
d = sys.argv[1]
P1 = 2048 * 512
disk = os.open(d + "/disk", os.O_RDWR)
p1 = os.open(d + "/p1", os.O_RDWR)
assert os.pread(disk, 4096, P1) == bytes(4096)   # now cached
assert os.pread(p1, 4096, 0) == bytes(4096)
os.pwrite(p1, b"via p1", 100)
def eventually(fd, n, off, want):
    for _ in range(50):          # invalidation is asynchronous
        if os.pread(fd, n, off) == want:
            return
        time.sleep(0.02)
    sys.exit("stale: %r != %r" % (os.pread(fd, n, off), want))
eventually(disk, 6, P1 + 100, b"via p1")
os.pwrite(disk, b"via disk", P1 + 200)
eventually(p1, 8, 200, b"via disk")
# shared mmap (refused under direct I/O) writes through to the image
m = mmap.mmap(disk, 4096, offset=P1 + 4096)
m[0:5] = b"mmap!"
m.flush(); m.close()
os.fsync(disk)
eventually(p1, 5, 4096, b"mmap!")
PY
funmount mnt
"$VHDTOOL" convert a.vhd back.raw
printf 'via p1' | dd of=model.raw bs=1 seek=$((2048 * 512 + 100)) conv=notrunc status=none
printf 'via disk' | dd of=model.raw bs=1 seek=$((2048 * 512 + 200)) conv=notrunc status=none
printf 'mmap!' | dd of=model.raw bs=1 seek=$((2048 * 512 + 4096)) conv=notrunc status=none
cmp back.raw model.raw || fail "image differs from the model"
"$VHDTOOL" check a.vhd || fail "check"
