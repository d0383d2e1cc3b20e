#!/usr/bin/env bash
# A scaling study: the same fit on 1, 2, 4, ... ranks inside one allocation; time per epoch and parallel
# efficiency go to scaling/results.csv and scaling/scaling.png.
#
#   DATA=data.h5 RANKS="1 2 4 8 16" sbatch --ntasks=16 jobs/slurm-scaling.sh
#
# Environment: DATA (required), RANKS (rank counts, each at most the allocation's tasks), EPOCHS (default 20),
# OUT (default scaling-<jobid>), MSLR, MSLR_ARGS (e.g. "--gpus-per-rank 1" on GPU nodes), PYTHON (with
# matplotlib, for the plot), MSLR_TOOLS (the
# repository's tools/ folder, for the plot; default: next to this script when run from the repository).
#SBATCH --job-name=mslr-scaling
#SBATCH --ntasks=16
#SBATCH --cpus-per-task=4
#SBATCH --time=2:00:00
#SBATCH --output=mslr-scaling-%j.out
set -euo pipefail

mslr="${MSLR:-mslr}"
data="${DATA:?set DATA to the mslr-data file to fit}"
out="${OUT:-${SCRATCH:-.}/scaling-${SLURM_JOB_ID}}"
epochs="${EPOCHS:-20}"
threads="${SLURM_CPUS_PER_TASK:-1}"
# Slurm 22.05 and later do not hand the job's --cpus-per-task on to srun: say it again, or each rank gets one
# core.
export SRUN_CPUS_PER_TASK="$threads"
# Run folders belong on the scratch file system ($SCRATCH where the site sets it). On Lustre, HDF5's file
# locking is often unsupported (HDF5_USE_FILE_LOCKING=FALSE, the default here, turns it off), and checkpoints,
# which all ranks write together, are faster with their folder striped over several OSTs
# (lfs setstripe -c 4 "$out/checkpoints" before the first one).
export HDF5_USE_FILE_LOCKING="${HDF5_USE_FILE_LOCKING:-FALSE}"
tools="${MSLR_TOOLS:-${SLURM_SUBMIT_DIR:-.}/tools}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
mkdir -p "$out"
echo "ranks,seconds_per_epoch,seconds,epochs,objective" > "$out/results.csv"
for r in ${RANKS:-1 2 4 8 16}; do
  # Checkpoints only at the end: the study measures fitting, not I/O.
  # shellcheck disable=SC2086
  line=$(srun --mpi=pmix --kill-on-bad-exit=1 -n "$r" "$mslr" fit --data "$data" --out "$out/r$r" --overwrite --epochs "$epochs" \
           --checkpoint-every 0 --threads "$threads" --update-interval "$epochs" ${MSLR_ARGS:-} | grep '^done:')
  echo "$r ranks: $line"
  # "done: E epochs, S s of fitting (T s/epoch), objective O, ranks R, ..."
  s=$(sed -E 's/.* ([0-9.e+-]+) s of fitting.*/\1/' <<<"$line")
  t=$(sed -E 's/.*\(([0-9.e+-]+) s\/epoch\).*/\1/' <<<"$line")
  o=$(sed -E 's/.*objective ([0-9.e+-]+),.*/\1/' <<<"$line")
  echo "$r,$t,$s,$epochs,$o" >> "$out/results.csv"
done
cat "$out/results.csv"
if [[ -f "$tools/plot_scaling.py" ]]; then
  "${PYTHON:-python3}" "$tools/plot_scaling.py" "$out/results.csv" --out "$out/scaling.png"
fi
