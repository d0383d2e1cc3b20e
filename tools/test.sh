#!/usr/bin/env bash
# Installs what is missing, builds mslr, and runs the whole test suite (unit, multi-rank, end-to-end).
#
#   tools/test.sh [ctest arguments...]     e.g. tools/test.sh -L unit
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${MSLR_BUILD_DIR:-$here/build}"
"$here/tools/setup.sh" --build-dir "$build_dir"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
