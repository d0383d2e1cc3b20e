#!/usr/bin/env bash
# Benchmark of memory while loading: each rank's peak resident memory growth while it reads its own subjects,
# against the bytes of those subjects (it should stay within about 1.5x), on 1, 2 and 3 ranks.
#
#   tools/bench_load.sh [DATA.h5]     (default: simulates 6 subjects x 5000 neurons x 2000 time points)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MSLR_BUILD_DIR:-$here/build}"
[[ -x "$build/tests/mslr_bench_load" ]] || "$here/tools/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
data="${1:-}"
if [[ -z "$data" ]]; then
  data="$(mktemp -d /tmp/mslr-bench-XXXXXX)/load.h5"
  "$build/mslr" simulate --out "$data" --subjects 6 --neurons-min 5000 --neurons-max 5000 --time-points 2000 --quiet
fi
for np in 1 2 3; do
  echo "== $np rank(s)"
  mpirun -np "$np" "$build/tests/mslr_bench_load" "$data"
done
