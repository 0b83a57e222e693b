#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the integration tests (pytest, Debian's python3) from the repository root.
#   tests/run_integration.sh [pytest args...] [tests/integration/test_x.py ...]
# With no test file or directory among the arguments, the whole of tests/integration runs.
# Needs root for everything that loads BPF; without root those tests skip with the reason.
# JUnit XML goes to $JUNIT_XML (default build/integration-junit.xml) for run_all.sh's tally.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

PYTHON=/usr/bin/python3
junit=${JUNIT_XML:-build/integration-junit.xml}
mkdir -p "$(dirname "$junit")"
rm -f "$junit"
export PYTHONDONTWRITEBYTECODE=1
targets=(tests/integration)
for arg in "$@"; do
	case $arg in
	tests/integration/* | */test_*.py | test_*.py) targets=() ;;
	esac
done
exec "$PYTHON" -m pytest -ra --junitxml="$junit" -o junit_family=xunit2 "${targets[@]}" "$@"
