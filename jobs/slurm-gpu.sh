#!/usr/bin/env bash
# mslr fit on GPU nodes: one MPI rank per GPU; the shared gradients are all-reduced with NCCL.
#
#   DATA=data.h5 OUT=run sbatch jobs/slurm-gpu.sh
#
# Environment as in jobs/slurm-cpu.sh: DATA (required), OUT, MSLR, CONFIG, MSLR_ARGS. Each rank keeps its
# subjects on its GPU when they fit there (--data-on-device auto, the default; the log says which was chosen).
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
out="${OUT:-${SCRATCH:-.}/mslr-run-${SLURM_JOB_ID}}"
threads="${SLURM_CPUS_PER_TASK:-1}"
# Slurm 22.05 and later do not hand the job's --cpus-per-task on to srun: say it again, or each rank gets one
# core.
export SRUN_CPUS_PER_TASK="$threads"
# Run folders belong on the scratch file system ($SCRATCH where the site sets it). On Lustre, HDF5's file
# locking is often unsupported (HDF5_USE_FILE_LOCKING=FALSE, the default here, turns it off), and checkpoints,
# which all ranks write together, are faster with their folder striped over several OSTs
# (lfs setstripe -c 4 "$out/checkpoints" before the first one).
export HDF5_USE_FILE_LOCKING="${HDF5_USE_FILE_LOCKING:-FALSE}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"

# With --gpus-per-task every rank sees only its own GPU, which mslr then uses; when ranks see all of a node's
# GPUs, mslr gives each the ones numbered from its node-local rank.
args=(fit --data "$data" --out "$out" --threads "$threads" --gpus-per-rank 1)
[[ -n "${CONFIG:-}" ]] && args+=(--config "$CONFIG")
[[ -e "$out/checkpoints/latest" ]] && args+=(--resume "$out")
# shellcheck disable=SC2086
srun --mpi=pmix --kill-on-bad-exit=1 "$mslr" "${args[@]}" ${MSLR_ARGS:-}
