#!/bin/bash
# scale.sh - how our costs grow with the number of allocated blocks.
#
# Images with 10^3, 10^4, 10^5 and 10^6 allocated 4 KiB blocks (the
# smallest block size `vhdtool create` allows; data 4 GiB at 10^6), made by
# bench/mkimage.py --fill: open (vhd_open in-process), `vhdtool info`,
# `check`, `map`, `compact` (every 10th block holds zeros: freed, the rest
# moved down), `merge` (a differencing child with N blocks into an empty
# parent, which allocates N blocks) and NBD first-read latency (server
# started by socket activation, one 4 KiB read: open included), with
# `qemu-img info`, `qemu-img map` and qemu-nbd on the same images beside
# ours (made with create --chs-round, so QEMU sees the same size).  Time
# (wall and CPU, median of SCALE_REPS runs; compact and merge run once)
# and peak RSS (wait4's, what GNU time -f %M shows) per row; the growth of
# the CPU time per block (wall where none) from one size to the next
# (10x) must stay within 2x.  User time is shown too: system time also
# holds the kernel's cost of the page cache's fresh memory, which on a VM
# can rise tenfold once a few GiB are touched (at 10^6 blocks merge
# writes 4 GiB); a probe measures it and the table says what it found.
#
# Run by bench.sh; alone: bash bench/scale.sh.  Environment: BUILD,
# BENCH_DIR (scratch parent), BENCH_SCALE_MAX (largest N, default
# 1000000), SCALE_REPS (default 3), SCALE_OUT (prefix of the files
# written: OUT.md the table, OUT.rows growth rows for bench.sh; default
# print the table).
set -u
export LC_ALL=C
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
VHDTOOL=$BUILD/vhdtool
VHDNBD=$BUILD/vhdnbd
LIB=$BUILD/libmsvhd.so.1
PY=/usr/bin/python3
MAX=${BENCH_SCALE_MAX:-1000000}
REPS=${SCALE_REPS:-3}
die() { echo "scale: $*" >&2; exit 1; }
case $MAX in ''|*[!0-9]*) die "BENCH_SCALE_MAX: not a number: $MAX" ;; esac
[ "$MAX" -ge 1000 ] || die "BENCH_SCALE_MAX must be at least 1000"
for p in "$VHDTOOL" "$VHDNBD" "$LIB"; do [ -e "$p" ] || die "$p missing: run make first"; done
for t in qemu-img qemu-nbd; do command -v "$t" >/dev/null || die "$t not found"; done

D=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vhdscale.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$D"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG=$D/log
R=$D/samples            # lines: OP N SECONDS RSS-KiB CPU-SECONDS
: >"$R"
cd "$D" || die "cd $D"

# timed OP N CMD...: wall time, peak RSS and CPU time (user + system) of
# CMD, output dropped.  From wait4()'s rusage, as GNU time's %M, but with
# the CPU time to the microsecond (GNU time rounds it to 10 ms).
RUN='
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, st, ru = os.wait4(pid, 0)
t1 = time.perf_counter()
if os.waitstatus_to_exitcode(st) != 0:
    sys.exit(1)
print("%.6f %d %.6f %.6f" % (t1 - t0, ru.ru_maxrss, ru.ru_utime + ru.ru_stime,
                            ru.ru_utime))
'
timed() {
	local op=$1 n=$2 s
	shift 2
	echo "+ $*" >>"$LOG"
	if s=$($PY -c "$RUN" "$@" 2>>"$LOG"); then
		echo "$op $n $s" >>"$R"
	else
		echo "scale: $op at $n blocks failed: $* (see $LOG)" >&2
		echo "$op $n nan nan nan nan" >>"$R"
	fi
}
# inproc OP N PYTHON-ARGS...: the python helper below prints seconds.
inproc() {
	local op=$1 n=$2 s
	shift 2
	if s=$($PY -c "$HELPER" "$@" 2>>"$LOG"); then
		echo "$op $n $s - - -" >>"$R"
	else
		echo "scale: $op at $n blocks failed (see $LOG)" >&2
		echo "$op $n nan - - -" >>"$R"
	fi
}
HELPER='
import ctypes, sys, time
what = sys.argv[1]
if what == "open":
    lib = ctypes.CDLL(sys.argv[2])
    h = ctypes.c_void_p()
    best = None
    for _ in range(int(sys.argv[4])):
        t0 = time.perf_counter()
        if lib.vhd_open(ctypes.byref(h), sys.argv[3].encode(), 0) < 0:
            sys.exit(1)
        t1 = time.perf_counter()
        lib.vhd_close(h)
        best = t1 - t0 if best is None else min(best, t1 - t0)
    print("%.6f" % best)
