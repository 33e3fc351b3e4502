#!/usr/bin/env bash
# The whole test suite from a fresh Debian machine: installs missing packages, builds
# the release preset (CUDA compiled when the toolkit is present), runs ctest.
#   tools/test.sh [preset]      preset: release (default), debug, cpu-only, asan
# CUDA tests report themselves as skipped where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
tools/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset" -j "$(nproc)"
