#!/usr/bin/env bash
# The whole of mslr from a fresh clone, in a few minutes on 2 cores: install what is missing, build, simulate a
# multi-subject dataset, fit it on 2 MPI ranks (one subject held out of the fit), predict held-out time points
# of every subject (the held-out subject from its neurons' positions alone), evaluate, and draw the plots.
#
#   tools/demo.sh [OUTPUT_FOLDER]        (default: demo-out/ in the repository)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "${1:-$here/demo-out}")"
"$here/tools/setup.sh" --target mslr  # the program alone: the tests are tools/test.sh's
mslr="${MSLR_BUILD_DIR:-$here/build}/mslr"
py=/usr/bin/python3
# Open MPI refuses root without these; one thread per rank for LibTorch and OpenBLAS on this 2-core demo.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$out" && mkdir -p "$out"
cd "$out"

echo "== simulate: 8 subjects, 300-800 neurons each, 1500 time points"
"$mslr" simulate --out data.h5 --subjects 8 --seed 1
echo "== fit on 2 ranks: subjects 0-6 (subject07 is held out), 100 epochs"
mpirun -np 2 "$mslr" fit --data data.h5 --out run --epochs 100 --lr-schedule 0:0.01,70:0.003 \
  --subjects 0,1,2,3,4,5,6 --threads 1 --update-interval 10
echo "== predict the last 20% of every subject's time points on 2 ranks"
mpirun -np 2 "$mslr" predict --checkpoint run --out predictions.h5 --threads 1
echo "== evaluate"
"$mslr" eval --predictions predictions.h5 | tee eval.txt
"$mslr" eval --predictions predictions.h5 --json > eval.json
echo "== plots"
"$py" "$here/tools/plot_log.py" run --out log.png
"$py" "$here/tools/plot_modes.py" run --truth --out modes.png
"$py" "$here/tools/plot_predictions.py" predictions.h5 --out predictions.png
"$py" "$here/tools/plot_predictions.py" predictions.h5 --subject subject7 --out predictions-held-out.png
echo
echo "results in $out:"
echo "  data.h5                 simulated data with its ground truth (mslr inspect data.h5)"
echo "  run/                    config.ini, metrics.jsonl, checkpoints/ (latest -> final.h5)"
echo "  predictions.h5          held-out predictions; eval.txt and eval.json score them"
echo "  log.png modes.png predictions.png predictions-held-out.png"
