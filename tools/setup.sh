#!/usr/bin/env bash
# Installs what mslr needs (Debian 12 packages) when it is missing, then configures and builds mslr.
#
#   tools/setup.sh [--no-install] [--build-dir DIR] [--build-type Release|Debug|RelWithDebInfo] [--target T]
#                  [-- CMAKE_ARGS...]
#
# Idempotent and non-interactive: packages already present are not touched, and an existing build folder is
# reused (only what changed is rebuilt). Builds everything, or only target T (and what it needs). Prints where
# the binary is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${MSLR_BUILD_DIR:-$here/build}"
build_type=Release
install=1
target=()
cmake_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-install) install=0 ;;
    --build-dir) build_dir="$2"; shift ;;
    --build-type) build_type="$2"; shift ;;
    --target) target=(--target "$2"); shift ;;
    --) shift; cmake_args=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Build tools, LibTorch (CPU) with OpenBLAS (without it matrix products fall back to the reference BLAS, ~30x
# slower), Open MPI, parallel HDF5, Boost.Program_options, GoogleTest, the Python tools' libraries, and a
# one-node Slurm for the job-script tests, and iproute2 for the two-node tests (network namespaces).
packages=(
  build-essential cmake pkg-config git procps
  libtorch-dev libopenblas0-pthread
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev
  libboost-program-options-dev
  libgtest-dev googletest
  python3 python3-h5py python3-numpy python3-matplotlib
  slurmctld slurmd slurm-client munge
  iproute2
)

if [[ $install == 1 ]]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

jobs="$(nproc 2>/dev/null || echo 2)"
mkdir -p "$build_dir"
log="$build_dir/configure.log"
cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "${cmake_args[@]}" >"$log" 2>&1 \
  || { cat "$log" >&2; exit 1; }
grep -E '^-- mslr:' "$log" || true
cmake --build "$build_dir" -j "$jobs" "${target[@]}"
if [[ ${#target[@]} -eq 0 ]]; then echo "setup: built $build_dir/mslr"; else echo "setup: built ${target[1]} in $build_dir"; fi
