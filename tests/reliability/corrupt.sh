# The damaged-image corpus (fixtures/corrupt/, see its README.md): the
# generator still reproduces the committed files byte for byte, and every
# tool refuses every image cleanly: exit 3 (damaged) or 1 (e.g. a parent
# that cannot be found), exactly one line on stderr naming the file, no
# crash, no sanitizer or valgrind report, the image unchanged, and no
# half-written output left behind by convert.
. "$TOP/tests/lib.sh"
need python3 python3
need valgrind valgrind
need sha256sum coreutils

# 1. Deterministic generator, committed output up to date.
python3 "$TOP/fixtures/gen-corrupt.py" "$T/gen" ||
	fail "fixtures/gen-corrupt.py failed"
for d in corrupt valid; do
	diff -r "$TOP/fixtures/$d" "$T/gen/$d" >"$T/diff.txt" 2>&1 ||
		{ cat "$T/diff.txt" >&2; fail "fixtures/$d differs from what gen-corrupt.py makes: rerun it and commit"; }
done
n=$(ls "$T/gen/corrupt"/*.vhd | wc -l)
[ "$n" -ge 30 ] || fail "only $n corrupt images"

# The tools run on the regenerated copies (identical, as just checked), so
# a tool that writes cannot damage the committed corpus.
cd "$T/gen"
sha256sum corrupt/* valid/* >"$T/before.sha"

problems=0
bad() { echo "BAD: $*" >&2; problems=$((problems + 1)); }

# one_run LABEL FILE CMD...: run CMD, judge exit status and stderr.
one_run() {
	label=$1 f=$2; shift 2
	set +e; "$@" >"$T/out.txt" 2>"$T/err.txt"; rc=$?; set -e
	last_rc=$rc
	if [ "$rc" -ne 1 ] && [ "$rc" -ne 3 ]; then
		bad "$label $f: exit $rc (want 3 damaged, or 1)"
		head -5 "$T/err.txt" | sed 's/^/    /' >&2
		return
	fi
	lines=$(wc -l <"$T/err.txt")
	[ "$lines" -eq 1 ] || { bad "$label $f: $lines lines on stderr (want 1):"; head -5 "$T/err.txt" | sed 's/^/    /' >&2; }
	grep -qF "$(basename "$f")" "$T/err.txt" ||
		bad "$label $f: stderr does not name the file: $(head -1 "$T/err.txt")"
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|==[0-9]+==' "$T/err.txt"; then
		bad "$label $f: sanitizer/valgrind report"; head -20 "$T/err.txt" >&2
	fi
	echo "$label $f: exit $rc: $(head -1 "$T/err.txt")"
}

for f in corrupt/*.vhd; do
	one_run info "$f" "$VHDTOOL" info "$f"
	one_run check "$f" "$VHDTOOL" check "$f"
	rm -f "$T/conv.raw"
	one_run convert "$f" "$VHDTOOL" convert -O raw "$f" "$T/conv.raw"
	[ "$last_rc" -eq 0 ] || [ ! -e "$T/conv.raw" ] ||
		bad "convert $f: left an output file behind after failing"
done

# The same under valgrind (memory errors and definite leaks on the error
# paths), info and check only, four at a time (valgrind spends much of its
# start-up waiting).
export VHDTOOL T
for f in corrupt/*.vhd; do printf '%s\n' "info $f" "check $f"; done |
	xargs -P 4 -L 1 sh -c '
		b="$T/vg.$0.$(basename "$1")"
		valgrind --error-exitcode=99 -q --leak-check=full \
			--errors-for-leak-kinds=definite "$VHDTOOL" "$0" "$1" \
			>/dev/null 2>"$b.err"
		echo $? >"$b.rc"' || true
for f in corrupt/*.vhd; do
	for c in info check; do
		b="$T/vg.$c.$(basename "$f")"
		rc=$(cat "$b.rc")
		case $rc in
		1|3) ;;
		*) bad "valgrind $c $f: exit $rc"; head -30 "$b.err" >&2 ;;
		esac
		lines=$(wc -l <"$b.err")
		[ "$lines" -eq 1 ] || { bad "valgrind $c $f: $lines lines on stderr"; head -30 "$b.err" >&2; }
	done
done

sha256sum corrupt/* valid/* >"$T/after.sha"
cmp -s "$T/before.sha" "$T/after.sha" ||
	{ diff "$T/before.sha" "$T/after.sha" >&2; bad "a tool modified an image"; }

[ "$problems" -eq 0 ] || fail "$problems problems with the corrupt corpus"
echo "corrupt corpus: $n images refused cleanly"
