#!/bin/sh
# Run every test binary of a build directory, each under a time limit, and
# print one final line "N passed, N failed, N skipped" (test cases; CI reads
# it).  Exit non-zero if any case failed or any binary crashed, hung or did
# not finish.
#
# A binary that exits 77 was skipped (as with automake and liburing: it
# cannot run here, e.g. userfaultfd is not permitted); its reason is
# printed.  Under CI (CI=true) a skip is a failure: CI must never pass
# without having run the suite.
#
# Usage: tests/run.sh [BUILD_DIR]   (FL_BINARY_TIMEOUT=seconds, default 180;
#        FL_SKIP="test_a test_b" leaves those binaries out, said so;
#        FL_TALLY=file appends "passed failed skipped name" to file, for
#        make check's total, with FL_TALLY_NAME as the name)
BUILD=${1:-build}
# Every engine checks, when destroyed, that nothing is left charged.
export FAULTLINE_CHECK_CHARGES=1
LIMIT=${FL_BINARY_TIMEOUT:-180}
pass=0
fail=0
skip=0
skipped_binaries=0
ran_binaries=0
bad=""
log=$(mktemp "${TMPDIR:-/tmp}/faultline-run.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT INT TERM

# The reason a skipped binary gave: its SKIP line, or its last line.
skip_reason() {
	r=$(grep -m 1 '^SKIP ' "$log" | sed 's/^SKIP [^:]*: *//')
	[ -n "$r" ] || r=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
	echo "${r:-no reason given}"
}

found=0
for t in "$BUILD"/tests/test_*; do
	case "$t" in *.o | *.d) continue ;; esac
	[ -f "$t" ] && [ -x "$t" ] || continue
	found=1
	name=$(basename "$t")
	case " ${FL_SKIP:-} " in *" $name "*)
		echo "SKIP $name (FL_SKIP)"
		continue ;;
	esac
	limit=$LIMIT
	# The injection sweep bounds each of its runs itself (a hang costs
	# it a few seconds); its whole takes longer under the sanitizers.
	[ "$name" = test_inject ] && limit=$((LIMIT * 3))
	# Runs side by side (make check) share the Redis servers: one
	# test_redis at a time, since its cases reshard the cluster.
	lock=
	if [ "$name" = test_redis ] && command -v flock >/dev/null; then
		lock="flock ${TMPDIR:-/tmp}/faultline-redis-tests.lock"
	fi
	$lock timeout -k 10 "$limit" "$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^SKIP ' "$log")
	if [ "$rc" -eq 77 ] && [ "$f" -eq 0 ]; then
		if [ "$s" -eq 0 ]; then
			echo "SKIP $name: $(skip_reason)"
			s=1
		fi
		skipped_binaries=$((skipped_binaries + 1))
	elif ! grep -q "^SUMMARY $name: " "$log"; then
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "FAIL $name: binary timed out after ${limit}s"
		else
			echo "FAIL $name: binary did not finish (exit status $rc)"
		fi
		f=$((f + 1))
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exit status $rc with no failed case"
		f=1
	fi
	[ "$rc" -eq 77 ] || ran_binaries=$((ran_binaries + 1))
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
	[ "$f" -ne 0 ] && bad="$bad $name"
done
# The README's example, on a file of its own: byte 0 'A' must become '@'.
if [ -x "$BUILD/examples/hello" ]; then
	dir=$(mktemp -d /var/tmp/faultline-example.XXXXXX) || exit 2
	printf 'A%4095s' x >"$dir/data.bin"
	out=$(timeout 60 "$BUILD/examples/hello" "$dir/data.bin" 2>&1)
	rc=$?
	first=$(head -c 1 "$dir/data.bin")
	echo "$out"
	if [ "$rc" -eq 0 ] && [ "$first" = "@" ] &&
		echo "$out" | grep -q '^first byte: 65$' &&
		echo "$out" | grep -q 'written 1$'; then
		echo "PASS example.readme_hello"
		pass=$((pass + 1))
	elif [ "$skipped_binaries" -ne 0 ] &&
		echo "$out" | grep -q '^fl_engine_create: Operation not permitted'; then
		# The same reason the suite was skipped for.
		echo "SKIP example.readme_hello: userfaultfd not permitted"
		skip=$((skip + 1))
	else
		echo "FAIL example.readme_hello (exit $rc, first byte '$first')"
		fail=$((fail + 1))
		bad="$bad example"
	fi
	rm -rf "$dir"
fi
if [ "$found" -eq 0 ]; then
	echo "no test binaries in $BUILD/tests"
	fail=$((fail + 1))
fi
if [ "${CI:-}" = true ] && [ "$skipped_binaries" -ne 0 ]; then
	echo "FAIL run.sh: CI=true and $skipped_binaries of" \
		"$((skipped_binaries + ran_binaries)) binaries skipped" \
		"(CI must run the whole suite)"
	fail=$((fail + 1))
fi
[ -n "$bad" ] && echo "failing binaries:$bad"
if [ -n "${FL_TALLY:-}" ]; then
	echo "$pass $fail $skip ${FL_TALLY_NAME:-$BUILD}" >>"$FL_TALLY"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
