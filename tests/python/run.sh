#!/bin/sh
# Run the Python package's tests (tests/python, pytest) against the library
# named by FAULTLINE_LIBRARY (`make test-python` sets it to the build's),
# and print one final line "N passed, N failed, N skipped" as tests/run.sh
# does (FL_TALLY=file appends "passed failed skipped name" for make check,
# with FL_TALLY_NAME as the name).
#
# The interpreter: $PYTHON if set, else the first of python3 and
# /usr/bin/python3 (Debian's, which python3-pytest serves) that has pytest.
# Without pytest the run is skipped, with the reason; under CI (CI=true) a
# skip is a failure, as in tests/run.sh.
DIR=$(cd "$(dirname "$0")" && pwd)
NAME=${FL_TALLY_NAME:-test-python}
export FAULTLINE_CHECK_CHARGES=1 PYTHONDONTWRITEBYTECODE=1

tally() {
	[ -n "${FL_TALLY:-}" ] && echo "$1 $2 $3 $NAME" >>"$FL_TALLY"
	echo "$1 passed, $2 failed, $3 skipped"
}

py=""
for p in ${PYTHON:-python3 /usr/bin/python3}; do
	if "$p" -c 'import pytest' 2>/dev/null; then
		py=$p
		break
	fi
done
if [ -z "$py" ]; then
	echo "SKIP $NAME: pytest is not installed for ${PYTHON:-python3 or /usr/bin/python3} (Debian: apt-get install python3-pytest python3-numpy)"
	if [ "${CI:-}" = true ]; then
		echo "FAIL $NAME: CI=true and the Python tests were skipped"
		tally 0 1 1
		exit 1
	fi
	tally 0 0 1
	exit 0
fi

log=$(mktemp "${TMPDIR:-/tmp}/faultline-pytest.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT INT TERM
echo "$py -m pytest $DIR (library: ${FAULTLINE_LIBRARY:-found by the package})"
timeout -k 10 "${FL_BINARY_TIMEOUT:-180}" "$py" -m pytest -q -rs -p no:cacheprovider "$DIR" >"$log" 2>&1
rc=$?
cat "$log"
# pytest's last line: "3 failed, 17 passed, 2 skipped, 1 error in 1.2s".
last=$(grep -E '[0-9]+ (passed|failed|skipped|errors?)' "$log" | tail -n 1)
count() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
pass=$(count passed)
fail=$(($(count failed) + $(count 'errors?')))
skip=$(count skipped)
if [ -z "$last" ] || { [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; }; then
	echo "FAIL $NAME: pytest exited with status $rc without a failed test (crashed, timed out or found no tests)"
	fail=$((fail + 1))
fi
if [ "${CI:-}" = true ] && [ "$skip" -ne 0 ]; then
	echo "FAIL $NAME: CI=true and $skip Python tests skipped (CI must run them all)"
	fail=$((fail + 1))
fi
tally "$pass" "$fail" "$skip"
[ "$fail" -eq 0 ]
