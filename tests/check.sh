#!/bin/sh
# make check's runner: run make targets (each a whole run of the suite:
# `make test`, `make sanitize`, ...) in groups, the targets of a group at
# the same time, and add up what they passed, failed and skipped.
#
# Usage: tests/check.sh GROUP...   a GROUP is TARGET[:TARGET...]
#        (MAKE, CHECK_JOBS: the make to call and its jobs per target;
#        CHECK_PARALLEL=0 runs every target on its own, one after another)
#
# Why groups: a plain run's tests leave a CPU partly idle (they wait for
# faults, timers and I/O: `make test` used 85% of one of two CPUs), which a
# sanitizer run beside it takes.  Measured on two CPUs: 575 s one at a
# time, 539 s so (the sanitizer runs are CPU-bound: beside another run their
# tests take nearly twice as long).  The suite passes on a busy machine by
# design (it is run beside a CPU hog), and the runs share
# nothing but the Redis servers, whose test binary takes a lock
# (tests/run.sh).  Targets of a group must not build into the same build
# directory, unless it is built already (as below, before any group).
# A group's output is printed when all of it is done, target by target.
MAKE=${MAKE:-make}
JOBS=${CHECK_JOBS:-1}
tally=$(mktemp "${TMPDIR:-/tmp}/faultline-check.XXXXXX") || exit 2
logs=$(mktemp -d "${TMPDIR:-/tmp}/faultline-check-logs.XXXXXX") || exit 2
trap 'rm -rf "$tally" "$logs"' EXIT
trap 'exit 1' INT TERM HUP
rc=0

if $MAKE --no-print-directory check-exports; then
	echo "1 0 0 check-exports" >>"$tally"
else
	echo "0 1 0 check-exports" >>"$tally"
	rc=1
fi

# Run target $1 (output in $logs/$1); its exit status in $logs/$1.rc,
# how long it took (seconds) in $logs/$1.s.
run_target() {
	t0=$(date +%s)
	FL_TALLY=$tally FL_TALLY_NAME=$1 \
		$MAKE --no-print-directory -j"$JOBS" "$1" >"$logs/$1" 2>&1
	echo $? >"$logs/$1.rc"
	echo $(($(date +%s) - t0)) >"$logs/$1.s"
}

run_group() {
	targets=$(echo "$1" | tr ':' ' ')
	for t in $targets; do
		if [ "${CHECK_PARALLEL:-1}" = 0 ]; then
			run_target "$t"
		else
			run_target "$t" &
		fi
	done
	wait
	for t in $targets; do
		echo "==== make $t ($(cat "$logs/$t.s") s)"
		cat "$logs/$t"
		[ "$(cat "$logs/$t.rc" 2>/dev/null)" = 0 ] || rc=1
		# A run that printed no tally line ran no test: a failure.
		if ! grep -q " $t\$" "$tally"; then
			echo "0 1 0 $t(no-result)" >>"$tally"
			rc=1
		fi
	done
}

# Everything is built first, one run's binaries at a time (a build keeps
# both CPUs busy), so that the runs side by side only run tests.
start=$(date +%s)
for t in $(echo "$@" | tr ':' ' '); do
	$MAKE --no-print-directory -j"$JOBS" BUILD_ONLY=1 "$t" || rc=1
done
echo "==== built: $(($(date +%s) - start)) s"
for group in "$@"; do
	g0=$(date +%s)
	run_group "$group"
	echo "==== group $group: $(($(date +%s) - g0)) s"
done

echo "==== make check ($(($(date +%s) - start)) s after check-exports)"
awk '{ printf "  %-24s %s passed, %s failed, %s skipped\n", $4, $1, $2, $3;
       p += $1; f += $2; s += $3 }
     END { printf "check: %d passed, %d failed, %d skipped\n", p, f, s }' \
	"$tally"
exit $rc
