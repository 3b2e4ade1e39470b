#!/bin/sh
# bench.sh - time our tools against the public ones on images it makes.
#
#   make bench                  1 GiB image, 5 rounds (about 5 minutes)
#   BENCH_SIZE=256M make bench  a quick run
#
# Environment: BENCH_SIZE (image size, K/M/G suffix; default 1G),
# BENCH_REPS (rounds, default 5), BENCH_RUNTIME (seconds per fio run,
# default 3), BENCH_DIR (scratch parent, default /var/tmp), BUILD (where
# our programs are, default build), BENCH_RESULTS (file written, default
# bench/RESULTS.md; empty: write none), BENCH_SCALE_MAX (largest image of
# the scaling table, in allocated blocks: 1000 to 1000000, the default;
# 100000 saves most of its few minutes).
# BENCH_ONLY=nbd,... runs only the sections named (conv, nbd, fuse, merge,
# create, big, azure, vhdx, scale; "nbd" includes the 2040 GiB NBD serving)
# and then writes no RESULTS.md unless BENCH_RESULTS names one.
# BENCH_NBD_EXTRA="NAME=PATH ..." also runs other vhdnbd builds as NBD
# sides NAME (e.g. an older commit's), in the same rounds, shown for info;
# BENCH_FUSE_EXTRA="NAME=PATH ..." the same for vhdfuse (the write rows).
#
# In every round ours runs first, then theirs; each figure is the median
# of the rounds, and only the ratio ours/theirs is meant to be compared
# (the machine is shared and noisy).  Every server and mount is removed on
# exit, whatever happens.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
VHDTOOL=$BUILD/vhdtool
VHDNBD=$BUILD/vhdnbd
VHDFUSE=$BUILD/vhdfuse
PY=/usr/bin/python3
REPS=${BENCH_REPS:-5}
RT=${BENCH_RUNTIME:-3}
ONLY=${BENCH_ONLY:-}
if [ -n "$ONLY" ]; then RESULTS=${BENCH_RESULTS:-}; else RESULTS=${BENCH_RESULTS-$TOP/bench/RESULTS.md}; fi
want() { [ -z "$ONLY" ] || case ",$ONLY," in *",$1,"*) ;; *) false ;; esac; }
NBD_EXTRA=""   # side names of BENCH_NBD_EXTRA
for e in ${BENCH_NBD_EXTRA:-}; do
	case $e in
	[a-z]*=/*) [ -x "${e#*=}" ] || die "BENCH_NBD_EXTRA: ${e#*=} is not a program"
		NBD_EXTRA="$NBD_EXTRA ${e%%=*}" ;;
	*) die "BENCH_NBD_EXTRA: want NAME=/ABSOLUTE/PATH, not $e" ;;
	esac
done
FUSE_EXTRA=""  # side names of BENCH_FUSE_EXTRA
for e in ${BENCH_FUSE_EXTRA:-}; do
	case $e in
	[a-z]*=/*) [ -x "${e#*=}" ] || die "BENCH_FUSE_EXTRA: ${e#*=} is not a program"
		FUSE_EXTRA="$FUSE_EXTRA ${e%%=*}" ;;
	*) die "BENCH_FUSE_EXTRA: want NAME=/ABSOLUTE/PATH, not $e" ;;
	esac
done
fuse_prog() { # side -> its vhdfuse
	local e
	[ "$1" = ours ] && { echo "$VHDFUSE"; return; }
	for e in ${BENCH_FUSE_EXTRA:-}; do
		[ "${e%%=*}" = "$1" ] && { echo "${e#*=}"; return; }
	done
}
nbd_prog() { # side -> its vhdnbd
	local e
	[ "$1" = ours ] && { echo "$VHDNBD"; return; }
	for e in ${BENCH_NBD_EXTRA:-}; do
		[ "${e%%=*}" = "$1" ] && { echo "${e#*=}"; return; }
	done
}
BIG=$((2040 * 1024 * 1024 * 1024))

die() { echo "bench: $*" >&2; exit 1; }

to_bytes() {
	case $1 in
	*[kK]) echo $(( ${1%?} * 1024 )) ;;
	*[mM]) echo $(( ${1%?} * 1048576 )) ;;
	*[gG]) echo $(( ${1%?} * 1073741824 )) ;;
	*[!0-9]*|'') die "BENCH_SIZE: not a size: $1" ;;
	*) echo "$1" ;;
	esac
}
SIZE=$(to_bytes "${BENCH_SIZE:-1G}")
MIB=$((SIZE / 1048576))
[ "$SIZE" -ge $((64 * 1048576)) ] && [ $((SIZE % 8388608)) -eq 0 ] ||
	die "BENCH_SIZE must be a multiple of 8M, at least 64M"

# ---- tools ---------------------------------------------------------------
for p in "$VHDTOOL" "$VHDNBD" "$VHDFUSE"; do
	[ -x "$p" ] || die "$p missing: run make first"
done
if [ ! -x /usr/bin/time ]; then
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time \
			>/dev/null 2>&1 || die "apt-get install time failed"
	fi
	[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"
fi
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install $2"; }
need qemu-img qemu-utils
need qemu-nbd qemu-utils
need qemu-storage-daemon qemu-system-common
need nbdcopy libnbd-bin
need nbdinfo libnbd-bin
need nbdkit nbdkit
need fio fio
need vhdimount libvhdi-utils
need fusermount3 fuse3
[ -f /usr/lib/python3/dist-packages/nbd.py ] ||
	die "python nbd module missing: apt-get install python3-libnbd"

# ---- scratch, clean-up -----------------------------------------------------
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vhdbench.XXXXXX") || die "mktemp failed"
LOG=$W/log
S=$W/samples
mkdir -p "$S"
PIDS=""
MOUNTS=""

is_mounted() { awk -v p="$1" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; }
unmount() {
	is_mounted "$1" || return 0
	fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || umount -l "$1"
}
cleanup() {
	for m in $MOUNTS; do unmount "$m"; done
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

T0=$EPOCHREALTIME
note() { printf '%s\n' "$*" >&2; }
section() { note "bench: [$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%3.0fs", b - a }')] $*"; }

# ---- samples -----------------------------------------------------------------
# Each measurement is a line in $S/KEY.SIDE (SIDE: ours, theirs, or a peer
# name); a failed run leaves $S/KEY.SIDE.err.
add() { echo "$3" >>"$S/$1.$2"; }
fail() { echo "$3" >>"$S/$1.$2.err"; note "  FAILED ($1 $2): $3 (see log)"; }
median() {
	[ -s "$S/$1.$2" ] || { echo nan; return; }
	sort -g "$S/$1.$2" | awk '{ a[NR] = $1 }
		END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
maxof() {
	[ -s "$S/$1.$2" ] || { echo nan; return; }
	sort -g "$S/$1.$2" | tail -1
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }

# timed KEY SIDE CMD...: run CMD, record its wall time, peak RSS (KiB) and
# CPU time (user + system, s: less disturbed by other load than wall time).
timed() {
	local key=$1 side=$2 t0 t1
	shift 2
	echo "+ $*" >>"$LOG"
	t0=$EPOCHREALTIME
	if /usr/bin/time -f '%M %U %S' -o "$W/rss.out" "$@" >>"$LOG" 2>&1; then
		t1=$EPOCHREALTIME
		add "$key" "$side" "$(elapsed "$t0" "$t1")"
		add "rss-$key" "$side" "$(tail -1 "$W/rss.out" | awk '{ print $1 }')"
		add "cpu-$key" "$side" "$(tail -1 "$W/rss.out" | awk '{ print $2 + $3 }')"
		return 0
	fi
	fail "$key" "$side" "$*"
	return 1
}

# ---- servers and mounts ------------------------------------------------------
SPID=""
# settle: each server side starts from the same page cache: dirty data
# written, clean pages dropped (when run as root).  On VMs touching memory
# past a few GiB can cost ten times more (bench/scale.sh's probe), so
# without it a side that runs after others have filled the cache pays
# what the first did not: the write rows swung 0.76-1.2x from run to run.
settle() {
	sync
	[ -w /proc/sys/vm/drop_caches ] && echo 1 >/proc/sys/vm/drop_caches 2>/dev/null
	return 0
}
start_bg() {
	echo "+ $* &" >>"$LOG"
	"$@" >>"$LOG" 2>&1 &
	SPID=$!
	PIDS="$PIDS $SPID"
}
stop_bg() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
wait_nbd() {
	local i
	for i in $(seq 200); do
		nbdinfo --size "$1" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}
wait_mount() {
	local i
	for i in $(seq 200); do
		is_mounted "$1" && return 0
		sleep 0.05
	done
	return 1
}
add_mount() { MOUNTS="$MOUNTS $1"; }

TICK=$(getconf CLK_TCK)
ticks() { [ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
# fio_iops KEY SIDE RW FIO-ARGS...: one fio run, IOPS recorded; with
# CPUPID set, also that server's CPU time per request (us).
CPUPID=""
fio_iops() {
	local key=$1 side=$2 rw=$3 v c0 c1
	shift 3
	rm -f "$W/fio.json"
	echo "+ fio $*" >>"$LOG"
	c0=$(ticks "$CPUPID")
	if fio --name=bench --rw="rand$rw" --bs=4k --time_based --runtime="$RT" \
		--output-format=json --output="$W/fio.json" "$@" >>"$LOG" 2>&1 &&
		v=$($PY -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
if j["total_ios"] == 0 or j.get("error", 0): sys.exit(1)
print("%.0f" % j["iops"])' "$W/fio.json" "$rw" 2>>"$LOG") &&
		[ "$(jq_err "$W/fio.json")" = 0 ]; then
		add "$key" "$side" "$v"
		c1=$(ticks "$CPUPID")
		[ -n "$c0" ] && [ -n "$c1" ] && add "cpu-$key" "$side" "$($PY -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
print("%.2f" % ((float(sys.argv[4]) - float(sys.argv[3])) * 1e6 / int(sys.argv[5]) / j["total_ios"]))' \
			"$W/fio.json" "$rw" "$c0" "$c1" "$TICK")"
	else
		fail "$key" "$side" "fio $rw"
	fi
}
jq_err() { $PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["error"])' "$1" 2>/dev/null || echo 1; }

# ---- the image ---------------------------------------------------------------
cd "$W" || die "cd $W"
FREE=$(df -Pk . | awk 'NR == 2 { print $4 }')
[ "$FREE" -gt $((SIZE / 1024 * 6)) ] ||
	die "$W: $((FREE / 1024)) MiB free; BENCH_SIZE=$MIB MiB needs $((MIB * 6)) MiB"
note "bench: $MIB MiB image, $REPS rounds, ${RT}s per fio run, scratch $W"
section "making the images"
$PY "$TOP/bench/mkimage.py" disk.raw "$SIZE" 4194304 || die "mkimage failed"
# The shared dynamic VHD: made by qemu-img with force_size=on (creator
# qem2) so that QEMU sizes it by its current size like we do.
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on disk.raw disk.vhd ||
	die "qemu-img convert failed"
"$VHDTOOL" check disk.vhd >>"$LOG" 2>&1 || note "bench: warning: vhdtool check disk.vhd failed"
mkdir -p out
# The VHDX rows (bench/vhdx.sh); BENCH_ONLY=vhdx runs only those.
. "$TOP/bench/vhdx.sh"
if [ "${BENCH_ONLY:-}" = vhdx ]; then
	section "VHDX read (only)"
	vhdx_bench
	vhdx_brief
	exit 0
fi

# ---- 1. conversions ----------------------------------------------------------
if want conv; then
section conversions
# conv KEY SRC DST VHDTOOL-ARGS -- QEMU-IMG-ARGS: ours as it is by default
# and qemu-img as it is by default (neither syncs its output: qemu-img's
# cache=unsafe), then both synced at the end: vhdtool convert --sync and
# qemu-img convert -t writeback.
conv() {
	local key=$1 src=$2 dst=$3 a=() q=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	q=("$@")
	rm -f out/*
	timed "$key" ours "$VHDTOOL" convert "${a[@]}" "$src" "out/a.$dst"
	rm -f out/*
	timed "$key" theirs qemu-img convert "${q[@]}" "$src" "out/b.$dst"
	rm -f out/*
	timed "$key" synced qemu-img convert -t writeback "${q[@]}" "$src" "out/b.$dst"
	rm -f out/*
	timed "$key" oursync "$VHDTOOL" convert --sync "${a[@]}" "$src" "out/a.$dst"
	rm -f out/*
}
DYN="-O vpc -o subformat=dynamic,force_size=on"
FIX="-O vpc -o subformat=fixed,force_size=on"
for r in $(seq "$REPS"); do
	conv conv-raw-dyn disk.raw vhd -- -f raw $DYN
	conv conv-dyn-raw disk.vhd raw -- -f vpc -O raw
	conv conv-raw-fixed disk.raw vhd --type fixed -- -f raw $FIX
	conv conv-dyn-fixed disk.vhd vhd --type fixed -- -f vpc $FIX
	timed cp-raw cp cp --sparse=always disk.raw out/c.raw
	rm -f out/*
	timed cp-raw synced sh -c 'cp --sparse=always disk.raw out/c.raw && sync out/c.raw'
	rm -f out/*
done
# Correctness spot check: our conversion must read back as the raw data.
"$VHDTOOL" convert disk.raw out/a.vhd >>"$LOG" 2>&1 &&
	qemu-img compare -f raw -F vpc disk.raw out/a.vhd >>"$LOG" 2>&1 ||
	note "bench: warning: vhdtool convert output differs from the raw data"
rm -f out/*

fi

# ---- 2. NBD --------------------------------------------------------------------
SOCK=$W/nbd.sock
URI="nbd+unix:///?socket=$SOCK"
if want nbd; then
section "NBD (nbdcopy, fio)"
# Images for the write rows: every block allocated (the same data), and
# a fresh one; the raw peers are the raw data and a fresh sparse file.
qemu-img convert -S 0 -f raw -O vpc -o subformat=dynamic,force_size=on disk.raw full.vhd ||
	die "qemu-img convert -S 0 failed"
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on fresh.vhd "$SIZE" ||
	die "qemu-img create failed"
$PY "$TOP/bench/mkimage.py" --realign full.vhd fullal.vhd || die "mkimage.py --realign failed"
"$VHDTOOL" check fullal.vhd >>"$LOG" 2>&1 || die "vhdtool check fullal.vhd failed"
# nbd_start SIDE KIND: serve a fresh copy of KIND (half: the shared image,
# half data; full: every block allocated, QEMU's layout; fullal: the same
# 4 KiB-aligned; fresh: nothing allocated; diff: a new differencing child
# of full.vhd), synced and out of the page cache, on $SOCK; the pid in NPID, or
# return 1.  nbdkit serves the raw file of the same contents; qemu-nbd
# cannot read a differencing VHD (its vpc driver ignores the parent).
NPID=""
nbd_start() {
	local side=$1 kind=$2 img
	rm -f "$SOCK" srv.img
	NPID=""
	case $side.$kind in
	nbdkit.fresh) truncate -s "$SIZE" srv.img ;;
	nbdkit.pad) truncate -s 512 srv.img
		dd if=disk.raw of=srv.img bs=1M seek=512 oflag=seek_bytes \
			conv=notrunc status=none || return 1 ;;
	nbdkit.*) cp --sparse=always disk.raw srv.img ;;
	theirs.diff) return 1 ;;
	*.diff) "$VHDTOOL" create --parent full.vhd srv.img >>"$LOG" 2>&1 || return 1 ;;
	*) case $kind in half) img=disk.vhd ;; *) img=$kind.vhd ;; esac
		cp --sparse=always "$img" srv.img ;;
	esac
	settle
	case $side in
	theirs) start_bg qemu-nbd -f vpc -k "$SOCK" -t --shared=16 srv.img ;;
	nbdkit) case $kind in
		pad) start_bg nbdkit --foreground -U "$SOCK" --filter=offset file file=srv.img \
			offset=512 range="$SIZE" ;;
		*) start_bg nbdkit --foreground -U "$SOCK" file file=srv.img ;;
		esac ;;
	*) start_bg "$(nbd_prog "$side")" -u "$SOCK" srv.img ;;
	esac
	NPID=$SPID
	wait_nbd "$URI" && return 0
	stop_bg "$NPID"
	return 1
}
nbd_round() { # side
	local side=$1 pid t0 t1
	if ! nbd_start "$side" half; then
		fail nbd-seq "$side" "server did not start"
		return
	fi
	pid=$NPID
	echo "+ nbdcopy $URI null:" >>"$LOG"
	t0=$EPOCHREALTIME
	if nbdcopy "$URI" null: >>"$LOG" 2>&1; then
		t1=$EPOCHREALTIME
		add nbd-seq "$side" "$(awk -v m="$MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')"
	else
		fail nbd-seq "$side" "nbdcopy"
	fi
	CPUPID=$pid
	fio_iops nbd-rr "$side" read --ioengine=nbd --uri="$URI" --iodepth=16
	fio_iops nbd-rw "$side" write --ioengine=nbd --uri="$URI" --iodepth=16
	CPUPID=""
	add rss-nbd "$side" "$(hwm "$pid")"
	stop_bg "$pid"
}
# nbd_writes SIDE: 4 KiB random writes at QD1 and QD16 into an allocated
# image, a fresh one and a differencing child (each fresh server, so the
# allocations are measured), QD1 FUA writes, and nbdcopy of the raw data
# into a fresh image.
nbd_writes() {
	local side=$1 kind qd t0 t1
	if nbd_start "$side" full; then
		CPUPID=$NPID
		fio_iops nbd-w1-full "$side" write --ioengine=nbd --uri="$URI" --iodepth=1
		fio_iops nbd-w16-full "$side" write --ioengine=nbd --uri="$URI" --iodepth=16
		CPUPID=""
		echo "+ nbdwrite.py $URI fua $RT" >>"$LOG"
		t0=$($PY "$TOP/bench/nbdwrite.py" "$URI" fua "$RT" 2>>"$LOG") &&
			add nbd-fua1 "$side" "$t0" || fail nbd-fua1 "$side" "nbdwrite.py fua"
		stop_bg "$NPID"
	else
		fail nbd-w1-full "$side" "server did not start"
	fi
	# The raw data 512 bytes into its file, served from there: every
	# 4 KiB write changes two partial pages, as in seven blocks of eight
	# of QEMU's layout (blocks 2 MiB + 512 bytes apart).  What a raw-file
	# server achieves with those page reads.
	if [ "$side" = nbdkit ]; then
		if nbd_start nbdkit pad; then
			fio_iops nbd-w1-full nbdkitpad write --ioengine=nbd --uri="$URI" --iodepth=1
			fio_iops nbd-w16-full nbdkitpad write --ioengine=nbd --uri="$URI" --iodepth=16
			stop_bg "$NPID"
		else
			fail nbd-w1-full nbdkitpad "server did not start"
		fi
	fi
	# nbdkit serves the same raw file for both layouts: measured once.
	for kind in fullal fresh diff; do
		[ "$side.$kind" = nbdkit.fullal ] && continue
		for qd in 1 16; do
			if nbd_start "$side" $kind; then
				fio_iops nbd-w$qd-$kind "$side" write --ioengine=nbd --uri="$URI" \
					--iodepth=$qd
				stop_bg "$NPID"
			elif [ "$side.$kind" != theirs.diff ]; then
				fail nbd-w$qd-$kind "$side" "server did not start"
			fi
		done
	done
	if nbd_start "$side" fresh; then
		cat disk.raw >/dev/null     # the source cached, as for every side
		echo "+ nbdcopy disk.raw $URI" >>"$LOG"
		t0=$EPOCHREALTIME
		if nbdcopy disk.raw "$URI" >>"$LOG" 2>&1; then
			t1=$EPOCHREALTIME
			add nbd-wseq "$side" "$(awk -v m="$MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')"
		else
			fail nbd-wseq "$side" "nbdcopy"
		fi
		stop_bg "$NPID"
	else
		fail nbd-wseq "$side" "server did not start"
	fi
}
for r in $(seq "$REPS"); do
	for side in ours $NBD_EXTRA theirs nbdkit; do
		nbd_round $side
		nbd_writes $side
	done
done
rm -f srv.img "$SOCK" full.vhd fullal.vhd fresh.vhd
fi

# ---- 3. FUSE --------------------------------------------------------------------
if want fuse; then
section "FUSE (dd, fio)"
MNT=$W/mnt
: >"$MNT"
mkdir -p vm
# fuse_mount SIDE [IMAGE]: mount IMAGE (disk.vhd) read-only (image pages cached first).
FPID=""
fuse_mount() {
	local img=${2:-disk.vhd}
	[ "$1" = qsdraw ] && img=disk.raw
	cat "$img" >/dev/null
	case $1 in
	ours)
		start_bg "$VHDFUSE" -f -r "$img" "$MNT"
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	theirs)
		start_bg qemu-storage-daemon \
			--blockdev driver=file,node-name=f,filename=disk.vhd,read-only=on \
			--blockdev driver=vpc,node-name=d,file=f,read-only=on \
			--export type=fuse,id=e,node-name=d,mountpoint="$MNT",writable=off
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	qsdraw)
		# The raw-file peer: the same daemon exporting disk.raw itself.
		start_bg qemu-storage-daemon \
			--blockdev driver=file,node-name=f,filename=disk.raw,read-only=on \
			--export type=fuse,id=e,node-name=f,mountpoint="$MNT",writable=off
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	vhdimount)
		# vhdimount puts itself in the background.
		FPID=""; add_mount "$W/vm"; FILE=$W/vm/vhdi1
		vhdimount disk.vhd "$W/vm" >>"$LOG" 2>&1 && wait_mount "$W/vm" ;;
	esac
}
fuse_umount() {
	local m=$MNT
	[ "$1" = vhdimount ] && m=$W/vm
	unmount "$m"
	[ -n "$FPID" ] && stop_bg "$FPID"
	FPID=""
}
# fuse_seq KEY SIDE MIB: read the first MIB MiB of the mounted disk, cold.
fuse_seq() {
	local t0 t1
	if ! fuse_mount "$2"; then
		fail "$1" "$2" "mount failed"; fuse_umount "$2"; return
	fi
	echo "+ dd if=$FILE bs=1M count=$3" >>"$LOG"
	t0=$EPOCHREALTIME
	if dd if="$FILE" of=/dev/null bs=1M count="$3" 2>>"$LOG"; then
		t1=$EPOCHREALTIME
		add "$1" "$2" "$(awk -v m="$3" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')"
	else
		fail "$1" "$2" "dd"
	fi
	[ -n "$FPID" ] && add "rss-$1" "$2" "$(hwm "$FPID")"
	fuse_umount "$2"
}
fuse_rand() { # KEY SIDE [FIO-ARGS]
	local key=$1 side=$2
	shift 2
	if ! fuse_mount "$side"; then
		fail "$key" "$side" "mount failed"; fuse_umount "$side"; return
	fi
	CPUPID=$FPID
	fio_iops "$key" "$side" read --ioengine=psync --filename="$FILE" --size="$SIZE" --direct=1 "$@"
	CPUPID=""
	[ -n "$FPID" ] && add "rss-$key" "$side" "$(hwm "$FPID")"
	fuse_umount "$side"
}
for r in $(seq "$REPS"); do
	for side in ours theirs qsdraw; do
		fuse_seq fuse-seq $side "$MIB"
		fuse_rand fuse-rr $side
		fuse_rand fuse-rr4 $side --numjobs=4 --group_reporting
	done
done
# libvhdi reads a sector per system call: one round, on a prefix.
VMIB=$((MIB < 256 ? MIB : 256))
fuse_seq fuse-seq-v ours "$VMIB"
fuse_seq fuse-seq-v vhdimount "$VMIB"
fuse_rand fuse-rr-v ours
fuse_rand fuse-rr-v vhdimount

# Writes, each run on a fresh writable copy (half its blocks unallocated,
# so allocation is included): vhdfuse and qemu-storage-daemon's FUSE
# export of the VHD; qemu-storage-daemon exporting a copy of the raw file
# (a userspace FUSE server on the raw file); the same writes to a copy of
# the raw file directly (O_DIRECT, no FUSE: the limit).
fuse_wmount() { # SIDE: writable, FILE set; its copy synced and uncached
	rm -f srv.vhd srv.raw
	case $1 in
	qsdraw|raw) cp --sparse=always disk.raw srv.raw ;;
	*) cp --sparse=always disk.vhd srv.vhd ;;
	esac
	settle
	case $1 in
	ours)
		start_bg "$VHDFUSE" -f srv.vhd "$MNT"
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	theirs)
		start_bg qemu-storage-daemon \
			--blockdev driver=file,node-name=f,filename=srv.vhd \
			--blockdev driver=vpc,node-name=d,file=f \
			--export type=fuse,id=e,node-name=d,mountpoint="$MNT",writable=on
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	qsdraw)
		start_bg qemu-storage-daemon \
			--blockdev driver=file,node-name=f,filename=srv.raw \
			--export type=fuse,id=e,node-name=f,mountpoint="$MNT",writable=on
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	raw)
		FPID=""; FILE=$W/srv.raw ;;
	*)	# a BENCH_FUSE_EXTRA build
		start_bg "$(fuse_prog "$1")" -f srv.vhd "$MNT"
		FPID=$SPID; add_mount "$MNT"; FILE=$MNT
		wait_mount "$MNT" ;;
	esac
}
fuse_wumount() {
	[ "$1" = raw ] || unmount "$MNT"
	[ -n "$FPID" ] && stop_bg "$FPID"
	FPID=""
	rm -f srv.vhd srv.raw
}
# fuse_wrand KEY SIDE [FIO-ARGS]: 4 KiB random writes, O_DIRECT.
fuse_wrand() {
	local key=$1 side=$2
	shift 2
	if ! fuse_wmount "$side"; then
		fail "$key" "$side" "mount failed"; fuse_wumount "$side"; return
	fi
	CPUPID=$FPID
	fio_iops "$key" "$side" write --ioengine=psync --filename="$FILE" --size="$SIZE" --direct=1 "$@"
	CPUPID=""
	fuse_wumount "$side"
}
# fuse_wseq SIDE: the whole disk written in 1 MiB O_DIRECT writes from
# disk.raw (cached), then fsync: the data is on the disk when it ends.
fuse_wseq() {
	local side=$1 t0 t1
	if ! fuse_wmount "$side"; then
		fail fuse-sw "$side" "mount failed"; fuse_wumount "$side"; return
	fi
	cat disk.raw >/dev/null
	echo "+ dd if=disk.raw of=$FILE bs=1M oflag=direct conv=notrunc,fsync" >>"$LOG"
	t0=$EPOCHREALTIME
	if dd if=disk.raw of="$FILE" bs=1M oflag=direct conv=notrunc,fsync 2>>"$LOG"; then
		t1=$EPOCHREALTIME
		add fuse-sw "$side" "$(awk -v m="$MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')"
	else
		fail fuse-sw "$side" "dd"
	fi
	[ -n "$FPID" ] && add rss-fuse-sw "$side" "$(hwm "$FPID")"
	fuse_wumount "$side"
}
for r in $(seq "$REPS"); do
	for side in ours $FUSE_EXTRA theirs qsdraw raw; do
		fuse_wrand fuse-rw $side
		fuse_wrand fuse-rw4 $side --numjobs=4 --group_reporting
		fuse_wseq $side
	done
done
fi

# ---- 4. merge --------------------------------------------------------------------
if want merge; then
section merge
mkdir -p m
cp --sparse=always disk.vhd m/parent.vhd
(cd m && "$VHDTOOL" create --parent parent.vhd child.vhd >>"$LOG" 2>&1) ||
	fail merge ours "create --parent"
MSOCK=$W/m.sock
start_bg "$VHDNBD" -u "$MSOCK" m/child.vhd
MPID=$SPID
MERGED=0
cp --sparse=always disk.raw m/expect.raw
if wait_nbd "nbd+unix:///?socket=$MSOCK"; then
	# Every 4th 2 MiB block of the child; the same bytes into a raw file.
	MERGED=$($PY "$TOP/bench/nbdwrite.py" "nbd+unix:///?socket=$MSOCK" stride 2097152 4 \
		m/quarter.raw +m/expect.raw 2>>"$LOG") || fail merge ours "writing the child"
fi
stop_bg "$MPID"
# Theirs: qemu-img cannot merge a VHD child, so the same merge is done on
# qcow2, where it can: a base holding the parent's data and an overlay
# holding the child's blocks, folded with `qemu-img commit` (which, like
# vhdtool merge, makes the result durable).  A plain `qemu-img convert` of
# the child's data (no sync) is kept as a second reference.
qemu-img convert -f vpc -O qcow2 m/parent.vhd m/base.master.qcow2 >>"$LOG" 2>&1 ||
	fail merge theirs "making base.qcow2"
qemu-img convert -f raw -O qcow2 -B base.master.qcow2 -F qcow2 m/expect.raw \
	m/top.master.qcow2 >>"$LOG" 2>&1 || fail merge theirs "making top.qcow2"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on m/quarter.raw m/quarter.vhd \
	>>"$LOG" 2>&1 || fail merge theirs "making quarter.vhd"
rm -f m/quarter.raw
mv m/parent.vhd m/parent.master
mv m/child.vhd m/child.master
touch -r m/parent.master m/stamp
for r in $(seq "$REPS"); do
	cp --sparse=always --preserve=timestamps m/parent.master m/parent.vhd
	cp --sparse=always --preserve=timestamps m/child.master m/child.vhd
	(cd m && timed merge ours "$VHDTOOL" merge child.vhd)
	cp --sparse=always m/base.master.qcow2 m/base.qcow2
	cp --sparse=always m/top.master.qcow2 m/top.qcow2
	(cd m && qemu-img rebase -u -f qcow2 -b base.qcow2 -F qcow2 top.qcow2) >>"$LOG" 2>&1 ||
		fail merge theirs "rebase top.qcow2"
	timed merge theirs qemu-img commit -q -f qcow2 m/top.qcow2
	rm -f m/out.vhd
	timed merge convert qemu-img convert -f vpc -O vpc -o subformat=dynamic,force_size=on \
		m/quarter.vhd m/out.vhd
	rm -f m/out.vhd
done
qemu-img compare -f raw -F qcow2 m/expect.raw m/base.qcow2 >>"$LOG" 2>&1 ||
	fail merge theirs "committed base differs from the expected data"
rm -f m/base.qcow2 m/top.qcow2 m/base.master.qcow2 m/top.master.qcow2
# The merge result must read back like the parent overlaid with the data.
qemu-img compare -f raw -F vpc m/expect.raw m/parent.vhd >>"$LOG" 2>&1 ||
	fail merge ours "merged parent differs from the expected data"
rm -f m/parent.vhd m/child.vhd m/expect.raw

fi

# ---- 5. create 2040 GiB ----------------------------------------------------------
if want create; then
section "create 2040 GiB"
for r in $(seq $((REPS + 2))); do
	rm -f out/*
	timed create ours "$VHDTOOL" create out/a.vhd 2040G
	rm -f out/*
	timed create theirs qemu-img create -f vpc -o subformat=dynamic,force_size=on out/b.vhd 2040G
done
rm -f out/*

fi

# ---- 6. 2040 GiB sparse: memory --------------------------------------------------
if want nbd || want big; then
section "2040 GiB sparse image"
"$VHDTOOL" create big.vhd 2040G >>"$LOG" 2>&1 || fail big ours create
start_bg "$VHDNBD" -u "$SOCK" big.vhd
BPID=$SPID
wait_nbd "$URI" && $PY "$TOP/bench/nbdwrite.py" "$URI" at 4194304 0 1099511627776 -4194304 \
	>>"$LOG" 2>&1 || fail big ours "writing data"
stop_bg "$BPID"
for r in $(seq "$REPS"); do
	for side in ours $NBD_EXTRA theirs; do
		rm -f "$SOCK"
		if [ $side != theirs ]; then
			start_bg "$(nbd_prog $side)" -r -u "$SOCK" big.vhd
		else
			start_bg qemu-nbd -r -f vpc -k "$SOCK" -t --shared=16 big.vhd
		fi
		BPID=$SPID
		if wait_nbd "$URI"; then
			nbdcopy "$URI" null: >>"$LOG" 2>&1 || fail big-serve $side nbdcopy
			CPUPID=$BPID
			fio_iops big-rr $side read --ioengine=nbd --uri="$URI" --iodepth=16
			# Two connections (a multi-conn client, as nbdcopy and
			# QEMU are): fio then no longer saturates a core alone.
			fio_iops big-rr2 $side read --ioengine=nbd --uri="$URI" --iodepth=16 \
				--numjobs=2 --group_reporting
			CPUPID=""
			add rss-big-serve $side "$(hwm "$BPID")"
		else
			fail big-rr $side "server did not start"
		fi
		stop_bg "$BPID"
	done
done
rm -f "$SOCK"
fi
if want big && want fuse; then
if fuse_mount ours big.vhd; then
	fio_iops big-fuse ours read --ioengine=psync --filename="$FILE" --size="$BIG" --direct=1 \
		--runtime=2
	add rss-big-fuse ours "$(hwm "$FPID")"
fi
fuse_umount ours
fi
rm -f out/*
if want big; then
"$VHDTOOL" convert big.vhd big.raw >>"$LOG" 2>&1 || fail big ours "convert to big.raw"
for r in $(seq "$REPS"); do
	timed big-dyn-raw ours "$VHDTOOL" convert big.vhd out/a.raw; rm -f out/*
	timed big-dyn-raw theirs qemu-img convert -f vpc -O raw big.vhd out/b.raw; rm -f out/*
	timed big-dyn-dyn ours "$VHDTOOL" convert big.vhd out/a.vhd; rm -f out/*
	timed big-dyn-dyn theirs qemu-img convert -f vpc -O vpc -o subformat=dynamic,force_size=on \
		big.vhd out/b.vhd; rm -f out/*
	timed big-raw-dyn ours "$VHDTOOL" convert big.raw out/a.vhd; rm -f out/*
	timed big-raw-dyn theirs qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on \
		big.raw out/b.vhd; rm -f out/*
done
fi
rm -f big.raw big.vhd

# ---- VHDX read (bench/vhdx.sh) ---------------------------------------------------
if want vhdx; then
section "VHDX read"
vhdx_bench
fi

# ---- 7. Azure upload ----------------------------------------------------------------
if want azure; then
section "Azure upload (Azurite)"
AZ_SAMPLES=$S BENCH_DIR=$W BUILD=$BUILD BENCH_SIZE=$SIZE BENCH_REPS=$REPS \
	bash "$TOP/bench/azure.sh" >>"$LOG" 2>&1 || fail az-up-sparse ours "bench/azure.sh"

fi

if want scale; then
# ---- 8. scaling ------------------------------------------------------------------
# Costs against the number of allocated blocks, 10^3 to BENCH_SCALE_MAX
# (default 10^6: 4 GiB of 4 KiB blocks, a few minutes): bench/scale.sh.
section "scaling (10^3 to ${BENCH_SCALE_MAX:-1000000} blocks)"
BUILD=$BUILD BENCH_DIR=$W SCALE_OUT=$W/scale SCALE_REPS=$(( REPS < 3 ? REPS : 3 )) \
	bash "$TOP/bench/scale.sh" 2>>"$LOG" || fail scale ours "bench/scale.sh"
fi

# ---- report ------------------------------------------------------------------------
: "${MERGED:=0}" "${VMIB:=0}"
MERGED_MIB=$((MERGED / 1048576))
for side in ours theirs; do
	[ -s "$S/merge.$side" ] || continue
	awk -v m="$MERGED_MIB" '{ printf "%.1f\n", m / $1 }' "$S/merge.$side" >"$S/merge-rate.$side"
done
ROWS=$W/rows
: >"$ROWS"
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "nan" || v == "") print "-"; else printf "%." d "f", v }'; }
# row METRIC UNIT KIND OURS THEIRS LIMIT [SCALE]
#   OURS, THEIRS: KEY.SIDE of the samples ("-": none).  KIND time: ratio
#   ours/theirs must be <= LIMIT; rate: ratio >= LIMIT; rss: the larger
#   ours sample / SCALE < LIMIT; info: shown, no target.
row() {
	local metric=$1 unit=$2 kind=$3 oref=$4 tref=$5 lim=$6 scale=${7:-1}
	local o t ratio target verdict pick=median d=2
	case $kind in rss*) pick=maxof ;; esac
	o=$($pick "${oref%.*}" "${oref##*.}")
	t=$($pick "${tref%.*}" "${tref##*.}")
	[ -e "$S/$oref.err" ] && o=nan
	[ -e "$S/$tref.err" ] && t=nan
	# A partial run (BENCH_ONLY) leaves out the rows of sections not run.
	[ -n "$ONLY" ] && [ "$o" = nan ] && [ "$t" = nan ] && [ ! -e "$S/$oref.err" ] &&
		[ ! -e "$S/$tref.err" ] && return 0
	o=$(awk -v v="$o" -v s="$scale" 'BEGIN { if (v == "nan") print v; else print v / s }')
	t=$(awk -v v="$t" -v s="$scale" 'BEGIN { if (v == "nan") print v; else print v / s }')
	ratio=$(awk -v a="$o" -v b="$t" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "-"; else printf "%.2f", a / b }')
	case $kind in
	time) target="<= $lim"     # also CPU time per request
		verdict=$(awk -v r="$ratio" -v l="$lim" 'BEGIN { print (r != "-" && r + 0 <= l + 0) ? "PASS" : "MISS" }') ;;
	rate) target=">= $lim"
		verdict=$(awk -v r="$ratio" -v l="$lim" 'BEGIN { print (r != "-" && r + 0 >= l + 0) ? "PASS" : "MISS" }') ;;
	rss) target="< $lim MiB"
		verdict=$(awk -v o="$o" -v l="$lim" 'BEGIN { print (o != "nan" && o + 0 < l + 0) ? "PASS" : "MISS" }') ;;
	*) target="-"; verdict="info" ;;
	esac
	[ "$o" = nan ] && [ "$verdict" != info ] && verdict=MISS
	case $unit in IOPS|MiB/s) d=0 ;; MiB|us) d=1 ;; esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$metric" "$unit" "$(fmt "$o" $d)" "$(fmt "$t" $d)" \
		"$ratio" "$target" "$verdict" >>"$ROWS"
}
M="$MIB MiB"
row "convert raw->dynamic VHD ($M), vs qemu-img convert" s time conv-raw-dyn.ours conv-raw-dyn.theirs 1.0
row "  same, both synced: convert --sync vs qemu-img convert -t writeback" s time conv-raw-dyn.oursync conv-raw-dyn.synced 1.0
row "convert dynamic VHD->raw, vs qemu-img convert" s time conv-dyn-raw.ours conv-dyn-raw.theirs 1.0
row "  same, both synced: --sync vs -t writeback" s time conv-dyn-raw.oursync conv-dyn-raw.synced 1.0
row "convert raw->fixed VHD, vs qemu-img convert" s time conv-raw-fixed.ours conv-raw-fixed.theirs 1.0
row "  same, both synced: --sync vs -t writeback" s time conv-raw-fixed.oursync conv-raw-fixed.synced 1.0
row "convert dynamic->fixed VHD, vs qemu-img convert" s time conv-dyn-fixed.ours conv-dyn-fixed.theirs 1.0
row "  same, both synced: --sync vs -t writeback" s time conv-dyn-fixed.oursync conv-dyn-fixed.synced 1.0
row "CPU (user+sys) convert raw->dynamic, vs qemu-img convert" s info cpu-conv-raw-dyn.ours cpu-conv-raw-dyn.theirs -
row "CPU (user+sys) convert dynamic->raw, vs qemu-img convert" s info cpu-conv-dyn-raw.ours cpu-conv-dyn-raw.theirs -
row "CPU (user+sys) convert raw->fixed, vs qemu-img convert" s info cpu-conv-raw-fixed.ours cpu-conv-raw-fixed.theirs -
row "CPU (user+sys) convert dynamic->fixed, vs qemu-img convert" s info cpu-conv-dyn-fixed.ours cpu-conv-dyn-fixed.theirs -
row "convert raw->dynamic VHD, vs cp --sparse=always" s time conv-raw-dyn.ours cp-raw.cp 1.0
row "  same, both synced: --sync vs cp --sparse=always + sync FILE" s time conv-raw-dyn.oursync cp-raw.synced 1.0
row "convert dynamic VHD->raw, vs cp --sparse=always" s time conv-dyn-raw.ours cp-raw.cp 1.0
row "  same, both synced: --sync vs cp --sparse=always + sync FILE" s time conv-dyn-raw.oursync cp-raw.synced 1.0
row "NBD seq read (nbdcopy), vhdnbd vs qemu-nbd -f vpc" MiB/s rate nbd-seq.ours nbd-seq.theirs 1.0
row "NBD seq read (nbdcopy), vs nbdkit file (raw)" MiB/s rate nbd-seq.ours nbd-seq.nbdkit 0.9
row "NBD 4K rand read QD16 (fio), vs qemu-nbd" IOPS rate nbd-rr.ours nbd-rr.theirs 1.0
row "NBD 4K rand read QD16 (fio), vs nbdkit file (raw)" IOPS rate nbd-rr.ours nbd-rr.nbdkit 0.9
row "NBD 4K rand write QD16 (fio), vs qemu-nbd" IOPS rate nbd-rw.ours nbd-rw.theirs 1.0
row "NBD 4K rand write QD16 (fio), vs nbdkit file (raw)" IOPS rate nbd-rw.ours nbd-rw.nbdkit 0.9
for k in full:"allocated dynamic, QEMU's layout" fullal:"allocated dynamic, 4 KiB-aligned layout" \
	fresh:"fresh dynamic (allocating)" diff:"differencing child (allocating)"; do
	n=${k%%:*}      # nbdkit ran once for both layouts: fullal's peer is full's
	for qd in 1 16; do
		row "NBD 4K rand write QD$qd, ${k#*:}, vs nbdkit file (raw)" IOPS rate \
			nbd-w$qd-$n.ours nbd-w$qd-${n%al}.nbdkit 0.9
	done
done
for qd in 1 16; do
	row "  QD$qd, QEMU's layout, vs nbdkit file, raw data 512 bytes into the file (two partial pages per write)" \
		IOPS rate nbd-w$qd-full.ours nbd-w$qd-full.nbdkitpad 0.9
done
row "NBD 4K rand write QD16, allocated dynamic, vs qemu-nbd" IOPS info nbd-w16-full.ours nbd-w16-full.theirs -
row "NBD 4K rand write QD16, fresh dynamic, vs qemu-nbd" IOPS info nbd-w16-fresh.ours nbd-w16-fresh.theirs -
row "NBD seq write (nbdcopy into a fresh image), vs nbdkit file (raw)" MiB/s rate nbd-wseq.ours nbd-wseq.nbdkit 0.9
row "NBD seq write (nbdcopy into a fresh image), vs qemu-nbd" MiB/s info nbd-wseq.ours nbd-wseq.theirs -
row "NBD 4K FUA write QD1, allocated dynamic, vs nbdkit file (FUA, raw)" IOPS rate nbd-fua1.ours nbd-fua1.nbdkit 0.9
row "NBD 4K FUA write QD1, allocated dynamic, vs qemu-nbd" IOPS info nbd-fua1.ours nbd-fua1.theirs -
for x in $NBD_EXTRA; do
	for k in nbd-seq:"seq read (nbdcopy)":MiB/s nbd-rr:"4K rand read QD16":IOPS \
		nbd-rw:"4K rand write QD16":IOPS nbd-w1-full:"4K rand write QD1, allocated":IOPS \
		nbd-w16-full:"4K rand write QD16, allocated":IOPS nbd-w1-fullal:"4K rand write QD1, allocated aligned":IOPS \
		nbd-w16-fullal:"4K rand write QD16, allocated aligned":IOPS nbd-w1-fresh:"4K rand write QD1, fresh":IOPS \
		nbd-w16-fresh:"4K rand write QD16, fresh":IOPS nbd-w1-diff:"4K rand write QD1, diff child":IOPS \
		nbd-w16-diff:"4K rand write QD16, diff child":IOPS \
		nbd-wseq:"seq write (nbdcopy)":MiB/s nbd-fua1:"4K FUA write QD1":IOPS \
		big-rr2:"2040 GiB 4K rand read, 2 connections":IOPS; do
		set -- "${k%%:*}" "$(echo "$k" | cut -d: -f2)" "${k##*:}"
		row "[$x] NBD $2: vhdnbd vs $x" "$3" info "$1.ours" "$1.$x" -
		row "[$x] NBD $2: $x vs nbdkit file (raw)" "$3" info "$1.$x" "$1.nbdkit" -
		row "[$x] NBD $2: $x vs qemu-nbd" "$3" info "$1.$x" "$1.theirs" -
	done
done
row "server CPU per NBD 4K rand read, vs qemu-nbd" us info cpu-nbd-rr.ours cpu-nbd-rr.theirs -
row "server CPU per NBD 4K rand read, vs nbdkit" us info cpu-nbd-rr.ours cpu-nbd-rr.nbdkit -
row "server CPU per NBD 4K rand write, vs qemu-nbd" us info cpu-nbd-rw.ours cpu-nbd-rw.theirs -
row "FUSE seq read, cold ($M), vhdfuse vs qemu-storage-daemon" MiB/s rate fuse-seq.ours fuse-seq.theirs 1.0
row "  same, vs qemu-storage-daemon FUSE export of the raw file" MiB/s rate fuse-seq.ours fuse-seq.qsdraw 0.9
row "FUSE seq read, first $VMIB MiB, 1 run, vs vhdimount" MiB/s rate fuse-seq-v.ours fuse-seq-v.vhdimount 1.0
row "FUSE 4K rand read (fio psync O_DIRECT), vs qemu-storage-daemon" IOPS rate fuse-rr.ours fuse-rr.theirs 1.0
row "  same, vs qemu-storage-daemon FUSE export of the raw file" IOPS rate fuse-rr.ours fuse-rr.qsdraw 0.9
row "FUSE 4K rand read, 4 fio jobs, vs qemu-storage-daemon" IOPS rate fuse-rr4.ours fuse-rr4.theirs 1.0
row "  same, vs qemu-storage-daemon FUSE export of the raw file" IOPS rate fuse-rr4.ours fuse-rr4.qsdraw 0.9
row "FUSE 4K rand write (fio psync O_DIRECT), vs qemu-storage-daemon" IOPS rate fuse-rw.ours fuse-rw.theirs 1.0
row "  same, vs qemu-storage-daemon FUSE export of the raw file" IOPS rate fuse-rw.ours fuse-rw.qsdraw 0.9
row "  same, vs the raw file directly (O_DIRECT, no FUSE)" IOPS rate fuse-rw.ours fuse-rw.raw 0.8
row "FUSE 4K rand write, 4 fio jobs, vs qemu-storage-daemon" IOPS rate fuse-rw4.ours fuse-rw4.theirs 1.0
row "  same, vs qemu-storage-daemon FUSE export of the raw file" IOPS rate fuse-rw4.ours fuse-rw4.qsdraw 0.9
row "  same, vs the raw file directly (O_DIRECT, no FUSE)" IOPS rate fuse-rw4.ours fuse-rw4.raw 0.8
row "FUSE seq write ($M, dd bs=1M O_DIRECT + fsync), vs qemu-storage-daemon" MiB/s rate fuse-sw.ours fuse-sw.theirs 1.0
row "  same, vs qemu-storage-daemon FUSE export of the raw file" MiB/s rate fuse-sw.ours fuse-sw.qsdraw 0.9
row "  same, vs the raw file directly (O_DIRECT, no FUSE)" MiB/s rate fuse-sw.ours fuse-sw.raw 0.8
for x in $FUSE_EXTRA; do
	for k in fuse-rw:"4K rand write":IOPS fuse-rw4:"4K rand write, 4 jobs":IOPS \
		fuse-sw:"seq write":MiB/s; do
		set -- "${k%%:*}" "$(echo "$k" | cut -d: -f2)" "${k##*:}"
		row "[$x] FUSE $2: vhdfuse vs $x" "$3" info "$1.ours" "$1.$x" -
		row "[$x] FUSE $2: $x vs qemu-storage-daemon (raw)" "$3" info "$1.$x" "$1.qsdraw" -
		row "[$x] FUSE $2: $x vs the raw file" "$3" info "$1.$x" "$1.raw" -
	done
done
row "daemon CPU per FUSE 4K rand write (1 job), vs qemu-storage-daemon" us info cpu-fuse-rw.ours cpu-fuse-rw.theirs -
row "daemon CPU per FUSE 4K rand read (1 job), vs qemu-storage-daemon" us info cpu-fuse-rr.ours cpu-fuse-rr.theirs -
row "FUSE 4K rand read (fio psync O_DIRECT), 1 run, vs vhdimount" IOPS rate fuse-rr-v.ours fuse-rr-v.vhdimount 1.0
row "merge child with 25% of blocks ($MERGED_MIB MiB), vs qemu-img commit (qcow2)" s time merge.ours merge.theirs 1.0
row "  same, vs qemu-img convert of that data (no sync)" s info merge.ours merge.convert -
row "CPU (user+sys) merge, vs qemu-img commit" s info cpu-merge.ours cpu-merge.theirs -
row "merge throughput (data / time), vs qemu-img commit" MiB/s rate merge-rate.ours merge-rate.theirs 1.0
row "upload dynamic VHD, 25% data ($M), to Azurite, vs --no-sparse (every page)" s time az-up-sparse.ours az-up-dense.ours 0.35
row "upload to Azurite, 8 connections vs 1" s time az-up-sparse.ours az-up-c1.ours 0.99
row "create 2040 GiB dynamic, vs qemu-img create" s time create.ours create.theirs 1.0
row "2040 GiB sparse: convert dynamic->raw, vs qemu-img" s time big-dyn-raw.ours big-dyn-raw.theirs 1.0
row "2040 GiB sparse: convert dynamic->dynamic, vs qemu-img" s time big-dyn-dyn.ours big-dyn-dyn.theirs 1.0
row "2040 GiB sparse: convert raw->dynamic, vs qemu-img" s time big-raw-dyn.ours big-raw-dyn.theirs 1.0
row "2040 GiB sparse: NBD 4K rand read QD16, 1 connection (fio-bound), vs qemu-nbd" IOPS info big-rr.ours big-rr.theirs -
row "2040 GiB sparse: server CPU per 4K hole read, 1 connection, vs qemu-nbd" us time cpu-big-rr.ours cpu-big-rr.theirs 1.0
row "2040 GiB sparse: NBD 4K rand read QD16, 2 connections, vs qemu-nbd" IOPS rate big-rr2.ours big-rr2.theirs 1.0
row "peak RSS: vhdnbd serving 2040 GiB sparse (qemu-nbd)" MiB rss rss-big-serve.ours rss-big-serve.theirs 64 1024
vhdx_rows
row "peak RSS: vhdfuse serving 2040 GiB sparse" MiB rss rss-big-fuse.ours - 64 1024
row "peak RSS: convert 2040 GiB dynamic->raw (qemu-img)" MiB rss rss-big-dyn-raw.ours rss-big-dyn-raw.theirs 64 1024
row "peak RSS: convert 2040 GiB dynamic->dynamic (qemu-img)" MiB rss rss-big-dyn-dyn.ours rss-big-dyn-dyn.theirs 64 1024
row "peak RSS: convert 2040 GiB sparse raw->dynamic (qemu-img)" MiB rss rss-big-raw-dyn.ours rss-big-raw-dyn.theirs 64 1024
row "peak RSS: convert raw->dynamic (qemu-img)" MiB rssinfo rss-conv-raw-dyn.ours rss-conv-raw-dyn.theirs - 1024
row "peak RSS: convert dynamic->raw (qemu-img)" MiB rssinfo rss-conv-dyn-raw.ours rss-conv-dyn-raw.theirs - 1024
row "peak RSS: convert raw->fixed (qemu-img)" MiB rssinfo rss-conv-raw-fixed.ours rss-conv-raw-fixed.theirs - 1024
row "peak RSS: merge (qemu-img commit)" MiB rssinfo rss-merge.ours rss-merge.theirs - 1024
row "peak RSS: create 2040 GiB (qemu-img create)" MiB rssinfo rss-create.ours rss-create.theirs - 1024
row "peak RSS: vhdnbd after nbdcopy+fio (qemu-nbd)" MiB rssinfo rss-nbd.ours rss-nbd.theirs - 1024
row "peak RSS: vhdfuse after seq read (qemu-storage-daemon)" MiB rssinfo rss-fuse-seq.ours rss-fuse-seq.theirs - 1024

[ -s "$W/scale.rows" ] && cat "$W/scale.rows" >>"$ROWS"

# The table on standard output.
echo
printf '%-72s %-5s %9s %9s %6s %10s %s\n' metric unit ours theirs ratio target result
awk -F'\t' '{ printf "%-72s %-5s %9s %9s %6s %10s %s\n", $1, $2, $3, $4, $5, $6, $7 }' "$ROWS"
NPASS=$(awk -F'\t' '$7 == "PASS"' "$ROWS" | wc -l)
NMISS=$(awk -F'\t' '$7 == "MISS"' "$ROWS" | wc -l)
echo "bench: $NPASS PASS, $NMISS MISS (ratio = ours/theirs; medians of $REPS rounds)"
FAILED=$(cd "$S" && ls ./*.err 2>/dev/null | sed 's|^\./||; s|\.err$||' | tr '\n' ' ')
[ -n "$FAILED" ] && echo "bench: runs that failed: $FAILED"
if [ -s "$W/scale.md" ]; then
	echo
	echo "scaling (time / peak RSS per operation and allocated blocks):"
	cat "$W/scale.md"
fi

# RESULTS.md
if [ -n "$RESULTS" ]; then
	{
	echo "# Benchmark results"
	echo
	echo "Written by \`bench/bench.sh\` (\`make bench\`); do not edit by hand."
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- command: \`${ONLY:+BENCH_ONLY=$ONLY }${BENCH_NBD_EXTRA:+BENCH_NBD_EXTRA='$BENCH_NBD_EXTRA' }${BENCH_FUSE_EXTRA:+BENCH_FUSE_EXTRA='$BENCH_FUSE_EXTRA' }BENCH_SIZE=${BENCH_SIZE:-1G} BENCH_REPS=$REPS BENCH_RUNTIME=$RT make bench\`"
	echo "- commit: $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$TOP" diff --quiet HEAD -- libvhd vhdtool vhdfuse nbd 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "- machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); shared with other work, so only ratios mean much"
	echo "- peers: $(qemu-img --version | head -1 | sed 's/ Copyright.*//'), nbdkit $(nbdkit --version | awk '{ print $2 }'), $(fio --version), $(vhdimount -V 2>&1 | head -1)"
	echo "- result: $NPASS PASS, $NMISS MISS${FAILED:+; failed runs: $FAILED}"
	echo
	echo "Ratio is ours/theirs (median of $REPS rounds, ours and theirs alternating)."
	echo "Targets: times <= 1.0 (also against \`cp --sparse=always\` of the raw file), rates >= 1.0 against"
	echo "the same server on the VHD, >= 0.9 against a userspace server on the raw file (nbdkit file;"
	echo "for FUSE qemu-storage-daemon's export of the raw file), >= 0.8 against FUSE writes done to the raw"
	echo "file directly; peak RSS on a 2040 GiB sparse image < 64 MiB; costs linear in the allocated blocks"
	echo "(scaling table: time per block at most 2x from one size to the next, 10x larger)."
	echo
	echo "| metric | unit | ours | theirs | ratio | target | result |"
	echo "|---|---|---:|---:|---:|---|---|"
	awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$ROWS"
	echo
	if [ -s "$W/scale.md" ]; then
		echo "## Scaling with the allocated blocks"
		echo
		echo "Dynamic VHDs with 4 KiB blocks (the smallest \`vhdtool create\` allows), N of them allocated"
		echo "(bench/mkimage.py --fill; every 10th holds zeros). Median wall time in ms (CPU time, user + system,"
		echo "and user time, in ms) / peak RSS (MiB, wait4's ru_maxrss as GNU time -f %M) per operation; \"per-block"
		echo "growth\" is the largest rise of the time per block from one size to the next (10x the blocks; target"
		echo "<= 2x), judged on CPU time where there is one (at 10^6 blocks merge and compact write 4 GiB: their"
		echo "wall time also measures the shared disk, their system time the VM's cost of fresh memory, which the"
		echo "probe below the table measures; user time shows our own work), \"exponent\" the fitted k in time ~ N^k (process start-up makes small sizes"
		echo "look costly per block, so k < 1 is common). compact frees the zero blocks and moves the rest;"
		echo "merge folds a differencing child with N blocks into an empty parent (N allocations); the NBD rows"
		echo "time socket-activated server start, open and one 4 KiB read. \`qemu-img check\` does not support VHD."
		echo
		cat "$W/scale.md"
		echo
	fi
	echo "## What is measured"
	echo
	echo "- Image: $MIB MiB raw, 4 MiB chunks alternating pseudo-random data and written zeros."
	echo "  The shared dynamic VHD is made from it by \`qemu-img convert -O vpc -o subformat=dynamic,force_size=on\`"
	echo "  (creator qem2, so QEMU sizes it like we do); every NBD and FUSE server reads that same file."
	echo "- Conversions: \`vhdtool convert\` vs \`qemu-img convert\` (\`-o subformat=...,force_size=on\`) and"
	echo "  \`cp --sparse=always\` of the raw file, into the page cache of the same file system."
	echo "  By default neither \`vhdtool convert\` nor \`qemu-img convert\` syncs its output (qemu-img's output"
	echo "  cache mode is unsafe; both checked with strace); the synced rows time \`vhdtool convert --sync\` against"
	echo "  \`qemu-img convert -t writeback\` (fdatasync at the end) and \`cp && sync FILE\`."
	echo "- NBD over a Unix socket: \`nbdcopy URI null:\` (whole disk; nbdcopy skips holes it is told of),"
	echo "  \`fio --ioengine=nbd --bs=4k --iodepth=16\` for ${RT}s. Servers: \`vhdnbd\`, \`qemu-nbd -f vpc -t --shared=16\`,"
	echo "  \`nbdkit file\` on the raw file. Each round starts every server on a fresh copy (writes allocate blocks)."
	echo "- NBD writes: \`fio --rw=randwrite --bs=4k\` at QD1 and QD16 into an image with every block allocated"
	echo "  in two layouts: QEMU's (\`qemu-img convert -S 0\`: blocks 2 MiB + 512 bytes apart, so the data of seven"
	echo "  in eight starts off a page boundary and a 4 KiB write there changes two partial pages) and the 4 KiB-aligned one of Windows and vhdtool (the same"
	echo "  blocks moved by \`bench/mkimage.py --realign\`), a fresh dynamic image and a fresh differencing child of the allocated one"
	echo "  (a new server each, so allocations are measured; qemu-nbd cannot serve a VHD child), against"
	echo "  \`nbdkit file\` on the raw data or a fresh sparse file, and for QEMU's layout also against \`nbdkit"
	echo "  --filter=offset file offset=512\` on the raw data stored 512 bytes into its file (two partial pages"
	echo "  for every write, one block in eight more than QEMU's layout: what a raw-file server does with them); \`nbdcopy disk.raw URI\` into a fresh image;"
	echo "  QD1 4 KiB random writes with NBD_CMD_FLAG_FUA for ${RT}s (\`bench/nbdwrite.py URI fua\`)."
	echo "  Every server (ours and its peers) starts on an image copied, synced and dropped from the page cache"
	echo "  (when run as root), as a server finds an image it did not just write."
	echo "- FUSE, read-only mounts over a regular file (vhdimount: its own folder): the image is read"
	echo "  into the page cache, then mounted afresh, so the FUSE side is cold. \`dd bs=1M\` of the disk;"
	echo "  \`fio --ioengine=psync --direct=1 --bs=4k\` for ${RT}s, one job and four. vhdimount (libvhdi, a sector per system call)"
	echo "  is run once, and its sequential read covers only the first $VMIB MiB (ours measured the same way)."
	echo "  The raw-file peer is \`qemu-storage-daemon\` exporting disk.raw itself (driver=file) over FUSE."
	echo "- FUSE writes, each run on a fresh writable copy (half the VHD's blocks unallocated, so allocation is"
	echo "  included): \`fio --ioengine=psync --direct=1 --rw=randwrite --bs=4k\` for ${RT}s, one job and four, and"
	echo "  \`dd bs=1M oflag=direct conv=fsync\` of the whole disk; vhdfuse and qemu-storage-daemon on the VHD"
	echo "  (its file node: cache.direct=off, like our buffered image I/O), qemu-storage-daemon on a copy of"
	echo "  the raw file, and the same fio/dd on a copy of the raw file directly (no FUSE)."
	echo "- Merge: a differencing child of the dynamic VHD with every 4th 2 MiB block written ($MERGED_MIB MiB),"
	echo "  \`vhdtool merge\`. QEMU cannot merge VHD children, so the peer is the same merge on qcow2: a base with"
	echo "  the parent's data and an overlay with the child's blocks, \`qemu-img commit\` (durable, like ours). For"
	echo "  reference, \`qemu-img convert -f vpc -O vpc\` of a VHD holding the same data (no sync) is shown too."
	echo "- Azure upload: \`bench/azure.sh\` (runs alone too): a dynamic VHD of $MIB MiB with every 4th 4 MiB chunk"
	echo "  random, \`vhdtool upload\` to a fresh Azurite each run: -c 8 (data only) vs -c 8 --no-sparse (every"
	echo "  page sent, what a plain copy sends) vs -c 1."
	echo "- 2040 GiB: \`vhdtool create\` vs \`qemu-img create -f vpc -o subformat=dynamic,force_size=on\`; then an"
	echo "  image with 12 MiB of data (start, 1 TiB, end) served (nbdcopy of the whole disk, fio random read)"
	echo "  and converted. Peak RSS is GNU time's maximum resident set size for commands, VmHWM for servers."
	echo "  Its random reads almost all hit holes, answered without I/O by both servers; with one connection"
	echo "  fio itself is the limit (one core at about 99%, 5 system calls per request whatever the server"
	echo "  does), so that row is shown for information and the server is judged by its CPU time per"
	echo "  request and by two connections (fio \`--numjobs=2\`, a multi-conn client such as nbdcopy or QEMU)."
	vhdx_notes
	echo "- CPU rows (info): user+system time of a command (GNU time), or of a server process during a fio"
	echo "  run divided by the requests served (/proc/PID/stat). Less disturbed by other load than wall time."
	} >"$RESULTS"
	echo "bench: wrote $RESULTS"
fi
exit 0
