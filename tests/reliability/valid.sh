# Edge-case images every reader must accept (fixtures/valid/, made by
# fixtures/gen-corrupt.py): info succeeds, check says what expected.tsv's
# check column says, conversion to raw gives
# exactly the SHA-256 in expected.tsv, qemu-img (reading by the current
# size) agrees where expected.tsv says it reads the image the same way, and
# no tool changes the image.
. "$TOP/tests/lib.sh"
need qemu-img qemu-utils
need sha256sum coreutils

cp -r "$TOP/fixtures/valid" "$T/valid"
cd "$T/valid"
sha256sum *.vhd >"$T/before.sha"
problems=0
bad() { echo "BAD: $*" >&2; problems=$((problems + 1)); }
n=0
while IFS='	' read -r f size sum qemu check note <&3; do
	case $f in ''|'#'*) continue ;; esac
	n=$((n + 1))
	[ -f "$f" ] || { bad "$f: listed in expected.tsv but missing"; continue; }
	set +e; "$VHDTOOL" info "$f" >"$T/out.txt" 2>"$T/err.txt"; rc=$?; set -e
	[ "$rc" -eq 0 ] || bad "info $f: exit $rc: $(head -3 "$T/err.txt")"
	# check: clean = no problem; warn = a tolerated quirk, reported as a
	# warning but not as damage; repair = readable, but check must report
	# the damage (exit 3).
	set +e; "$VHDTOOL" check "$f" >"$T/out.txt" 2>&1; rc=$?; set -e
	case $check in
	clean) [ "$rc" -eq 0 ] || bad "check $f: exit $rc, want 0: $(head -3 "$T/out.txt")" ;;
	warn)	[ "$rc" -eq 0 ] || bad "check $f: exit $rc, want 0 (a warning is not damage): $(head -3 "$T/out.txt")"
		grep -qi warn "$T/out.txt" || bad "check $f: no warning printed" ;;
	repair) [ "$rc" -eq 3 ] || bad "check $f: exit $rc, want 3 (damage to report)" ;;
	*) bad "$f: unknown check column '$check'" ;;
	esac
	rm -f "$T/out.raw"
	set +e; "$VHDTOOL" convert -O raw "$f" "$T/out.raw" 2>"$T/err.txt"; rc=$?; set -e
	if [ "$rc" -ne 0 ]; then
		bad "convert $f: exit $rc: $(head -3 "$T/err.txt")"
	else
		got=$(stat -c %s "$T/out.raw")
		[ "$got" = "$size" ] || bad "convert $f: $got bytes, want $size"
		got=$(sha256sum <"$T/out.raw" | cut -c1-64)
		[ "$got" = "$sum" ] || bad "convert $f: sha256 $got, want $sum ($note)"
	fi
	if [ "$qemu" = yes ]; then
		rm -f "$T/q.raw"
		qemu-img convert --image-opts \
			"driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=$f" \
			-O raw "$T/q.raw" || bad "qemu-img cannot read $f"
		got=$(sha256sum <"$T/q.raw" | cut -c1-64)
		[ "$got" = "$sum" ] || bad "qemu-img reads $f as $got, expected.tsv says $sum"
	fi
	echo "ok? $f"
done 3<expected.tsv
[ "$n" -ge 10 ] || fail "only $n valid images listed"
sha256sum *.vhd >"$T/after.sha"
cmp -s "$T/before.sha" "$T/after.sha" ||
	{ diff "$T/before.sha" "$T/after.sha" >&2; bad "a tool modified an image"; }
[ "$problems" -eq 0 ] || fail "$problems problems with the valid corpus"
echo "valid corpus: $n images read as expected"
