#!/usr/bin/env bash
# Installs what is missing, builds mslr, and runs the whole test suite (unit, multi-rank, end-to-end).
#
#   tools/test.sh [ctest arguments...]     e.g. tools/test.sh -L unit
#   tools/test.sh --sanitize [ctest arguments...]
#       builds the unit and multi-rank tests (and only what they run) into build-sanitize/ with
#       AddressSanitizer and UndefinedBehaviorSanitizer (RelWithDebInfo) and runs them under those; any report
#       fails the run. Leaks that third-party
#       libraries keep until exit are suppressed in tests/sanitizer.supp, each with its reason.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${MSLR_BUILD_DIR:-$here/build}"
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  build_dir="${MSLR_SANITIZE_BUILD_DIR:-$here/build-sanitize}"
  "$here/tools/setup.sh" --build-dir "$build_dir" --build-type RelWithDebInfo --target mslr_test_binaries \
    -- -DMSLR_SANITIZE=address,undefined
  export LSAN_OPTIONS="suppressions=$here/tests/sanitizer.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  cd "$build_dir"
  ASAN_OPTIONS="detect_leaks=1" ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" -L unit "$@"
  # Under MPI, full stacks for leak reports: the fast unwinder stops in Open MPI's plugins (built without frame
  # pointers), and the suppressions of what Open MPI keeps until exit match on any frame of the stack.
  ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0" ctest --output-on-failure -L mpi "$@"
  exit
fi
"$here/tools/setup.sh" --build-dir "$build_dir"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
