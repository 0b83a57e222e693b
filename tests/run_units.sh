#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs cmocka unit-test binaries and tallies their results.
#   tests/run_units.sh build/tests/test_a build/tests/test_b ...
# Each binary's output is shown as it runs. Per-test results are read from cmocka's
# "[ RUN ] name" / "[ OK | FAILED | ERROR | SKIPPED ] name" pairs; a binary that crashes, hangs
# (UNIT_TIMEOUT seconds, default 120) or exits non-zero with no failure reported counts as one
# failure more. The last line is always: "units: N passed, N failed, N skipped".
# Exit status: 1 if anything failed, else 0 (skips are judged by run_all.sh).
set -uo pipefail

timeout_s=${UNIT_TIMEOUT:-120}
passed=0 failed=0 skipped=0
failures=()

# A line buffer for stdout, so that what a crashing binary printed is not lost.
linebuf=()
command -v stdbuf >/dev/null && linebuf=(stdbuf -oL -eL)
# stdbuf preloads a library ahead of ASan's runtime; that order is harmless here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-verify_asan_link_order=0:detect_leaks=1}

for bin in "$@"; do
	if [ ! -x "$bin" ]; then
		echo "run_units: $bin is not an executable" >&2
		failed=$((failed + 1)) failures+=("$bin (missing)")
		continue
	fi
	echo "== $bin"
	out=$(mktemp)
	timeout --kill-after=5 "$timeout_s" "${linebuf[@]}" "$bin" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	# shellcheck disable=SC2016
	read -r p f s unfinished < <(awk '
		/^\[ RUN      \] / { if (cur != "") unfinished++; cur = substr($0, 14); next }
		match($0, /^\[ *(OK|FAILED|ERROR|SKIPPED) *\] /) {
			tag = substr($0, 2, RLENGTH - 3); gsub(/ /, "", tag)
			name = substr($0, RLENGTH + 1)
			if (cur == "" || name != cur) next   # summary listings, "--- message" lines
			if (tag == "OK") p++; else if (tag == "SKIPPED") s++; else f++
			cur = ""
		}
		END { if (cur != "") unfinished++; print p + 0, f + 0, s + 0, unfinished + 0 }
	' "$out")
	rm -f "$out"
	f=$((f + unfinished))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1   # crashed, timed out or failed outside any test
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "run_units: $bin timed out after ${timeout_s}s" >&2
	elif [ "$rc" -ge 128 ]; then
		echo "run_units: $bin killed by signal $((rc - 128))" >&2
	fi
	if [ "$((p + f + s))" -eq 0 ]; then
		f=1   # ran no test at all: not a pass
		echo "run_units: $bin reported no test results (exit $rc)" >&2
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	[ "$f" -gt 0 ] && failures+=("$bin ($f failed, exit $rc)")
done

for item in "${failures[@]}"; do
	echo "run_units: FAILED $item"
done
echo "units: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
