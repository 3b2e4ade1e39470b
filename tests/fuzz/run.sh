#!/bin/sh
# Runs libFuzzer targets built by `make fuzz-build`.
#   sh tests/fuzz/run.sh BUILD SECONDS TARGET...
# Each target starts from its committed seeds (tests/fuzz/seeds/NAME),
# its regression inputs (tests/fuzz/regress/NAME) and, for fuzz_open, the
# fixture images; new inputs go to BUILD/corpus/TARGET (kept between
# runs), crashes to BUILD/artifacts/.  FUZZ_SMOKE=1 starts from the
# committed inputs only and keeps nothing (CI).  Extra libFuzzer options
# may be given in FUZZ_OPTS (e.g. FUZZ_OPTS="-jobs=2 -workers=2").
# Exits non-zero if any target found a crash, leak, timeout or failed.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
build=$1 secs=$2
shift 2
: "${SHARED_FIXTURES:=$top/../shared/fixtures}"
mkdir -p "$build/artifacts" "$build/corpus"
status=0
for t in "$@"; do
	name=${t#fuzz_}
	bin=$build/$t
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin: not built (make fuzz-build)" >&2
		status=1
		continue
	fi
	if [ -n "${FUZZ_SMOKE:-}" ]; then
		corpus=$(mktemp -d "${TMPDIR:-/tmp}/vhdfuzz.XXXXXX")
	else
		corpus=$build/corpus/$t
		mkdir -p "$corpus"
	fi
	seeds=$name
	[ "$name" = modify ] && seeds=open    # the same kind of input
	dirs="tests/fuzz/seeds/$seeds"
	[ -d "tests/fuzz/regress/$name" ] && dirs="$dirs tests/fuzz/regress/$name"
	maxlen=65536
	if [ "$seeds" = open ]; then
		maxlen=1048576
		dirs="$dirs fixtures/valid fixtures/corrupt"
		[ -d "$SHARED_FIXTURES" ] && [ -z "${FUZZ_SMOKE:-}" ] &&
			dirs="$dirs $SHARED_FIXTURES"
	fi
	dict=
	[ -f "tests/fuzz/$seeds.dict" ] && dict="-dict=tests/fuzz/$seeds.dict"
	log=$build/$t.log
	echo "fuzz: $t for ${secs}s (log $log)"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
		-max_len="$maxlen" -print_final_stats=1 $dict \
		-artifact_prefix="$build/artifacts/$t-" ${FUZZ_OPTS:-} \
		"$corpus" $dirs >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -2
	if [ $rc -ne 0 ]; then
		echo "fuzz: $t FAILED (exit $rc):" >&2
		grep -E 'ERROR|SUMMARY|property violated|runtime error|Test unit written' \
			"$log" | head -10 >&2
		status=1
	fi
	[ -n "${FUZZ_SMOKE:-}" ] && rm -rf "$corpus"
done
exit $status
