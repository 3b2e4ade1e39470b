# bench/vhdx.sh - the VHDX read rows of bench/bench.sh, which sources this
# file and calls vhdx_bench (measure), vhdx_rows (report) and vhdx_notes
# (RESULTS.md).  BENCH_ONLY=vhdx make bench runs only these and prints
# them (vhdx_brief), writing no RESULTS.md.
#
# The VHDX is made by qemu-img from the same raw disk as the VHD rows
# (dynamic, QEMU's default block size), so what is compared is the read
# path: convert VHDX -> raw vs qemu-img convert, the write path: convert
# raw -> dynamic VHDX vs qemu-img convert -O vhdx, and NBD 4K random reads
# (fio, QD16) from vhdnbd -r vs qemu-nbd -f vhdx -r, each on a fresh copy.

vhdx_bench() {
	local r side pid
	qemu-img convert -f raw -O vhdx -o subformat=dynamic disk.raw disk.vhdx >>"$LOG" 2>&1 ||
		{ fail vhdx-raw ours "qemu-img convert -O vhdx"; return; }
	for r in $(seq "$REPS"); do
		rm -f out/*
		timed vhdx-raw ours "$VHDTOOL" convert disk.vhdx out/a.raw
		rm -f out/*
		timed vhdx-raw theirs qemu-img convert -f vhdx -O raw disk.vhdx out/b.raw
		rm -f out/*
		timed vhdx-raw synced qemu-img convert -t writeback -f vhdx -O raw disk.vhdx out/b.raw
		rm -f out/*
	done
	# raw -> dynamic VHDX: the write path (vhdtool convert's output
	# format from the name; both at their default block size).
	for r in $(seq "$REPS"); do
		rm -f out/*
		timed vhdx-mk ours "$VHDTOOL" convert disk.raw out/a.vhdx
		rm -f out/*
		timed vhdx-mk theirs qemu-img convert -f raw -O vhdx -o subformat=dynamic disk.raw out/b.vhdx
		rm -f out/*
		timed vhdx-mk synced qemu-img convert -t writeback -f raw -O vhdx -o subformat=dynamic disk.raw out/b.vhdx
		rm -f out/*
	done
	"$VHDTOOL" convert disk.raw out/a.vhdx >>"$LOG" 2>&1 &&
		qemu-img compare -q -f vhdx -F raw out/a.vhdx disk.raw >>"$LOG" 2>&1 ||
		note "bench: warning: qemu-img reads our raw->VHDX conversion differently from the raw data"
	rm -f out/*
	# Correctness spot check: our raw conversion is the raw disk.
	"$VHDTOOL" convert disk.vhdx out/a.raw >>"$LOG" 2>&1 && cmp disk.raw out/a.raw >>"$LOG" 2>&1 ||
		note "bench: warning: vhdtool convert of the VHDX differs from the raw data"
	rm -f out/*
	SOCK=$W/nbd.sock
	URI="nbd+unix:///?socket=$SOCK"
	for r in $(seq "$REPS"); do
		for side in ours theirs; do
			rm -f "$SOCK" srv.vhdx
			cp --sparse=always disk.vhdx srv.vhdx
			cat srv.vhdx >/dev/null
			case $side in
			ours) start_bg "$VHDNBD" -r -u "$SOCK" srv.vhdx ;;
			theirs) start_bg qemu-nbd -f vhdx -r -k "$SOCK" -t --shared=16 srv.vhdx ;;
			esac
			pid=$SPID
			if wait_nbd "$URI"; then
				CPUPID=$pid
				fio_iops vhdx-nbd-rr "$side" read --ioengine=nbd --uri="$URI" --iodepth=16
				CPUPID=""
			else
				fail vhdx-nbd-rr "$side" "server did not start"
			fi
			stop_bg "$pid"
		done
	done
	rm -f srv.vhdx "$SOCK" disk.vhdx
}

vhdx_rows() {
	row "convert dynamic VHDX->raw ($MIB MiB), vs qemu-img convert" s time vhdx-raw.ours vhdx-raw.theirs 1.0
	row "  same, vs qemu-img convert -t writeback" s time vhdx-raw.ours vhdx-raw.synced 1.0
	row "CPU (user+sys) convert VHDX->raw, vs qemu-img convert" s info cpu-vhdx-raw.ours cpu-vhdx-raw.theirs -
	row "convert raw->dynamic VHDX ($MIB MiB), vs qemu-img convert -O vhdx" s time vhdx-mk.ours vhdx-mk.theirs 1.0
	row "  same, vs qemu-img convert -t writeback -O vhdx" s time vhdx-mk.ours vhdx-mk.synced 1.0
	row "CPU (user+sys) convert raw->VHDX, vs qemu-img convert" s info cpu-vhdx-mk.ours cpu-vhdx-mk.theirs -
	row "NBD 4K rand read QD16 of a dynamic VHDX (fio), vhdnbd -r vs qemu-nbd -f vhdx" IOPS rate vhdx-nbd-rr.ours vhdx-nbd-rr.theirs 1.0
	row "server CPU per NBD 4K rand read of a VHDX, vs qemu-nbd" us info cpu-vhdx-nbd-rr.ours cpu-vhdx-nbd-rr.theirs -
}

vhdx_notes() {
	echo "- VHDX (read; raw->VHDX): \`bench/vhdx.sh\`: a dynamic VHDX made by \`qemu-img convert -O vhdx\` from the same raw disk;"
	echo "  \`vhdtool convert\` to raw vs \`qemu-img convert -f vhdx -O raw\` (and \`-t writeback\`);"
	echo "  \`vhdtool convert\` raw to a dynamic VHDX vs \`qemu-img convert -O vhdx -o subformat=dynamic\` (and"
	echo "  \`-t writeback\`), each at its default block size; fio 4K random"
	echo "  reads over NBD from \`vhdnbd -r\` vs \`qemu-nbd -f vhdx -r -t --shared=16\`, each on a fresh copy read into"
	echo "  the page cache first. \`BENCH_ONLY=vhdx make bench\` runs only these rows."
}

# The VHDX rows alone, for BENCH_ONLY=vhdx.
vhdx_brief() {
	local k o t
	printf '%-28s %12s %12s %7s %s\n' metric ours theirs ratio target
	for k in vhdx-raw:theirs:time vhdx-raw:synced:time cpu-vhdx-raw:theirs:info \
		vhdx-mk:theirs:time vhdx-mk:synced:time cpu-vhdx-mk:theirs:info \
		vhdx-nbd-rr:theirs:rate cpu-vhdx-nbd-rr:theirs:info; do
		o=$(median "${k%%:*}" ours)
		t=$(median "${k%%:*}" "$(echo "$k" | cut -d: -f2)")
		printf '%-28s %12s %12s %7s %s\n' "${k%%:*} ($(echo "$k" | cut -d: -f2))" "$o" "$t" \
			"$(awk -v a="$o" -v b="$t" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "-"; else printf "%.2f", a / b }')" \
			"$(case ${k##*:} in time) echo '<= 1.0' ;; rate) echo '>= 1.0' ;; *) echo info ;; esac)"
	done
}
