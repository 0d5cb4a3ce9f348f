#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages weir builds, tests and benchmarks with, if any is missing.
set -euo pipefail
PKGS=(gcc g++ meson ninja-build pkg-config python3 libcriterion-dev liburing-dev libzmq3-dev
      flatbuffers-compiler libflatbuffers-dev libiceoryx-binding-c-dev iceoryx
      clang libclang-rt-14-dev iproute2 systemtap-sdt-dev bpftrace
      libdlpack-dev openmpi-bin)
missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "weir: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
