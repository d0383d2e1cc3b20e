#pragma once

#include "mslr/comm/mpi_communicator.h"

namespace mslr::test {

// The job's world, shared by the multi-rank tests.
const MpiCommunicator& world();

}  // namespace mslr::test
