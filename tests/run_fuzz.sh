#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the libFuzzer harnesses built by `make fuzzers` and tallies them.
#   FUZZ_DIR=build/fuzz FUZZ_SECONDS=60 tests/run_fuzz.sh [harness ...]
# Each harness runs for FUZZ_SECONDS (default 60) from its seeds ($FUZZ_DIR/fuzz-seeds/<h>) and
# its corpus ($FUZZ_DIR/corpus/<h>, grown by each run; FUZZ_CORPUS=tmp starts from the seeds
# alone and keeps nothing, as the smoke pass of `make test` does). A harness passes when
# libFuzzer finds nothing (no crash, leak, timeout or out-of-memory): a finding is kept in
# $FUZZ_DIR/artifacts/. Prints one line per harness with its executions, then always, last:
# "fuzz: N passed, N failed, N skipped". Exit status: 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

dir=${FUZZ_DIR:-build/fuzz}
seconds=${FUZZ_SECONDS:-60}
passed=0 failed=0 skipped=0 total_runs=0

if [ "$#" -gt 0 ]; then
	harnesses=("$@")
else
	harnesses=()
	for bin in "$dir"/fuzzers/fuzz_*; do
		[ -x "$bin" ] && harnesses+=("$(basename "$bin")")
	done
fi
if [ "${#harnesses[@]}" -eq 0 ]; then
	echo "run_fuzz: no harness in $dir/fuzzers/ (run 'make fuzzers')" >&2
	echo "fuzz: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

# Leaks are findings; the binaries are ours, linked with ASan first.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$dir/artifacts"
for h in "${harnesses[@]}"; do
	bin=$dir/fuzzers/$h
	seeds=$dir/fuzz-seeds/$h
	if [ ! -x "$bin" ]; then
		echo "run_fuzz: $bin is not built (make fuzzers)" >&2
		failed=$((failed + 1))
		continue
	fi
	if [ "${FUZZ_CORPUS:-}" = tmp ]; then
		corpus=$(mktemp -d)
	else
		corpus=$dir/corpus/$h
		mkdir -p "$corpus"
	fi
	[ -d "$seeds" ] || seeds=
	log=$(mktemp)
	# -timeout: one input taking seconds is a hang; the wall-clock guard catches a stuck run.
	timeout --kill-after=10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/$h-" "$corpus" ${seeds:+"$seeds"} \
		>"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
		passed=$((passed + 1))
		total_runs=$((total_runs + runs))
		echo "fuzz: $h: ok, $runs runs in ${seconds}s${cov:+, $cov}"
	else
		failed=$((failed + 1))
		echo "fuzz: $h: FAILED (exit $rc${runs:+, after $runs runs}); the libFuzzer log ends:"
		grep -v '^#[0-9]' "$log" | tail -n 40 | sed 's/^/    /'
	fi
	rm -f "$log"
	[ "${FUZZ_CORPUS:-}" = tmp ] && rm -rf "$corpus"
done
echo "fuzz: $total_runs executions in all"
echo "fuzz: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
