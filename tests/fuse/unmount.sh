# The daemon lets go of the image promptly: flushed writes are in the
# image while still mounted, writes into allocated blocks at once (even if
# the daemon is then killed; allocating ones are committed at a flush,
# SPEC.md 8.1), fusermount3 -u and SIGTERM both end it within a second,
# and the image's write lock goes with it.
. "$TOP/tests/fuse/fuselib"

mkdata model.raw 2 9
truncate -s 16M model.raw
"$VHDTOOL" convert model.raw a.vhd
touch mnt
fmount a.vhd mnt
mkdata w.bin 1 10
# (allocates block 1: visible to another opener after the fsync)
dd if=w.bin of=mnt bs=4096 seek=1000 conv=notrunc,fsync status=none
dd if=w.bin of=model.raw bs=4096 seek=1000 conv=notrunc status=none
# read the image file itself while mounted (-U: without a consistent
# reader's lock, which the mount's write lock keeps out)
"$VHDTOOL" convert -U a.vhd live.raw
cmp live.raw model.raw || fail "a returned write is not in the image file"
funmount mnt                     # fails unless gone within 1 s

# SIGTERM: unmounts, flushes, exits, releases the lock
fmount a.vhd mnt
pid=$(daemon_pid mnt)
kill -TERM "$pid"
for _ in 1 2 3 4 5 6 7 8 9 10; do alive "$pid" || break; sleep 0.1; done
alive "$pid" && fail "vhdfuse still running 1 s after SIGTERM"
not_mounted mnt
fmount a.vhd mnt                 # the lock was released
cmp mnt model.raw || fail "contents after SIGTERM"

# SIGKILL right after a write into an allocated block: nothing was held
# back
printf 'last words' | dd of=mnt bs=1 seek=12345 conv=notrunc status=none
printf 'last words' | dd of=model.raw bs=1 seek=12345 conv=notrunc status=none
pid=$(daemon_pid mnt)
kill -KILL "$pid"
for _ in 1 2 3 4 5 6 7 8 9 10; do alive "$pid" || break; sleep 0.1; done
fusermount3 -u mnt 2>/dev/null || umount -l mnt
not_mounted mnt
"$VHDTOOL" check a.vhd || fail "check after SIGKILL"
"$VHDTOOL" convert a.vhd after.raw
cmp after.raw model.raw || fail "a write was lost with the daemon"
# foreground mode (-f) returns when unmounted
"$VHDFUSE" -f a.vhd mnt & fpid=$!
for _ in $(seq 50); do mountpoint -q mnt && break; sleep 0.1; done
mountpoint -q mnt || fail "-f did not mount"
FUSE_MOUNTS="$FUSE_MOUNTS $(realpath mnt)"
fusermount3 -u mnt
for _ in 1 2 3 4 5 6 7 8 9 10; do alive "$fpid" || break; sleep 0.1; done
alive "$fpid" && fail "vhdfuse -f still running after unmount"
wait "$fpid" || fail "vhdfuse -f exited $?"
