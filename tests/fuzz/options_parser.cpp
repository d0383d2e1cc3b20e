// Fuzz target: the options parser and what is built from options. The input is an INI text (a --config file
// or the configuration saved in a checkpoint), then, after a NUL byte, command-line arguments separated by NUL
// bytes. The options of fit are parsed from both, read with their typed getters, and turned into a model and
// a split, as fit, predict and simulate do; every argument is also
// parsed as a learning-rate schedule.
#include <vector>

#include "fuzz_target.h"
#include "mslr/app/commands.h"
#include "mslr/app/model_config.h"
#include "mslr/fit/schedule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0)
      parts.emplace_back();
    else
      parts.back() += static_cast<char>(data[i]);
  }
  const std::string ini = parts.front();
  const std::vector<std::string> args(parts.begin() + 1, parts.end());
  mslr::fuzz::expect_only_mslr_errors([&] {
    const std::vector<mslr::OptionDecl> decls =
        mslr::with({}, {mslr::split_options(), mslr::runtime_options(), mslr::model_options()});
    mslr::Options o("fuzz", "options fuzz target", decls);
    if (!o.parse(args, ini, "the fuzzed configuration")) return;
    for (const auto& d : decls) {
      if (!o.has(d.name)) continue;
      if (d.kind == mslr::OptionDecl::kFlag)
        o.flag(d.name);
      else if (d.kind == mslr::OptionDecl::kList)
        o.list(d.name);
      else
        o.str(d.name);
    }
    o.resolved();
    mslr::model_from_options(o).validate();
    mslr::split_from(o);
  });
  // The learning-rate schedule has its own small syntax (EPOCH:RATE,...): every argument is tried as one.
  for (const auto& a : args)
    mslr::fuzz::expect_only_mslr_errors([&] { mslr::LrSchedule::parse(a); });
  return 0;
}
