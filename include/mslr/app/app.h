// The mslr program: subcommand dispatch, errors reported once per job, exit codes.
#pragma once

namespace mslr {

// Exit codes of the mslr executable.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,         // bad input, or a failure that was reported
  kExitUsage = 2,         // bad command line or config
  kExitCheckpointed = 3,  // stopped by a signal after writing a checkpoint: resume with --resume
  kExitDiverged = 4,      // the fit diverged (non-finite NLL or gradient); the last checkpoint is kept
};

int run_main(int argc, char** argv);

}  // namespace mslr
