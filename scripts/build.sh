#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build.sh DIR [meson options...]: configure DIR once (or reconfigure), then build it.
set -euo pipefail
dir=$1; shift
if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
else
    meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
