#!/usr/bin/env bash
# mslr fit on CPU nodes: one MPI rank per group of cores, subjects spread over all ranks.
#
#   DATA=data.h5 OUT=run sbatch jobs/slurm-cpu.sh            (sbatch options on its command line override these)
#
# Environment: DATA (required), OUT (run folder, default mslr-run-<jobid>), MSLR (the binary, default mslr on
# PATH), CONFIG (an INI file with fit and [model] options), MSLR_ARGS (more options, e.g. "--epochs 200").
# A run folder that already has a checkpoint is resumed, so resubmitting the script continues the fit.
#SBATCH --job-name=mslr-fit
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --cpus-per-task=4
#SBATCH --time=12:00:00
#SBATCH --output=mslr-fit-%j.out
# Site-specific lines go here, e.g. #SBATCH --partition=... / --account=..., and module loads below.
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
# LibTorch and OpenBLAS each keep a thread pool: one thread per core given to the rank, in both.
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"

args=(fit --data "$data" --out "$out" --threads "$threads")
[[ -n "${CONFIG:-}" ]] && args+=(--config "$CONFIG")
[[ -e "$out/checkpoints/latest" ]] && args+=(--resume "$out")
# shellcheck disable=SC2086
srun --mpi=pmix --kill-on-bad-exit=1 "$mslr" "${args[@]}" ${MSLR_ARGS:-}
