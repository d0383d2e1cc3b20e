#!/usr/bin/env bash
# Fuzzes one of mslr's parsers with libFuzzer (Debian's clang), under AddressSanitizer and
# UndefinedBehaviorSanitizer.
#
#   tools/fuzz.sh TARGET SECONDS [--merge] [--no-build] [-- LIBFUZZER_ARGS...]
#       TARGET: data_reader, checkpoint_reader or options_parser (tests/fuzz/TARGET.cpp)
#
# Builds into build-fuzz/ (only the target), starts from the target's corpus in tests/fuzz/corpus/TARGET/ and
# grows a working corpus in build-fuzz/corpus/TARGET/. The run goes on past findings (libFuzzer's fork mode):
# each crash, sanitizer report or input that escaped mslr's checks is saved in build-fuzz/findings/TARGET/ and
# named at the end with the executions made. Replay one with build-fuzz/tests/fuzz/mslr_fuzz_TARGET FILE.
# --merge adds to tests/fuzz/corpus/TARGET/ the inputs of the working corpus that reach new code (commit them:
# CI replays that corpus as a regression test). --no-build runs the fuzzer already built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,14p' "$0"; exit 2; }
[[ $# -ge 2 ]] || usage
target="$1" seconds="$2"
shift 2
merge=0 build=1
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --merge) merge=1 ;;
    --no-build) build=0 ;;
    --) shift; extra=("$@"); break ;;
    *) usage ;;
  esac
  shift
done
[[ -f "$here/tests/fuzz/$target.cpp" && "$target" != replay ]] || {
  echo "fuzz.sh: no fuzz target '$target' (data_reader, checkpoint_reader, options_parser)" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang and libFuzzer (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

build_dir="${MSLR_FUZZ_BUILD_DIR:-$here/build-fuzz}"
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  mkdir -p "$build_dir"
  CC=clang CXX=clang++ cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMSLR_FUZZ=ON \
    -DMSLR_SANITIZE=address,undefined >"$build_dir/configure.log" 2>&1 || {
    cat "$build_dir/configure.log" >&2; exit 1; }
fi
if [[ $build -eq 1 ]]; then
  cmake --build "$build_dir" --target "mslr_fuzz_$target" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
fi
fuzzer="$build_dir/tests/fuzz/mslr_fuzz_$target"

seeds="$here/tests/fuzz/corpus/$target"
corpus="$build_dir/corpus/$target"
findings="$build_dir/findings/$target"
mkdir -p "$corpus" "$findings"
log="$build_dir/fuzz-$target.log"
# LibTorch and HDF5 keep some allocations until exit (tests/sanitizer.supp); one thread each is enough here.
# Leak checks are off here: libFuzzer's, after every input that allocated more than it freed, scans LibTorch's
# whole heap and makes a run 50 times slower, and the one at the exit of each forked job would blame whatever
# HDF5 lost on a damaged file on no input at all. Leaks are found where the corpora are replayed under the
# sanitizers with full stacks (tools/test.sh --sanitize), and HDF5's own suppressed there (tests/sanitizer.supp).
export LSAN_OPTIONS="suppressions=$here/tests/sanitizer.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" ASAN_OPTIONS="detect_leaks=0"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "fuzz.sh: $target for $seconds s; log $log"
set +e
"$fuzzer" "$corpus" "$seeds" -max_total_time="$seconds" -fork=1 -ignore_crashes=1 -ignore_ooms=1 \
  -ignore_timeouts=1 -detect_leaks=0 -timeout=20 -rss_limit_mb=4096 -artifact_prefix="$findings/" -print_final_stats=1 \
  "${extra[@]}" >"$log" 2>&1
status=$?
set -e
tail -n 3 "$log"
# fork mode's progress lines: "#RUNS: cov: ... exec/s N ... oom/timeout/crash: O/T/C time: ..."
last=$(grep -E '^#[0-9]+:' "$log" | tail -1 || true)
runs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
rate=$(grep -oE 'exec/s:? [0-9]+' <<<"$last" | grep -oE '[0-9]+$' || true)
found=$(find "$findings" -type f | wc -l)
echo "fuzz.sh: $target: ${runs:-?} executions (${rate:-?}/s), $found finding(s) in $findings (libFuzzer exit $status)"
find "$findings" -type f | head -20
if [[ $merge -eq 1 ]]; then
  before=$(ls "$seeds" | wc -l)
  "$fuzzer" -merge=1 "$seeds" "$corpus" >"$build_dir/merge-$target.log" 2>&1
  echo "fuzz.sh: corpus tests/fuzz/corpus/$target: $before -> $(ls "$seeds" | wc -l) inputs"
fi
[[ $found -eq 0 ]]
