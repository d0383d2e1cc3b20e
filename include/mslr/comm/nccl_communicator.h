// The NCCL implementation of Communicator: device tensors go through NCCL, host tensors through MPI.
// Compiled when CMake finds the CUDA toolkit and NCCL (MSLR_HAVE_NCCL); built on every such machine even when
// it has no GPU, so that it keeps compiling against the real headers.
#pragma once

#include <memory>

#include "mslr/comm/mpi_communicator.h"

namespace mslr {

// True when this build contains the NCCL communicator.
bool nccl_compiled();

// Makes the NCCL communicator over the ranks of `mpi`, for CUDA device `device` of this rank. Every rank must
// call it (it is collective). Throws when NCCL is not compiled in or the device cannot be used.
std::unique_ptr<Communicator> make_nccl_communicator(const MpiCommunicator& mpi, int device);

}  // namespace mslr
