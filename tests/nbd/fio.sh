# fio's nbd engine: random writes at queue depth 16 verified with crc32c,
# then 2 s of mixed random I/O; no errors, no verify failures.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need fio fio

"$VHDTOOL" create --block-size 512K disk.vhd 32M
start_server --unix "$SOCK" disk.vhd
uri="nbd+unix:///disk?socket=$SOCK"
# fio prints a line before its JSON on stdout, hence --output.
fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 \
	--size=32M --io_size=8M --verify=crc32c --verify_fatal=1 --do_verify=1 \
	--randrepeat=1 --output-format=json --output=verify.json ||
	{ cat verify.json; fail "fio verify run failed"; }
[ "$(json_get verify.json "j['jobs'][0]['error']")" = 0 ] || fail "fio verify reported an error"
[ "$(json_get verify.json "j['jobs'][0]['read']['io_bytes']")" -gt 0 ] || fail "fio verified nothing"
fio --name=mixed --ioengine=nbd --uri="$uri" --rw=randrw --bsrange=512-64k --iodepth=16 \
	--size=32M --time_based --runtime=2 --output-format=json --output=mixed.json ||
	{ cat mixed.json; fail "fio mixed run failed"; }
[ "$(json_get mixed.json "j['jobs'][0]['error']")" = 0 ] || fail "fio mixed reported an error"
echo "randrw IOPS: read $(json_get mixed.json "int(j['jobs'][0]['read']['iops'])") write $(json_get mixed.json "int(j['jobs'][0]['write']['iops'])")"
stop_server
