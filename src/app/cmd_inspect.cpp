// mslr inspect FILE: what an mslr data, checkpoint or predictions file holds.
#include <cstdio>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/io/checkpoint.h"
#include "mslr/io/inspect.h"

namespace mslr {

int cmd_inspect(const Args& args, const Communicator& world) {
  Options o("inspect",
            "Describes an mslr data, checkpoint or predictions file (a run folder: its latest checkpoint).",
            {{"file", "", "file or run folder to describe"}}, {"file"});
  if (!o.parse(args)) return kExitOk;
  std::string text;
  run_collectively(world, [&] {
    if (world.is_root()) text = describe_file(resolve_checkpoint_or_file(o.str("file")));
  });
  if (world.is_root()) std::printf("%s\n", text.c_str());
  return kExitOk;
}

}  // namespace mslr
