// The subcommands of the mslr program (docs/DESIGN.md §6). Each takes the arguments after its name and the
// job's world, and returns the process exit status.
#pragma once

#include <string>
#include <vector>

#include "mslr/app/options.h"
#include "mslr/comm/mpi_communicator.h"
#include "mslr/data/subject_data.h"

namespace mslr {

using Args = std::vector<std::string>;

int cmd_simulate(const Args& args, const Communicator& world);
int cmd_fit(const Args& args, const MpiCommunicator& world);
int cmd_predict(const Args& args, const MpiCommunicator& world);
int cmd_generate(const Args& args, const MpiCommunicator& world);
int cmd_latents(const Args& args, const MpiCommunicator& world);
int cmd_eval(const Args& args, const Communicator& world);
int cmd_inspect(const Args& args, const Communicator& world);

// Options several commands share, and the declarations of `lists` appended to `decls`.
std::vector<OptionDecl> with(std::vector<OptionDecl> decls,
                             const std::vector<std::vector<OptionDecl>>& lists);
std::vector<OptionDecl> split_options();
std::vector<OptionDecl> runtime_options();
Split split_from(const Options& o);
// Sets the thread limits of this rank from --threads (0: the cores bound to the rank) and returns the count.
int apply_threads(const Options& o, const Communicator& world);

}  // namespace mslr
