// The [model] section of an mslr config: declarations of the model.* options and their conversion into a
// ModelSpec.
#pragma once

#include <string>
#include <vector>

#include "mslr/app/options.h"
#include "mslr/model/model_spec.h"

namespace mslr {

std::vector<OptionDecl> model_options();

// Builds and validates the spec from the model.* options; throws UsageError naming the option.
ModelSpec model_from_options(const Options& options);

// The resolved [model] section as text (what a checkpoint records and a resume compares).
std::string model_text(const Options& options);

}  // namespace mslr
