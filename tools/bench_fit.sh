#!/usr/bin/env bash
# Benchmark of fitting speed: time per epoch and throughput (training samples x neurons per second) of the same
# fit on 1 and 2 ranks (and more when asked), on 4 simulated subjects x 5000 neurons x 2000 time points.
#
#   tools/bench_fit.sh [--ranks "1 2"] [--epochs 5] [--neurons 5000] [--time-points 2000] [--subjects 4]
#                      [--cores N] [--out FOLDER]
#
# Every run gets the same number of cores in all (--cores, default: all of this machine), split evenly among its
# ranks as threads. Prints a table and writes FOLDER/results.csv (for tools/plot_scaling.py). Not a test: the
# figures depend on the machine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks="1 2" epochs=5 neurons=5000 time_points=2000 subjects=4 cores="$(nproc)" out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ranks) ranks="$2" ;; --epochs) epochs="$2" ;; --neurons) neurons="$2" ;; --time-points) time_points="$2" ;;
    --subjects) subjects="$2" ;; --cores) cores="$2" ;; --out) out="$2" ;;
    *) echo "bench_fit.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
mslr="${MSLR_BUILD_DIR:-$here/build}/mslr"
[[ -x "$mslr" ]] || "$here/tools/setup.sh"
out="${out:-$(mktemp -d /tmp/mslr-bench-XXXXXX)}"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
data="$out/bench-data.h5"
[[ -f "$data" ]] || "$mslr" simulate --out "$data" --subjects "$subjects" --neurons-min "$neurons" \
  --neurons-max "$neurons" --time-points "$time_points" --quiet
# Training samples per subject: pairs inside the first round(0.8 T) points.
samples=$(( (time_points * 8 + 5) / 10 - 1 ))
work=$(( subjects * samples * neurons ))
echo "ranks,threads_per_rank,seconds_per_epoch,sample_neurons_per_second" > "$out/results.csv"
printf "%-6s %-8s %-12s %-28s\n" ranks threads s/epoch "throughput (samples*neurons/s)"
for r in $ranks; do
  t=$(( cores / r > 0 ? cores / r : 1 ))
  # A warm-up epoch first (page cache, allocator), then the measured fit.
  mpirun -np "$r" "$mslr" fit --data "$data" --out "$out/r$r" --epochs 1 --checkpoint-every 0 --threads "$t" --quiet
  line=$(mpirun -np "$r" "$mslr" fit --data "$data" --out "$out/r$r" --epochs "$epochs" --checkpoint-every 0 \
           --threads "$t" --update-interval "$epochs" | grep '^done:')
  spe=$(sed -E 's/.*\(([0-9.e+-]+) s\/epoch\).*/\1/' <<<"$line")
  thr=$(awk -v w="$work" -v s="$spe" 'BEGIN { printf "%.3g", w / s }')
  printf "%-6s %-8s %-12s %-28s\n" "$r" "$t" "$spe" "$thr"
  echo "$r,$t,$spe,$thr" >> "$out/results.csv"
done
echo "($subjects subjects x $neurons neurons x $time_points time points, $samples training samples each; $out)"
