#include "mslr/app/commands.h"
#include "mslr/core/error.h"
#include "mslr/core/system.h"

namespace mslr {

std::vector<OptionDecl> with(std::vector<OptionDecl> decls,
                             const std::vector<std::vector<OptionDecl>>& lists) {
  for (const auto& list : lists)
    decls.insert(decls.end(), list.begin(), list.end());
  return decls;
}

std::vector<OptionDecl> split_options() {
  return {
      {"train-fraction", default_text(Split{}.train_fraction),
       "the first round(f*T) time points of each subject are training data, the rest test"},
      {"train-range", "",
       "training time points START:END for every subject (with --test-range, replaces the fraction)"},
      {"test-range", "", "test time points START:END for every subject"},
      {"split-from-data", default_text(Split{}.from_data),
       "each subject's own train and test time points from the data file (/subjects/<name>/split/train and "
       "/test: [k, 2] ranges START,END or a [T] 0/1 mask), e.g. cross-validation folds",
       OptionDecl::kFlag},
  };
}

std::vector<OptionDecl> runtime_options() {
  return {
      {"config", "", "INI file with options (the command line wins)"},
      {"threads", "0", "threads per rank for LibTorch's element-wise work (0: the cores bound to the rank)"},
      {"blas-threads", "1",
       "threads per rank for OpenBLAS's matrix products (at most --threads; the two pools "
       "slow each other down when both are wide)"},
      {"gpus-per-rank", "0", "CUDA devices per rank (0: CPU)"},
      {"quiet", "false", "print nothing but errors", OptionDecl::kFlag},
  };
}

Split split_from(const Options& o) {
  Split s;
  s.train_fraction = o.number("train-fraction");
  if (o.has("train-range") || o.has("test-range")) {
    if (!o.has("train-range") || !o.has("test-range"))
      throw UsageError("mslr " + o.command() + ": --train-range and --test-range go together");
    s.explicit_ranges = true;
    try {
      s.train_range = Split::parse_range(o.str("train-range"), "--train-range");
      s.test_range = Split::parse_range(o.str("test-range"), "--test-range");
    } catch (const Error& e) {
      throw UsageError("mslr " + o.command() + ": " + e.what());
    }
  }
  s.from_data = o.flag("split-from-data");
  if (s.from_data && s.explicit_ranges)
    throw UsageError("mslr " + o.command() +
                     ": --split-from-data takes each subject's split from the data file; leave out "
                     "--train-range and --test-range");
  try {
    s.validate();
  } catch (const Error& e) {
    throw UsageError("mslr " + o.command() + ": " + e.what());
  }
  return s;
}

int apply_threads(const Options& o, const Communicator& world) {
  const int64_t asked = o.integer("threads");
  if (asked < 0)
    throw UsageError("mslr " + o.command() + ": --threads must be >= 0, got " + std::to_string(asked));
  const int n = asked > 0 ? static_cast<int>(asked) : cores_for_rank(world.local_size());
  const int64_t blas = o.integer("blas-threads");
  if (blas < 1)
    throw UsageError("mslr " + o.command() + ": --blas-threads must be >= 1, got " + std::to_string(blas));
  limit_threads(n, static_cast<int>(blas));
  return n;
}

}  // namespace mslr
