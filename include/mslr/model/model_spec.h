// The structure of a multi-subject latent regression model (docs/DESIGN.md §1–§2), independent of any
// subject's data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mslr/model/activation.h"
#include "mslr/model/mapping.h"
#include "mslr/model/predictor.h"

namespace mslr {

// Where a group's modes come from.
enum class ModeSource {
  kPredicted,  // from the group's variables' properties through a mode predictor
  kOwned,      // a per-subject parameter
  kFixed,      // the identity (which needs d = number of modes), or a tensor set by the code
  kGiven,  // fixed per subject to a matrix its data gives (/subjects/<name>/modes/<group> in the data file)
};

ModeSource parse_mode_source(const std::string& text);  // "predicted", "owned", "fixed", "given"
std::string to_string(ModeSource s);

struct InputSpec {
  std::string group;    // data group read at t-1
  int64_t n_modes = 0;  // d_proj
  ModeSource modes = ModeSource::kPredicted;
  PredictorSpec predictor;  // when modes are predicted
};

struct OutputSpec {
  std::string group;  // data group read at t
  ModeSource modes = ModeSource::kPredicted;
  PredictorSpec predictor;
  Activation nonlinearity = Activation::kIdentity;
  bool scales = false;
  bool offsets = true;
};

struct ModelSpec {
  std::vector<InputSpec> inputs;
  std::vector<OutputSpec> outputs;
  MappingSpec mapping;                        // per subject (the specific part of m)
  std::optional<MappingSpec> shared_mapping;  // when set, m = shared_mapping ∘ mapping, one module for all
  std::vector<std::pair<int, int>> direct_pairs;  // (input index, output index): mn_h += c ⊙ x_g
  // Divide predicted p-modes by the number of variables N of their group, so that x·p is a mean over
  // variables (docs/DESIGN.md §9). Changes no model class; makes the fit well conditioned at any N.
  bool p_modes_mean = true;
  double psi_init = 1.0;

  // Checks the structure without data: groups named once, mode counts positive, mappings consistent with the
  // number of output groups, direct pairs in range. Throws naming what is wrong.
  void validate() const;
  // Output widths of the specific mapping and the final transformed latent widths d_trans_h.
  std::vector<int64_t> specific_out_dims() const;
  std::vector<int64_t> trans_dims() const;
  // The data groups the model reads, each once, in name order.
  std::vector<std::string> groups() const;
};

}  // namespace mslr