else:   # nbd OFFSET SERVER-ARGV...: start, connect, one 4 KiB read
    import nbd
    off = int(sys.argv[2])
    h = nbd.NBD()
    t0 = time.perf_counter()
    h.connect_systemd_socket_activation(sys.argv[3:])
    b = h.pread(4096, off)
    t1 = time.perf_counter()
    h.shutdown()
    if b[:8] == bytes(8):
        sys.exit("read zeros where a block number was expected")
    print("%.6f" % (t1 - t0))
'

# The probe: seconds of system time to touch each GiB of fresh anonymous
# memory, 6 GiB in all (what a page cache growing by gigabytes also pays).
$PY - >"$D/probe" 2>>"$LOG" <<'PYEOF' || echo "- -" >"$D/probe"
import mmap, resource
GB = 1 << 30
m = mmap.mmap(-1, 6 * GB)
t = []
for g in range(6):
    s0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for off in range(g * GB, (g + 1) * GB, 4096):
        m[off] = 1
    t.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - s0)
print("%.2f %.2f" % (min(t[:2]), max(t[4:])))
PYEOF

N=1000
while [ "$N" -le "$MAX" ]; do
	echo "scale: $N blocks" >&2
	SZ=$((N * 4096))
	rm -f ./*.vhd
	"$VHDTOOL" create -c -b 4K d.vhd "$SZ" >>"$LOG" 2>&1 &&
		$PY "$TOP/bench/mkimage.py" --fill d.vhd "$N" >>"$LOG" 2>&1 ||
		die "making the $N-block image failed (see $LOG)"
	cat d.vhd >/dev/null
	OFF=$(((N - 2) * 4096))     # block N-2 holds its number
	for r in $(seq "$REPS"); do
		inproc open "$N" open "$LIB" d.vhd 10
		timed info "$N" "$VHDTOOL" info d.vhd
		timed qinfo "$N" qemu-img info -f vpc d.vhd
		timed check "$N" "$VHDTOOL" check d.vhd
		timed map "$N" "$VHDTOOL" map d.vhd
		timed qmap "$N" qemu-img map -f vpc d.vhd
		inproc nbd "$N" nbd "$OFF" "$VHDNBD" -r d.vhd
		inproc qnbd "$N" nbd "$OFF" qemu-nbd -r -f vpc d.vhd
	done
	cp --sparse=always d.vhd x.vhd
	timed compact "$N" "$VHDTOOL" compact x.vhd
	"$VHDTOOL" check x.vhd >>"$LOG" 2>&1 || echo "scale: compacted $N-block image fails check" >&2
	rm -f x.vhd d.vhd
	"$VHDTOOL" create -c -b 4K p.vhd "$SZ" >>"$LOG" 2>&1 &&
		"$VHDTOOL" create --parent p.vhd c.vhd >>"$LOG" 2>&1 &&
		$PY "$TOP/bench/mkimage.py" --fill c.vhd "$N" 4096 >>"$LOG" 2>&1 ||
		die "making the $N-block child failed (see $LOG)"
	cat c.vhd >/dev/null
	timed merge "$N" "$VHDTOOL" merge c.vhd
	"$VHDTOOL" check p.vhd >>"$LOG" 2>&1 || echo "scale: merged $N-block parent fails check" >&2
	rm -f ./*.vhd
	N=$((N * 10))
done

# The table: per operation, median time (ms) and peak RSS (MiB) per size,
# time per block, and the largest growth of the time per block from one
# size to the next.
$PY - "$R" "${SCALE_OUT:-}" "$D/probe" <<'PYEOF'
import math, statistics, sys
from collections import defaultdict
rows = defaultdict(lambda: defaultdict(list))
rss = defaultdict(lambda: defaultdict(list))
cpu = defaultdict(lambda: defaultdict(list))
usr = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    op, n, t, m, c, u = line.split()
    n = int(n)
    if t != "nan":
        rows[op][n].append(float(t))
    if m not in ("nan", "-"):
        rss[op][n].append(int(m))
    if c not in ("nan", "-"):
        cpu[op][n].append(float(c))
    if u not in ("nan", "-"):
        usr[op][n].append(float(u))
ops = [("open", "open (vhd_open, in-process)", True),
       ("info", "vhdtool info", True), ("qinfo", "qemu-img info", False),
       ("check", "vhdtool check", True),
       ("map", "vhdtool map", True), ("qmap", "qemu-img map", False),
       ("compact", "vhdtool compact (10% zero blocks)", True),
       ("merge", "vhdtool merge (child of N blocks)", True),
       ("nbd", "vhdnbd first 4K read (start+open+read)", True),
       ("qnbd", "qemu-nbd first 4K read", False)]
sizes = sorted({n for op in rows for n in rows[op]} | {n for op in rss for n in rss[op]})
md = []
tsv = []
md.append("| operation | " + " | ".join("%d blocks" % n for n in sizes) +
          " | per-block growth (max step) | exponent | judged on | result |")
md.append("|---|" + "---:|" * len(sizes) + "---:|---:|---|---|")
for op, label, judged in ops:
    # Growth is judged on CPU time (user + system) where there is one:
    # an O(n^2) loop shows there, while wall time at 10^6 blocks (4 GiB
    # written) also measures the shared disk.  (User time alone is too
    # coarse at small sizes: ticks.)  In-process and NBD rows: wall time.
    judge = "CPU" if all(cpu[op].get(n) for n in sizes if rows[op].get(n)) and cpu[op] else "wall"
    cells, per = [], []
    for n in sizes:
        ts = rows[op].get(n)
        if not ts:
            cells.append("-"); per.append(None); continue
        t = statistics.median(ts)
        m = rss[op].get(n)
        c = statistics.median(cpu[op][n]) if cpu[op].get(n) else None
        u = statistics.median(usr[op][n]) if usr[op].get(n) else None
        cells.append("%.1f ms%s%s" % (t * 1e3, " (CPU %.1f, user %.1f)" % (c * 1e3, u * 1e3)
                                      if c is not None and u is not None else "",
                                      " / %.1f MiB" % (max(m) / 1024) if m else ""))
        v = c if judge == "CPU" else t
        per.append((n, max(v, 1e-6)))
    pts = [p for p in per if p]
    step = None
    for a, b in zip(per, per[1:]):
        if a and b:
            g = (b[1] / b[0]) / (a[1] / a[0])
            step = g if step is None else max(step, g)
    k = None
    if len(pts) >= 2:
        xs = [math.log(n) for n, _ in pts]; ys = [math.log(t) for _, t in pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    if not judged:
        verdict = "info"
    elif step is None or len(pts) < len(sizes):
        verdict = "MISS"
    else:
        verdict = "PASS" if step <= 2.0 else "MISS"
    md.append("| %s | %s | %s | %s | %s | %s |" % (label, " | ".join(cells),
              "-" if step is None else "%.2fx" % step,
              "-" if k is None else "%.2f" % k, judge, verdict))
    if judged:
        tsv.append("\t".join([
            "scaling %s: %s time per block, %d to %d blocks, largest 10x step" % (label, judge, sizes[0], sizes[-1]),
            "x", "-" if step is None else "%.2f" % step, "-", "-", "<= 2", verdict]))
try:
    lo, hi = (float(x) for x in open(sys.argv[3]).read().split())
    md.append("")
    md.append("Probe (this machine, this run): touching fresh memory cost %.2f s of system time per GiB "
              "for the first 2 GiB and up to %.2f s per GiB for the 5th and 6th (%.1fx); system time of "
              "the rows that write gigabytes at 10^6 blocks includes it." % (lo, hi, hi / max(lo, 1e-3)))
except ValueError:
    pass
out = sys.argv[2]
if out:
    open(out + ".md", "w").write("\n".join(md) + "\n")
    open(out + ".rows", "w").write("\n".join(tsv) + "\n")
else:
    print("\n".join(md))
PYEOF
