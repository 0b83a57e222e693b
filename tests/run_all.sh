#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test and prints one final line: "N passed, N failed, N skipped".
# Builds nothing: `make test` builds first. Units are every executable $UNIT_DIR/<stage>/test_*
# (default build/tests; `make test` points it at the ASan/UBSan build); fuzz is a short pass of
# every harness in $FUZZ_DIR/fuzzers (tests/run_fuzz.sh); integration is tests/integration (pytest). Exit status: non-zero if anything failed, or if
# CI=true and anything was skipped (in CI every root/BPF test must run).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

passed=0 failed=0 skipped=0

# ---- units
units=()
unit_dir=${UNIT_DIR:-build/tests}
for bin in "$unit_dir"/test_* "$unit_dir"/*/test_*; do
	[ -f "$bin" ] && [ -x "$bin" ] && units+=("$bin")
done
if [ "${#units[@]}" -eq 0 ]; then
	echo "run_all: no unit-test binaries in $unit_dir/ (run 'make test')" >&2
	failed=$((failed + 1))
else
	log=$(mktemp)
	./tests/run_units.sh "${units[@]}" | tee "$log"
	tally=$(tail -n 1 "$log")
	rm -f "$log"
	if [[ $tally =~ ^units:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
		skipped=$((skipped + BASH_REMATCH[3]))
	else
		echo "run_all: run_units.sh gave no tally" >&2
		failed=$((failed + 1))
	fi
fi

# ---- fuzz: a short pass of every libFuzzer harness (`make fuzzers` builds them in $FUZZ_DIR),
# from its seeds alone, FUZZ_SMOKE_SECONDS (default 2) each; each harness counts as one test.
fuzz_dir=${FUZZ_DIR:-build/fuzz}
if compgen -G "$fuzz_dir/fuzzers/fuzz_*" >/dev/null; then
	log=$(mktemp)
	FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-2} FUZZ_CORPUS=tmp FUZZ_DIR=$fuzz_dir \
		./tests/run_fuzz.sh | tee "$log"
	tally=$(tail -n 1 "$log")
	rm -f "$log"
	if [[ $tally =~ ^fuzz:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
		skipped=$((skipped + BASH_REMATCH[3]))
	else
		echo "run_all: run_fuzz.sh gave no tally" >&2
		failed=$((failed + 1))
	fi
else
	echo "run_all: no fuzzers in $fuzz_dir/fuzzers/ (run 'make fuzzers'): skipped" >&2
	skipped=$((skipped + 1))
fi

# ---- integration
junit=build/integration-junit.xml
JUNIT_XML=$junit ./tests/run_integration.sh
rc=$?
# pytest exits 0 (all passed), 1 (some failed), 5 (nothing collected), others (interrupted,
# internal or usage error). Counts come from its JUnit report.
counts=$(/usr/bin/python3 - "$junit" <<'PY' 2>/dev/null
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
s = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - s, f, s)
PY
)
if read -r p f s <<<"$counts" && [ -n "${s:-}" ]; then
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] || { [ "$rc" -eq 1 ] && [ "$f" -eq 0 ]; }; then
		echo "run_all: pytest exited $rc" >&2
		failed=$((failed + 1))
	fi
else
	echo "run_all: pytest exited $rc and wrote no report" >&2
	failed=$((failed + 1))
fi
if [ "$rc" -eq 5 ]; then
	echo "run_all: no integration tests were collected" >&2
fi

status=0
[ "$failed" -gt 0 ] && status=1
if [ "${CI:-}" = "true" ] && [ "$skipped" -gt 0 ]; then
	echo "run_all: CI=true and $skipped tests skipped: in CI every root/BPF test must run" >&2
	status=1
fi
# The last line of the run, always.
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
