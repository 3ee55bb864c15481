#!/usr/bin/env bash
# The whole test suite: typecheck, lint, jest (unit, workflow, integration on real servers), and the
# trainer's pytest suite. PostgreSQL-backed tests use WEFT_TEST_POSTGRES_URL, or the server that jest's global setup
# brings up through scripts/ensure-postgres.sh (Debian's cluster when installed, else a private embedded-postgres one).
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
# Every temporary file of the run (jest's own scratch folder, pytest's tmp_path, the processes the tests start) goes
# under one folder that is removed at the end, so repeated runs do not fill the disk. WEFT_KEEP_TEST_TMP=1 keeps it.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weft-test-XXXXXX")
finish() { if [ "${WEFT_KEEP_TEST_TMP:-}" = 1 ]; then echo "kept the temporary files in $scratch"; else rm -rf -- "$scratch"; fi; }
trap finish EXIT
export TMPDIR=$scratch

failed=0
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "typecheck"; npm run -s typecheck || failed=1
step "lint"; npm run -s lint || failed=1

mkdir -p .weft
step "jest"
npx jest --runInBand --json --outputFile=.weft/jest-results.json "$@"
jest_status=$?
[ $jest_status -eq 0 ] || failed=1

pytest_passed=0; pytest_failed=0
if [ -d trainer/tests ] && [ $# -eq 0 ]; then
  step "pytest (trainer)"
  .venv/bin/python -m pytest -q trainer/tests -p no:cacheprovider | tee .weft/pytest.log
  pytest_status=${PIPESTATUS[0]}
  [ "$pytest_status" -eq 0 ] || failed=1
  pytest_passed=$(grep -oE '[0-9]+ passed' .weft/pytest.log | tail -1 | grep -oE '[0-9]+' || echo 0)
  pytest_failed=$(grep -oE '[0-9]+ (failed|error)' .weft/pytest.log | awk '{s+=$1} END {print s+0}')
fi

jest_passed=$(node -p "require('./.weft/jest-results.json').numPassedTests" 2>/dev/null || echo 0)
jest_failed=$(node -p "r=require('./.weft/jest-results.json'); r.numFailedTests + r.numRuntimeErrorTestSuites" 2>/dev/null || echo 1)
echo
echo "tests: $((jest_passed + pytest_passed)) passed, $((jest_failed + pytest_failed)) failed"
exit $failed
