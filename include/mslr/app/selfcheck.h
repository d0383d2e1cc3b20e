#pragma once

namespace mslr {

// Builds a small model with every option and checks, in float64, the fused NLL against the reference ops and
// the autograd gradient against central finite differences. Prints one line per check; true when all pass.
bool run_selfcheck();

}  // namespace mslr
