// Fuzz target: the options parser and what is built from options. The input is an INI text (a --config file
// or the configuration saved in a checkpoint), then, after a NUL byte, command-line arguments separated by NUL
// bytes. The options of fit are parsed from both, read with their typed getters, and resolved into the
// settings, model and split a fit would run with, as fit does before it reads any file.
#include <vector>

#include "fuzz_target.h"
#include "mslr/app/fit_config.h"
#include "mslr/app/model_config.h"

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
    const std::vector<mslr::OptionDecl> decls = mslr::fit_options();
    mslr::Options o("fit", mslr::kFitSummary, decls);
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
    mslr::fit_settings_from(o);
  });
  return 0;
}
