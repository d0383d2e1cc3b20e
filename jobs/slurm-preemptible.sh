#!/usr/bin/env bash
# A fit that survives time limits and preemption: Slurm signals the script before the limit, mslr checkpoints
# at the next minibatch on every rank and exits with status 3, the script requeues the job, and the requeued job
# resumes from the newest checkpoint. Repeats until the fit is done.
#
#   DATA=data.h5 OUT=run sbatch jobs/slurm-preemptible.sh
#
# Environment as in jobs/slurm-cpu.sh: DATA (required), OUT (keep it fixed across requeues: the default uses the
# job id, which a requeue keeps), MSLR, CONFIG, MSLR_ARGS.
#SBATCH --job-name=mslr-fit-preemptible
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --cpus-per-task=4
#SBATCH --time=4:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=mslr-fit-%j.out
# Site-specific lines go here. The signal is sent 300 s before the limit: leave mslr time to finish a minibatch
# and write a checkpoint (a few seconds per GB of parameters, more with --copy-data).
set -uo pipefail

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

args=(fit --data "$data" --out "$out" --threads "$threads")
[[ -n "${CONFIG:-}" ]] && args+=(--config "$CONFIG")
if [[ -e "$out/checkpoints/latest" ]]; then
  echo "mslr job ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}): resuming from $out"
  args+=(--resume "$out")
fi

# srun runs in the background so that this shell can take the signal and pass it on to every rank.
# shellcheck disable=SC2086
srun --mpi=pmix --kill-on-bad-exit=1 "$mslr" "${args[@]}" ${MSLR_ARGS:-} &
step=$!
signalled=0
trap 'signalled=1; echo "mslr job ${SLURM_JOB_ID}: time limit near, asking mslr to checkpoint"; kill -USR1 "$step"' USR1
status=0
while true; do
  wait "$step"
  status=$?
  # A status above 128 with the step still running means wait was interrupted by the trapped signal.
  if (( status > 128 )) && kill -0 "$step" 2>/dev/null; then continue; fi
  break
done
# Every rank checkpoints and exits with 3. The first to exit ends the step under --kill-on-bad-exit, and srun
# may then report the status of a rank it ended while that one was exiting: so a fit that was asked to stop
# and has no final checkpoint is requeued whatever srun's status (it resumes from its newest checkpoint).
if (( status == 3 )) || { (( signalled )) && [[ ! -e "$out/checkpoints/final.h5" ]]; }; then
  echo "mslr job ${SLURM_JOB_ID}: checkpointed; requeueing"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
exit "$status"
