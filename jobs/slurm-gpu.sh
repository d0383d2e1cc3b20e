#!/usr/bin/env bash
# mslr fit on GPU nodes: one MPI rank per GPU; the shared gradients are all-reduced with NCCL.
#
#   DATA=data.h5 OUT=run sbatch jobs/slurm-gpu.sh
#
# Environment as in jobs/slurm-cpu.sh: DATA (required), OUT, MSLR, CONFIG, MSLR_ARGS. Add "--data-on-device" to
# MSLR_ARGS when every rank's subjects fit in its GPU's memory (faster; mslr says so when they do not).
#SBATCH --job-name=mslr-fit-gpu
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --output=mslr-fit-gpu-%j.out
# Site-specific lines go here (partition, account, GPU type), and module loads below.
set -euo pipefail

mslr="${MSLR:-mslr}"
data="${DATA:?set DATA to the mslr-data file to fit}"
out="${OUT:-mslr-run-${SLURM_JOB_ID}}"
threads="${SLURM_CPUS_PER_TASK:-1}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"

# With --gpus-per-task every rank sees only its own GPU, which mslr then uses; when ranks see all of a node's
# GPUs, mslr gives each the ones numbered from its node-local rank.
args=(fit --data "$data" --out "$out" --threads "$threads" --gpus-per-rank 1)
[[ -n "${CONFIG:-}" ]] && args+=(--config "$CONFIG")
[[ -e "$out/checkpoints/latest" ]] && args+=(--resume "$out")
# shellcheck disable=SC2086
srun --mpi=pmix --kill-on-bad-exit=1 "$mslr" "${args[@]}" ${MSLR_ARGS:-}
