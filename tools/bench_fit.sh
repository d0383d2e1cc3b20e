#!/usr/bin/env bash
# Benchmark of fitting speed (not a test: the figures depend on the machine). On simulated workloads like the
# Python fitter's own, it runs in one go: the PyTorch peer tools/bench_reference.py (a loop over subjects,
# autograd, torch.optim.Adam, one thread), and mslr on 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1
# thread, on the same file and the same model (the peer's: p-mode scaling none, no offsets, MLP 32,32 tanh,
# 10 minibatches). Each configuration runs --rounds times, alternating, and keeps its best time per epoch (the
# mean over the epochs after the first). Then a roofline per workload: FLOPs and bytes of an epoch from the
# shapes (tools/bench_roofline.py), this machine's product rate (the better of the BLAS's GEMM and mslr's own
# dense kernels) and read bandwidth on one core (mslr_bench_machine), and the fraction of that bound that
# mslr 1 x 1 achieves.
#
#   tools/bench_fit.sh [--workloads "small medium large"] [--rounds 2] [--out FOLDER] [--no-reference]
#
#   small   16 subjects x 300-800 neurons x 1500 time points
#   medium   6 subjects x 2000-5000 neurons x 1200 time points
#   large    4 subjects x 20000 neurons x 2000 time points
# Writes FOLDER/results.csv (workload, config, ranks, threads, seconds_per_epoch).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workloads="small medium large" rounds=2 out="" reference=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workloads) workloads="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --out) out="$2"; shift ;;
    --no-reference) reference=0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench_fit.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
build="${MSLR_BUILD_DIR:-$here/build}"
mslr="$build/mslr"
[[ -x "$mslr" && -x "$build/tests/mslr_bench_machine" ]] || "$here/tools/setup.sh"
python=/usr/bin/python3
[[ -x "$python" ]] || python=python3
if [[ $reference == 1 ]] && ! "$python" -c 'import torch' 2>/dev/null; then
  echo "bench_fit.sh: the reference needs Debian's python3-torch (apt-get install python3-torch)," \
       "or run with --no-reference" >&2
  exit 1
fi
out="${out:-$(mktemp -d /tmp/mslr-bench-XXXXXX)}"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
model=(--model.p-mode-scaling none --model.offsets false --model.hidden 32,32 --model.activation tanh)

simulate() {  # workload -> data file (made once, kept in the output folder)
  local f="$out/$1.h5"
  if [[ ! -f "$f" ]]; then
    case "$1" in
      small) "$mslr" simulate --out "$f" --subjects 16 --neurons-min 300 --neurons-max 800 --time-points 1500 --quiet ;;
      medium) "$mslr" simulate --out "$f" --subjects 6 --neurons-min 2000 --neurons-max 5000 --time-points 1200 --quiet ;;
      large) "$mslr" simulate --out "$f" --subjects 4 --neurons-min 20000 --neurons-max 20000 --time-points 2000 --quiet ;;
      *) echo "bench_fit.sh: unknown workload '$1'" >&2; exit 2 ;;
    esac
  fi
  echo "$f"
}

epochs_of() { case "$1" in small) echo 12 ;; medium) echo 8 ;; *) echo 5 ;; esac; }

# Mean seconds per epoch after the first, from a run folder's metrics.jsonl.
per_epoch() {
  "$python" - "$1/metrics.jsonl" <<'EOF'
import json, sys
e = [json.loads(line)["elapsed"] for line in open(sys.argv[1])]
print(f"{(e[-1] - e[0]) / (len(e) - 1):.6g}")
EOF
}

run_mslr() {  # data ranks threads epochs -> s/epoch (unbound: mpirun would bind a lone rank to one core)
  local run="$out/run-$2x$3"
  rm -rf "$run"
  mpirun -np "$2" --bind-to none "$mslr" fit --data "$1" --out "$run" --epochs "$4" --checkpoint-every 0 --threads "$3" \
    --blas-threads 1 --quiet "${model[@]}" >/dev/null
  per_epoch "$run"
}

run_reference() {  # data epochs -> s/epoch
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$python" "$here/tools/bench_reference.py" "$1" --epochs "$2" \
    --threads 1 | sed -n 's/^reference: \([0-9.e+-]*\) s\/epoch$/\1/p'
}

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }

rates="$("$build/tests/mslr_bench_machine" 1)"
gemm1="$(sed -n 's/^gemm_gflops //p' <<<"$rates")"
read1="$(sed -n 's/^read_gbs //p' <<<"$rates")"
read -r _ blas1 _ dense1 < <(grep blas_gflops <<<"$rates")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
     "one core: products $gemm1 GFLOP/s (BLAS GEMM $blas1, mslr's dense kernels $dense1), read $read1 GB/s;" \
     "$(date -u +%Y-%m-%d)"
echo "workload,config,ranks,threads,seconds_per_epoch" > "$out/results.csv"
configs=("1 1" "1 2" "2 1")
for w in $workloads; do
  data="$(simulate "$w")"
  epochs="$(epochs_of "$w")"
  declare -A best=()
  for ((r = 0; r < rounds; ++r)); do
    if [[ $reference == 1 ]]; then best[ref]="$(min "${best[ref]:-}" "$(run_reference "$data" "$epochs")")"; fi
    for c in "${configs[@]}"; do
      read -r ranks threads <<<"$c"
      best[$ranks x $threads]="$(min "${best[$ranks x $threads]:-}" "$(run_mslr "$data" "$ranks" "$threads" "$epochs")")"
    done
  done
  echo
  echo "== $w ($(basename "$data"), $epochs epochs, best of $rounds)"
  printf "%-22s %12s %12s\n" configuration s/epoch "vs reference"
  if [[ $reference == 1 ]]; then
    printf "%-22s %12s %12s\n" "reference (PyTorch)" "${best[ref]}" "1.0x"
    echo "$w,reference,1,1,${best[ref]}" >> "$out/results.csv"
  fi
  for c in "${configs[@]}"; do
    read -r ranks threads <<<"$c"
    s="${best[$ranks x $threads]}"
    ratio="-"
    [[ $reference == 1 ]] && ratio="$(awk -v a="${best[ref]}" -v b="$s" 'BEGIN { printf "%.1fx", a / b }')"
    printf "%-22s %12s %12s\n" "mslr $ranks rank x $threads thread" "$s" "$ratio"
    echo "$w,mslr,$ranks,$threads,$s" >> "$out/results.csv"
  done
  s11="${best[1 x 1]}"
  awk -v a="$s11" -v b="${best[2 x 1]}" -v c="${best[1 x 2]}" \
    'BEGIN { printf "2 ranks x 1 thread: %.2fx of 1 x 1; 1 rank x 2 threads: %.2fx (%+.0f%% against 2 x 1)\n", a / b, a / c, 100 * (c / b - 1) }'
  read -r _ gflop _ gbytes _ tf _ tb _ bound < <("$python" "$here/tools/bench_roofline.py" "$data" \
    --gemm-gflops "$gemm1" --read-gbs "$read1")
  awk -v gf="$gflop" -v gb="$gbytes" -v tf="$tf" -v tb="$tb" -v bound="$bound" -v s="$s11" \
    'BEGIN { printf "roofline (one core): %.2f GFLOP and %.3f GB per epoch -> %.3f s of products, %.3f s of reads;" \
                    " bound %.3f s/epoch; mslr 1 x 1 reaches %.0f%% of it (%.2fx the bound)\n",
                    gf, gb, tf, tb, bound, 100 * bound / s, s / bound }'
  unset best
done
echo
echo "results: $out/results.csv"
