# The disk file behaves like a block device (issue 14): dd and cp onto it
# work (O_TRUNC is ignored, its size stays), ftruncate to another size is
# still refused; a directory mount's set of files is fixed (EPERM, or EROFS
# read-only; never ENOSYS); a damaged trailing footer is reported on
# stderr; messages are "vhdfuse: FILE: problem", usage errors two lines.
# qemu-img judges the image afterwards.
. "$TOP/tests/fuse/fuselib"

mkdata model.raw 8 4
"$VHDTOOL" convert model.raw a.vhd > /dev/null
mkdata new.bin 3 5
mkdir d
fmount a.vhd d
dd if=new.bin of=d/disk bs=1M status=none 2>err || fail "dd onto the disk: $(cat err)"
[ "$(stat -c %s d/disk)" -eq $((8 << 20)) ] || fail "dd changed the size: $(stat -c %s d/disk)"
dd if=new.bin of=model.raw bs=1M conv=notrunc status=none
cmp d/disk model.raw || fail "dd data"
mkdata cp.bin 1 6
cp cp.bin d/disk 2>err || fail "cp onto the disk: $(cat err)"
dd if=cp.bin of=model.raw conv=notrunc status=none
[ "$(stat -c %s d/disk)" -eq $((8 << 20)) ] || fail "cp changed the size"
cmp d/disk model.raw || fail "cp data"
# A real size change is still refused.
if truncate -s 1M d/disk 2>err; then fail "ftruncate to 1M succeeded"; fi
grep -q "Invalid argument" err || fail "truncate said: $(cat err)"
[ "$(stat -c %s d/disk)" -eq $((8 << 20)) ] || fail "truncate changed the size"
# The files are fixed: not permitted, not "not implemented".
for op in "touch d/new" "mkdir d/sub" "rm -f d/disk" "mv d/disk d/other" "ln -s disk d/link"; do
	if $op 2>err; then fail "$op succeeded"; fi
	grep -q "Operation not permitted" err || fail "$op said: $(cat err)"
done
funmount d
qraw a.vhd q.raw
cmp q.raw model.raw || fail "qemu-img reads other data"

fmount -r a.vhd d
if touch d/new 2>err; then fail "touch on a read-only mount succeeded"; fi
grep -q "Read-only file system" err || fail "read-only touch said: $(cat err)"
if dd if=new.bin of=d/disk bs=1M status=none 2>err; then fail "dd onto a read-only disk"; fi
funmount d

# A damaged trailing footer: mounted from the copy at offset 0, and said.
cp a.vhd t.vhd
printf 'XXXX' | dd of=t.vhd bs=1 seek=$(( $(stat -c %s t.vhd) - 512 )) conv=notrunc status=none
"$VHDFUSE" -r t.vhd d 2> err || fail "vhdfuse t.vhd: $(cat err)"
FUSE_MOUNTS="$FUSE_MOUNTS $(realpath d)"
grep -q "^vhdfuse: t.vhd: warning: trailing footer missing or damaged" err ||
	fail "no warning: $(cat err)"
cmp d/disk model.raw || fail "the copy's disk differs"
funmount d
"$VHDFUSE" -r a.vhd d 2> err || fail "vhdfuse a.vhd"
FUSE_MOUNTS="$FUSE_MOUNTS $(realpath d)"
[ ! -s err ] || fail "a sound image gave messages: $(cat err)"
funmount d

# One message format for the three tools; usage errors in two lines.
set +e; "$VHDFUSE" missing.vhd d 2> err; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "missing image: exit $rc"
grep -q "^vhdfuse: missing.vhd: " err || fail "format: $(cat err)"
grep -q "'missing.vhd'" err && fail "quoted name: $(cat err)"
set +e; "$VHDNBD" --unix "$PWD/s" missing.vhd 2> err; rc=$?; set -e
grep -q "^vhdnbd: missing.vhd: " err || fail "vhdnbd format: $(cat err)"
"$VHDTOOL" info missing.vhd 2> err || true
grep -q "^vhdtool: missing.vhd: " err || fail "vhdtool format: $(cat err)"
for tool in "$VHDFUSE" "$VHDNBD"; do
	name=$(basename "$tool")
	set +e; "$tool" --no-such-option a b 2> err; rc=$?; set -e
	[ "$rc" -eq 2 ] || fail "$name bad option: exit $rc"
	[ "$(wc -l < err)" -eq 2 ] || fail "$name: usage error not two lines: $(cat err)"
	grep -q "^$name: unknown option.*--no-such-option" err || fail "$name: $(cat err)"
	grep -q "^Try '$name --help'" err || fail "$name: no --help pointer: $(cat err)"
done
echo ok
