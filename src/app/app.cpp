#include "mslr/app/app.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "mslr/app/commands.h"
#include "mslr/app/selfcheck.h"
#include "mslr/comm/mpi_communicator.h"
#include "mslr/core/error.h"
#include "mslr/io/lifetime.h"

namespace mslr {
namespace {

const char* kUsage =
    "usage: mslr COMMAND [options]     (mslr COMMAND --help for its options)\n"
    "\n"
    "commands:\n"
    "  simulate   write a simulated multi-subject dataset with its ground truth\n"
    "  fit        fit a multi-subject latent regression model (run under mpirun/srun for several ranks)\n"
    "  predict    predict held-out samples with a fitted model (distributed), write a predictions file\n"
    "  generate   run a fitted model forward from a start, feeding outputs back as inputs (distributed)\n"
    "  latents    write a fitted model's projections and transformed latents per sample (distributed)\n"
    "  eval       score a predictions file: NLL and R² per subject and pooled\n"
    "  inspect    describe an mslr data, checkpoint or predictions file\n"
    "  selfcheck  check the model's gradients against finite differences\n"
    "  version    print the version\n"
    "\n"
    "exit status: 0 done, 1 error, 2 bad command line or config, 3 stopped by a signal after a checkpoint\n";

int dispatch(const std::string& cmd, const Args& args, const MpiCommunicator& world) {
  if (cmd == "simulate") return cmd_simulate(args, world);
  if (cmd == "fit") return cmd_fit(args, world);
  if (cmd == "predict") return cmd_predict(args, world);
  if (cmd == "generate") return cmd_generate(args, world);
  if (cmd == "latents") return cmd_latents(args, world);
  if (cmd == "eval") return cmd_eval(args, world);
  if (cmd == "inspect") return cmd_inspect(args, world);
  if (cmd == "selfcheck") return world.is_root() ? (run_selfcheck() ? kExitOk : kExitError) : kExitOk;
  throw UsageError("mslr: unknown command '" + cmd + "' (see mslr --help)");
}

// Runs a command and turns what it throws into one message and an exit status.
int run_command(const std::string& cmd, const Args& args, const MpiCommunicator& world) {
  try {
    return dispatch(cmd, args, world);
  } catch (const UsageError& e) {
    // Every rank parsed the same arguments and failed the same way: rank 0 says it once.
    if (world.is_root()) std::fprintf(stderr, "%s\n", e.what());
    return kExitUsage;
  } catch (const DivergedError& e) {
    if (world.is_root()) std::fprintf(stderr, "mslr %s: %s\n", cmd.c_str(), e.what());
    return kExitDiverged;
  } catch (const CollectiveError& e) {
    if (world.is_root()) std::fprintf(stderr, "mslr %s: error: %s\n", cmd.c_str(), e.what());
    return kExitError;
  } catch (const std::exception& e) {
    // Only this rank knows: say so with its rank and end the whole job rather than leave others waiting.
    std::fprintf(stderr, "mslr %s: error on rank %d: %s\n", cmd.c_str(), world.rank(), e.what());
    std::fflush(stderr);
    if (world.size() > 1) abort_world(kExitError);
    return kExitError;
  }
}

}  // namespace

int run_main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "--version" || cmd == "version") {
    std::printf("mslr %s\n", MSLR_VERSION);
    return kExitOk;
  }
  if (cmd.empty() || cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::printf("%s", kUsage);
    return cmd.empty() ? kExitUsage : kExitOk;
  }
  // A write beyond a file-size limit then fails with EFBIG, which mslr reports and cleans up after, instead
  // of killing the process half-way through a file.
  std::signal(SIGXFSZ, SIG_IGN);
  h5::start();  // before MPI_Init: see h5::start
  MpiSession mpi(&argc, &argv);
  const MpiCommunicator world;
  const int status = run_command(cmd, Args(argv + 2, argv + argc), world);
  h5::stop();
  return status;
}

}  // namespace mslr
