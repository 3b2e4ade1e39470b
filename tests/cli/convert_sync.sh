# convert leaves write-back to the kernel like cp and qemu-img; --sync makes
# the output durable before exiting (an fsync/fdatasync of DST), for raw and
# VHD destinations.  (Creating a VHD syncs its new, empty metadata once;
# that is the library's create, not the copy.)
. "$TOP/tests/lib.sh"
need strace strace
export ASAN_OPTIONS=detect_leaks=0      # LeakSanitizer cannot run under ptrace
mkdata src.raw 4 7
syncs() {   # DST [--sync]: number of fsync/fdatasync calls of a convert
	rm -f "$1"
	strace -f -e trace=fsync,fdatasync -o t.trace "$VHDTOOL" convert ${2:-} src.raw "$1" > /dev/null
	grep -c "sync(" t.trace || true
}
[ "$(syncs out.raw)" -eq 0 ] || fail "raw: convert synced without --sync"
[ "$(syncs out.raw --sync)" -ge 1 ] || fail "raw: convert --sync did not sync"
plain=$(syncs out.vhd)
[ "$(syncs out.vhd --sync)" -gt "$plain" ] || fail "vhd: --sync added no sync"
# Both outputs hold the data (judged by qemu-img).
qemu-img compare -q -f raw src.raw out.raw || fail "raw output differs"
qemu-img compare -q --image-opts driver=raw,file.filename=src.raw \
	driver=vpc,force_size_calc=current_size,file.filename=out.vhd || fail "VHD output differs"
