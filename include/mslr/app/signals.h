// SIGTERM / SIGUSR1: the first asks the fit to checkpoint at the next minibatch boundary and exit with
// kExitCheckpointed; a second one ends the process at once.
#pragma once

namespace mslr {

void install_stop_signals();
bool stop_signalled();

}  // namespace mslr
