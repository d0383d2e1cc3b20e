#include "mslr/model/model_spec.h"

#include <cmath>
#include <numeric>
#include <set>

#include "mslr/core/error.h"

namespace mslr {
namespace {

std::vector<int64_t> mapped_dims(const MappingSpec& m, const std::vector<int64_t>& in, const char* which) {
  switch (m.kind) {
    case MappingSpec::kIdentity:
      return in;
    case MappingSpec::kConcat:
      return {std::accumulate(in.begin(), in.end(), int64_t{0})};
    case MappingSpec::kLinear:
      MSLR_CHECK(!m.out_dims.empty(), "the ", which, " linear mapping has no output widths");
      return m.out_dims;
  }
  return in;
}

}  // namespace

ModeSource parse_mode_source(const std::string& text) {
  if (text == "predicted") return ModeSource::kPredicted;
  if (text == "owned") return ModeSource::kOwned;
  if (text == "fixed") return ModeSource::kFixed;
  if (text == "given") return ModeSource::kGiven;
  fail("unknown mode source '", text, "' (expected predicted, owned, fixed or given)");
}

std::string to_string(ModeSource s) {
  switch (s) {
    case ModeSource::kPredicted:
      return "predicted";
    case ModeSource::kOwned:
      return "owned";
    case ModeSource::kFixed:
      return "fixed";
    case ModeSource::kGiven:
      return "given";
  }
  return "?";
}

std::vector<int64_t> ModelSpec::specific_out_dims() const {
  std::vector<int64_t> in;
  for (const auto& g : inputs)
    in.push_back(g.n_modes);
  return mapped_dims(mapping, in, "subject");
}

std::vector<std::string> ModelSpec::groups() const {
  std::set<std::string> g;
  for (const auto& i : inputs)
    g.insert(i.group);
  for (const auto& h : outputs)
    g.insert(h.group);
  return {g.begin(), g.end()};
}

std::vector<int64_t> ModelSpec::trans_dims() const {
  auto d = specific_out_dims();
  return shared_mapping ? mapped_dims(*shared_mapping, d, "shared") : d;
}

void ModelSpec::validate() const {
  MSLR_CHECK(!inputs.empty(), "the model has no input groups");
  MSLR_CHECK(!outputs.empty(), "the model has no output groups");
  std::set<std::string> seen_in, seen_out;
  for (const auto& g : inputs) {
    MSLR_CHECK(!g.group.empty(), "an input group has no name");
    MSLR_CHECK(seen_in.insert(g.group).second, "input group '", g.group, "' is listed twice");
    MSLR_CHECK(g.n_modes > 0, "input group '", g.group, "' needs a positive number of modes, got ",
               g.n_modes);
    if (g.modes == ModeSource::kPredicted) g.predictor.validate();
  }
  for (const auto& h : outputs) {
    MSLR_CHECK(!h.group.empty(), "an output group has no name");
    MSLR_CHECK(seen_out.insert(h.group).second, "output group '", h.group, "' is listed twice");
    if (h.modes == ModeSource::kPredicted) h.predictor.validate();
  }
  const auto trans = trans_dims();
  MSLR_CHECK(trans.size() == outputs.size(), "the mapping (", mapping.describe(),
             shared_mapping ? " then shared " + shared_mapping->describe() : std::string(), ") gives ",
             trans.size(), " transformed latents, the model has ", outputs.size(), " output groups");
  for (const auto& [g, h] : direct_pairs) {
    MSLR_CHECK(
        g >= 0 && g < static_cast<int>(inputs.size()) && h >= 0 && h < static_cast<int>(outputs.size()),
        "direct pair (", g, ", ", h, ") is out of range for ", inputs.size(), " inputs and ", outputs.size(),
        " outputs");
  }
  MSLR_CHECK(std::isfinite(psi_init) && psi_init > 0.0, "psi-init must be a positive number, got ", psi_init);
}

}  // namespace mslr
