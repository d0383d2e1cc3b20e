// Fuzz target: the mslr-data reader. The input is a whole file; it is described and every subject read, with
// properties and true means, as fit and predict read it.
#include "fuzz_target.h"
#include "mslr/comm/communicator.h"
#include "mslr/io/data_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mslr::fuzz::read_as_file(data, size, [](const std::string& path) {
    const mslr::LocalCommunicator comm;
    const mslr::DataFile file(path, comm);
    mslr::DataReadOptions all;
    all.true_means = true;
    for (size_t i = 0; i < file.subjects().size(); ++i)
      file.read(static_cast<int>(i), all);
  });
  return 0;
}
