#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh TARGET SEED_DIR WORK_DIR RUNS SECONDS: run one libFuzzer target for a
# bounded number of executions and time, starting from the committed seed
# corpus (read-only) and writing what it finds to WORK_DIR (in the build tree).
# A crash exits 1: libFuzzer's default (77) would read as a skip to meson.
set -eu
exe=$1 seeds=$2 work=$3 runs=$4 secs=$5
mkdir -p "$work"
exec "$exe" "$work" "$seeds" -runs="$runs" -max_total_time="$secs" -seed=1 \
    -print_final_stats=1 -max_len=65536 -timeout=10 -error_exitcode=1
