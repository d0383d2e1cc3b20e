// mslr: parse -> build -> run -> report. The subcommands live in app/.
#include "mslr/app/app.h"

int main(int argc, char** argv) {
  return mslr::run_main(argc, argv);
}
