#!/usr/bin/env bash
# run.sh - builds tally's libFuzzer targets with clang in their own build
# tree and runs each for a bounded time (ctest label "fuzz"). `make test`
# calls it; it needs no database.
#
#   tests/fuzz/run.sh                 configure + build build/fuzz, run every target
#   FUZZ_SECONDS=300 tests/fuzz/run.sh   longer runs (default 30 s per target)
#
# Environment: FUZZ_BUILD_DIR (default <repo>/build/fuzz), FUZZ_SECONDS (per
# target, default 30: five targets ~ 2.5 minutes), FUZZ_JOBS (targets run at
# once, default 1), JOBS (build parallelism, default 2).
#
# The libraries are compiled with -fsanitize=fuzzer-no-link,address,undefined
# (coverage for the fuzzer, ASan/UBSan for every byte they touch); the targets
# add -fsanitize=fuzzer. Warnings do not fail this build (TALLY_WERROR=OFF):
# clang warns about things gcc does not, and the gcc builds own -Werror; the
# fuzz targets themselves still compile with -Werror. A crash leaves its
# input in <build>/tests/fuzz/artifacts/<target>/; reproduce it with
#   <build>/tests/fuzz/<target> <that file>
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}
seconds=${FUZZ_SECONDS:-30}
fuzz_jobs=${FUZZ_JOBS:-1}
jobs=${JOBS:-2}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
flags="$flags -fno-omit-frame-pointer -gline-tables-only -O1"

command -v clang >/dev/null || { echo "run.sh: clang is required" >&2; exit 2; }

echo "==== fuzz: configure $build"
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTALLY_FUZZ=ON \
    -DTALLY_WERROR=OFF -DTALLY_FUZZ_SECONDS="$seconds" \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null

echo "==== fuzz: build"
cmake --build "$build" -j"$jobs" --target tally_fuzz

# Leaks are findings; a sanitizer report aborts the input (libFuzzer saves it).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

echo "==== fuzz: ${seconds}s per target"
ctest --test-dir "$build" -L fuzz --no-tests=error --output-on-failure -j"$fuzz_jobs"
