// A test-only fault hook: makes one rank fail at a chosen point, so that tests can show that a failure on one
// rank ends the whole job quickly and leaves the last checkpoint usable (tests/e2e/test_faults.py).
//
// Read once from the environment variable MSLR_FAULT, e.g. "rank:1,step:7,kind:throw" (the 7th optimisation
// step this process takes), "rank:1,checkpoint:2,kind:abort" (while writing its 2nd checkpoint's data) or
// "rank:0,output:1,kind:abort" (after an output file is written, before it is renamed into place) or
// "rank:0,latest:2,kind:abort" (between making the new checkpoints/latest link and switching it).
// Kinds: throw (an exception on that rank only), abort (std::abort), exit (the process ends with status 7,
// without MPI_Finalize). Without MSLR_FAULT nothing happens and the cost is one comparison.
#pragma once

#include <cstdint>

namespace mslr {

// Counts the calls at the planned `where` ("step", "checkpoint", "output" or "latest") and fails when the
// plan names this rank and count.
void fault_point(const char* where, int rank);

}  // namespace mslr
