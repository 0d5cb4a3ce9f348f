#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing, build (release, in build-demo/, the
# script's own folder: a build/ of yours is left alone), and run the market-data
# demo pipeline. Arguments go to weir-marketdata.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build-demo --buildtype=release
exec ./build-demo/examples/weir-marketdata "$@"
