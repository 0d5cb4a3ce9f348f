#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing, build, and run the market-data demo pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build --buildtype=release
exec ./build/examples/weir-marketdata "$@"
