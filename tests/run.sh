#!/bin/sh
# Runs every test and prints one line per test, then "N passed, N failed".
#   unit tests:   build/tests/test_*  and the sanitized build-san/tests/test_*
#   script tests: tests/<area>/*.sh, each run with a scratch directory;
#                 cli, fixtures, diff and nbd run a second time with the
#                 sanitized (ASan+UBSan) binaries.
# TESTS=pattern limits the run to tests whose name contains pattern.
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
: "${SHARED_FIXTURES:=$top/../shared/fixtures}"
export SHARED_FIXTURES TOP="$top"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vhdtests.XXXXXX")
pass=0 fail=0 failed=""
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

run_one() {   # name, command...
	name=$1; shift
	case "$name" in *"${TESTS:-}"*) ;; *) return ;; esac
	log="$scratch/$(echo "$name" | tr '/ ' '__').log"
	start=$(date +%s)
	if "$@" >"$log" 2>&1; then
		pass=$((pass + 1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL $name ($(( $(date +%s) - start ))s)"; sed 's/^/    | /' "$log" | tail -40
	fi
}

for b in build build-san; do
	for t in "$b"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "$b/unit/$(basename "$t")" "$t"
	done
done

script_pass() {   # build dir, areas...
	b=$1; shift
	for area in "$@"; do
		for s in tests/"$area"/*.sh; do
			[ -f "$s" ] || continue
			d="$scratch/work"; rm -rf "$d"; mkdir -p "$d"
			run_one "$b/$area/$(basename "$s" .sh)" env \
				VHDTOOL="$top/$b/vhdtool" VHDFUSE="$top/$b/vhdfuse" \
				VHDNBD="$top/$b/vhdnbd" BUILD="$top/$b" T="$d" \
				sh -c 'cd "$T" && exec bash "$0"' "$top/$s"
		done
	done
}
script_pass build cli fixtures diff fuse nbd reliability fuzz abi
script_pass build-san cli fixtures diff nbd

rm -rf "$scratch"
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
