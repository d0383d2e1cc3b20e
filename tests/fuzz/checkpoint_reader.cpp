// Fuzz target: the checkpoint reader. The input is a whole checkpoint file; it is opened, checked against its
// own layouts, and everything a resume or a prediction reads is read, extras included.
#include <numeric>

#include "fuzz_target.h"
#include "mslr/comm/communicator.h"
#include "mslr/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mslr::fuzz::read_as_file(data, size, [](const std::string& path) {
    const mslr::LocalCommunicator comm;
    const mslr::CheckpointFile ckpt(path, comm);
    const int n = static_cast<int>(ckpt.subject_names().size());
    std::vector<std::pair<std::string, const mslr::ParamLayout*>> fitted;
    for (int i = 0; i < n; ++i)
      if (ckpt.subject_fitted(i)) fitted.emplace_back(ckpt.subject_names()[i], &ckpt.subject_layout(i));
    ckpt.check_model(ckpt.model(), ckpt.shared_layout(), fitted);
    std::vector<int> everyone(n);
    std::iota(everyone.begin(), everyone.end(), 0);
    ckpt.read_state(everyone);
    ckpt.read_shared_params();
    for (int i = 0; i < n; ++i) {
      ckpt.read_subject_params(i);
      ckpt.read_extras(i);
    }
  });
  return 0;
}
