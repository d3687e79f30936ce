#!/usr/bin/env bash
# test.sh - everything `make test` (and so CI) runs, start to finish.
#
#   1. tests/harness/deps.sh (installs what is missing)
#   2. configure and build the debug and asan presets (-j2)
#   3. one throwaway PostgreSQL cluster in a mktemp directory; TALLY_TEST_DATABASE_URL points
#      at it (the C harness makes a fresh database per test on that server)
#   4. ctest --preset debug, then ctest --preset asan (the black-box tests are ctest tests,
#      label "blackbox", so they run against both builds of the daemons)
#   5. the libFuzzer targets (tests/fuzz/run.sh: a clang build tree, 20 s per target)
#   6. stops everything it started, on success and on failure, and prints one summary line
#
# Environment: JOBS (build parallelism, default 2); CTEST_ARGS (extra ctest arguments, e.g.
# "-L unit" or "-j2"); ASAN_OPTIONS/UBSAN_OPTIONS override the loud defaults below.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
harness=$root/tests/harness
cd "$root"
jobs=${JOBS:-2}
t0=$(date +%s)
tmp=""
results=()
status=0

elapsed() {
    local s=$(($(date +%s) - t0))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# phase NAME: a header with the time since the start
phase() {
    echo "==== $* [$(elapsed)]"
}

cleanup() {
    local rc=$? pidfile
    set +e
    if [ -n "$tmp" ]; then
        # a black-box run killed by ctest's timeout cannot stop its own daemons
        for pidfile in "$tmp"/tmp/tally-blackbox.*/*.pid; do
            [ -e "$pidfile" ] || continue
            "$harness/daemon.sh" stop "$(basename "$pidfile" .pid)" "$(dirname "$pidfile")" >/dev/null 2>&1
        done
        "$harness/pg.sh" destroy "$tmp/pg"
        rm -rf "$tmp"
    fi
    [ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc
    echo
    echo "==== make test: ${results[*]:-nothing ran}; $([ $status -eq 0 ] && echo PASSED || echo FAILED) in $(elapsed)"
    exit $status
}
trap cleanup EXIT
trap 'echo "make test: interrupted" >&2; exit 130' INT TERM

phase dependencies
"$harness/deps.sh"

for preset in debug asan; do
    phase "build ($preset)"
    cmake --preset "$preset" >/dev/null
    if cmake --build --preset "$preset" -j"$jobs"; then
        results+=("build-$preset ok")
    else
        results+=("build-$preset FAILED")
        status=1
        exit 1
    fi
done

phase "throwaway PostgreSQL"
tmp=$(mktemp -d /tmp/tally-test.XXXXXX)
mkdir -p "$tmp/tmp"
# like /tmp: a test that runs something as another user (postgres) can use it
chmod 0755 "$tmp"
chmod 1777 "$tmp/tmp"
TALLY_TEST_DATABASE_URL=$("$harness/pg.sh" start "$tmp/pg")
export TALLY_TEST_DATABASE_URL
echo "TALLY_TEST_DATABASE_URL=$TALLY_TEST_DATABASE_URL"
# Every test's temporary files (and the black-box daemons' pid files) land in here.
export TMPDIR=$tmp/tmp
# One Go build cache for both presets (examples/go builds grpc-go from Debian's sources:
# minutes when cold); under build/, which `make clean` removes.
export TALLY_GO_CACHE=${TALLY_GO_CACHE:-$root/build/go-cache}

# Sanitizer failures are fatal and loud. LeakSanitizer cannot run under ptrace (gdb,
# strace, valgrind): set ASAN_OPTIONS=detect_leaks=0 yourself when debugging that way.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:strict_string_checks=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:report_error_type=1}

# One test at a time: the tests share one PostgreSQL cluster, and the commit fence
# (pg_snapshot_xmin) is cluster-wide, so a test that holds a transaction open on purpose
# (tests/query's blocked_reason) would stall the projector of a test running beside it.
export CTEST_PARALLEL_LEVEL=${CTEST_PARALLEL_LEVEL:-1}
read -r -a extra <<<"${CTEST_ARGS:-}"
for preset in debug asan; do
    phase "ctest --preset $preset"
    if ctest --preset "$preset" --no-tests=error "${extra[@]}" | tee "$tmp/ctest.log"; then
        results+=("ctest-$preset ok")
    else
        results+=("ctest-$preset FAILED")
        status=1
    fi
    # ctest survives ^C (it marks the running test INTERRUPT and goes on), and so would
    # this script: bash ignores a SIGINT that its foreground child handled.
    if grep -q '(INTERRUPT)$' "$tmp/ctest.log"; then
        results+=("interrupted")
        exit 130
    fi
done

# 5. the libFuzzer targets (their own clang build tree), each for a bounded time
phase fuzz
if JOBS=$jobs FUZZ_SECONDS=${FUZZ_SECONDS:-20} "$root/tests/fuzz/run.sh"; then
    results+=("fuzz ok")
else
    results+=("fuzz FAILED")
    status=1
fi
