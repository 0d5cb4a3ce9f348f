#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz.sh [meson test args...]: build the libFuzzer targets of tests/fuzz with
# clang (+ASan+UBSan) in build-fuzz and run each for its bounded number of
# executions (tests/fuzz/meson.build). scripts/test.sh calls it; run it alone
# to fuzz without the rest of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang CXX=clang++ meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true \
        -Db_sanitize=address,undefined -Db_lundef=false -Dtests=disabled >/dev/null
fi
ninja -C build-fuzz >/dev/null
exec meson test -C build-fuzz --suite fuzz --print-errorlogs "$@"
