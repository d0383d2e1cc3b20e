#include "mslr/app/app.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "mslr/app/selfcheck.h"
#include "mslr/core/error.h"

namespace mslr {

int run_main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "--version" || cmd == "version") {
      std::printf("mslr %s\n", MSLR_VERSION);
      return kExitOk;
    }
    if (cmd == "selfcheck") return run_selfcheck() ? kExitOk : kExitError;
    std::fprintf(stderr, "usage: mslr --version | selfcheck\n");
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mslr: error: %s\n", e.what());
    return kExitError;
  }
}

}  // namespace mslr
