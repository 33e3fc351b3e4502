#!/usr/bin/env bash
# The main job from a fresh Debian machine: installs missing packages, builds the
# release preset and runs ipguard's end-to-end path. Until the fingerprint experiment
# lands, that path is `ipguard doctor`: the build, the devices, and a forward/backward
# check of the engine on each device (autodiff against finite differences, CUDA against
# the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
build/release/tools/ipguard doctor "$@"
