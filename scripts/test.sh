#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite: install what is missing, then build and run the
# Criterion suites three times - optimized, under AddressSanitizer+UBSan,
# the channel/engine suites under ThreadSanitizer, and the libFuzzer targets
# for a bounded number of executions each (scripts/fuzz.sh). Ends with one line
# "N passed, N failed" counting every Criterion test of every run.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1

passed=0; failed=0; status=0
# Add the tests of one meson test run to the totals (scripts/count_tests.py).
count() {
    local p=0 f=1
    if [ -f "$1/meson-logs/testlog.txt" ]; then
        read -r p f < <(python3 scripts/count_tests.py "$1/meson-logs/testlog.txt") || { p=0; f=1; }
    fi
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}
run() { # run NAME BUILDDIR [meson test args...]
    local name=$1 dir=$2; shift 2
    echo "== $name"
    if ! meson test -C "$dir" --print-errorlogs "$@"; then status=1; fi
    count "$dir"
}

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1

bash scripts/build.sh build-test --buildtype=debugoptimized || exit 1
run "optimized" build-test

bash scripts/build.sh build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || exit 1
run "asan+ubsan" build-asan

bash scripts/build.sh build-tsan --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false || exit 1
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run "tsan (channels, engine)" build-tsan --suite tsan

# libFuzzer targets (tests/fuzz): each a bounded number of executions from its seed corpus.
echo "== fuzz"
if ! bash scripts/fuzz.sh; then status=1; fi
count build-fuzz

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
