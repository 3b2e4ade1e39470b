# Sourced by tests/diff/*.sh after tests/lib.sh: write into images through
# vhdfuse (our only write path from a shell) and mirror each write into a
# raw model file, the reference every reading is compared with.
need fusermount3 fuse3
need vhdimount libvhdi-utils
need qemu-img qemu-utils
need openssl openssl

FMNT="$T/fuse.disk"
FPID=

# fuse_on IMAGE: expose IMAGE (read-write, whole chain) as $FMNT.
fuse_on() {
	: >"$FMNT"
	"$VHDFUSE" -f "$1" "$FMNT" 2>"$T/fuse.err" &
	FPID=$!
	for _ in $(seq 200); do
		grep -q " $FMNT fuse" /proc/mounts && return 0
		kill -0 "$FPID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$T/fuse.err" >&2
	fail "vhdfuse did not mount '$1'"
}
# fuse_off: unmount and wait until vhdfuse has closed the image.
fuse_off() {
	fusermount3 -u "$FMNT" || fail "fusermount3 -u failed"
	wait "$FPID" || fail "vhdfuse exited with $?"
	FPID=
}
# put MODEL OFFSET LENGTH SEED: LENGTH bytes (seeded random, or zeros when
# SEED is "zero") at OFFSET into the mounted image and into MODEL.
put() {
	if [ "$4" = zero ]; then
		head -c "$3" /dev/zero >"$T/piece"
	else
		head -c "$3" /dev/zero | openssl enc -aes-128-ctr -nosalt \
			-pass "pass:$4" 2>/dev/null >"$T/piece"
	fi
	dd if="$T/piece" of="$FMNT" bs=1M oflag=seek_bytes seek="$2" \
		conv=notrunc,fsync status=none || fail "write at $2 failed"
	dd if="$T/piece" of="$1" bs=1M oflag=seek_bytes seek="$2" \
		conv=notrunc status=none
}
# same_as_model IMAGE MODEL: our own reading of the chain equals MODEL.
same_as_model() {
	rm -f "$T/flat.raw"
	"$VHDTOOL" convert --to raw "$1" "$T/flat.raw" >/dev/null ||
		fail "convert '$1' failed"
	cmp "$T/flat.raw" "$2" || fail "'$1' does not read as $2"
}
# qemu_same IMAGE MODEL: qemu-img (a dynamic or fixed VHD, no chain)
# reads IMAGE as MODEL; the disk size is the footer's current size.
qemu_same() {
	qemu-img compare -q --image-opts \
		"driver=vpc,force_size_calc=current_size,file.filename=$1" \
		"driver=raw,file.filename=$2" || fail "qemu-img: '$1' differs from $2"
}
# vhdi_same LEAF N MODEL: libvhdi's vhdimount reads level N (1 = the
# bottom image, the chain depth = LEAF itself) of LEAF's chain as MODEL.
vhdi_same() {
	mkdir -p "$T/vhdi"
	vhdimount "$1" "$T/vhdi" >"$T/vhdi.log" 2>&1 ||
		{ cat "$T/vhdi.log" >&2; fail "vhdimount '$1' failed"; }
	set +e
	cmp "$T/vhdi/vhdi$2" "$3"
	rc=$?
	set -e
	fusermount3 -u "$T/vhdi"
	[ "$rc" -eq 0 ] || fail "vhdimount: level $2 of '$1' differs from $3"
}
# sum FILE: the file's SHA-256.
sum() { sha256sum <"$1" | cut -d' ' -f1; }

# make_chain DIR: DIR/base.vhd (dynamic, 8 MiB, 512 KiB blocks) <- mid.vhd
# <- top.vhd, with writes at every level (partial sectors, whole blocks,
# across blocks, zeros over the parent's data, the last bytes), and raw
# models DIR/model.{base,mid,top}: what each level reads as.
K=1024
BS=$((512 * K))
make_chain() {
	d=$1
	mkdir -p "$d"
	head -c $((8 * K * K)) /dev/zero >"$d/model.base"
	"$VHDTOOL" create --block-size 512K "$d/base.vhd" 8M >/dev/null
	fuse_on "$d/base.vhd"
	put "$d/model.base" 0 $((64 * K)) s1
	put "$d/model.base" $((BS - 1000)) 3000 s2
	put "$d/model.base" $((3 * BS)) $BS s3
	put "$d/model.base" $((6 * BS + 7 * 512)) 1536 s4
	fuse_off
	cp "$d/model.base" "$d/model.mid"
	"$VHDTOOL" create --parent "$d/base.vhd" "$d/mid.vhd" >/dev/null
	fuse_on "$d/mid.vhd"
	put "$d/model.mid" 100 10 s5
	put "$d/model.mid" $((3 * BS + 4096)) 8192 zero
	put "$d/model.mid" $((5 * BS)) $((2 * BS)) s6
	put "$d/model.mid" $((8 * K * K - 777)) 777 s7
	fuse_off
	cp "$d/model.mid" "$d/model.top"
	"$VHDTOOL" create --parent "$d/mid.vhd" "$d/top.vhd" >/dev/null
	fuse_on "$d/top.vhd"
	put "$d/model.top" 50 100 s8
	put "$d/model.top" $((2 * BS + 511)) 2 s9
	put "$d/model.top" $((5 * BS + 123456)) 200000 s10
	put "$d/model.top" $((7 * BS)) 4096 zero
	put "$d/model.top" $((3 * BS + 100000)) 5000 s11
	fuse_off
}
