// A test-only fault hook: makes one rank fail at a chosen point, so that tests can show that a failure on one
// rank ends the whole job quickly and leaves the last checkpoint usable (tests/e2e/test_faults.py).
//
// Read once from the environment variable MSLR_FAULT, e.g. "rank:1,step:7,kind:throw" (the 7th optimisation
// step this process takes) or "rank:1,checkpoint:2,kind:abort" (while writing its 2nd checkpoint's data).
// Kinds: throw (an exception on that rank only), abort (std::abort), exit (the process ends with status 7,
// without MPI_Finalize). Without MSLR_FAULT nothing happens and the cost is one comparison.
#pragma once

#include <cstdint>

namespace mslr {

// Counts calls per `where` ("step" or "checkpoint") and fails when the plan names this rank and count.
void fault_point(const char* where, int rank);

}  // namespace mslr
