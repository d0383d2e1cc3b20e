#include "mslr/app/model_config.h"

#include "mslr/core/error.h"

namespace mslr {
namespace {

template <class T, class F>
std::vector<T> parse_list(const Options& o, const std::string& name, F convert) {
  std::vector<T> out;
  for (const auto& item : split(o.str(name), ',')) {
    try {
      size_t used = 0;
      out.push_back(convert(item, &used));
      if (used != item.size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw UsageError("mslr " + o.command() + ": --" + name + ": '" + item + "' in '" + o.str(name) +
                       "' is not a number");
    }
  }
  return out;
}

[[noreturn]] void bad(const Options& o, const std::string& name, const std::string& value,
                      const std::string& rule) {
  throw UsageError("mslr " + o.command() + ": --" + name + ": '" + value + "' " + rule);
}

}  // namespace

std::vector<OptionDecl> model_options() {
  return {
      {"model.input", "", "input group at t-1 as GROUP:SOURCE:MODES, SOURCE = predicted, owned or fixed",
       OptionDecl::kList},
      {"model.output", "",
       "output group at t as GROUP:SOURCE[:NONLINEARITY] (identity, relu, tanh, sigmoid, "
       "softplus, exp, prelu)",
       OptionDecl::kList},
      {"model.mapping", "concat", "mapping m: identity, concat or linear:W1[,W2...] (per subject)"},
      {"model.shared-mapping", "", "a mapping shared by all subjects, applied after model.mapping"},
      {"model.direct", "", "direct pair IN:OUT (groups of equal width): mn_out += c * x_in",
       OptionDecl::kList},
      {"model.scales", "false", "learn a scale per output variable", OptionDecl::kFlag},
      {"model.offsets", "true", "learn an offset per output variable", OptionDecl::kFlag},
      {"model.predictor", "mlp", "mode predictor: mlp or hypercube"},
      {"model.hidden", "32,32", "MLP hidden layer widths"},
      {"model.activation", "tanh", "MLP hidden activation: relu, tanh, sigmoid, softplus, exp or identity"},
      {"model.divisions", "10", "hypercube cells per property (one value or one per property)"},
      {"model.cube-side", "2", "hypercube side in cells (one value or one per property)"},
      {"model.range-lo", "", "lowest property values, per property (default: from the data)"},
      {"model.range-hi", "", "highest property values, per property (default: from the data)"},
      {"model.init-std", "1.0", "std of the predictors' starting outputs"},
      {"model.per-subject-predictors", "false", "give every subject its own predictors (never all-reduced)",
       OptionDecl::kFlag},
      {"model.p-mode-scaling", "mean",
       "mean: p = predictor(props) / N, so x.p is a mean over variables (well "
       "conditioned at any N); none: p = predictor(props)"},
      {"model.psi-init", "1.0", "starting noise variance of every output variable"},
  };
}

ModelSpec model_from_options(const Options& o) {
  ModelSpec spec;
  PredictorSpec pred;
  const std::string kind = o.str("model.predictor");
  if (kind == "mlp")
    pred.kind = PredictorSpec::kMlp;
  else if (kind == "hypercube")
    pred.kind = PredictorSpec::kHypercube;
  else
    bad(o, "model.predictor", kind, "is not mlp or hypercube");
  auto to_int = [](const std::string& s, size_t* u) { return static_cast<int64_t>(std::stoll(s, u)); };
  auto to_double = [](const std::string& s, size_t* u) { return std::stod(s, u); };
  pred.hidden = parse_list<int64_t>(o, "model.hidden", to_int);
  pred.divisions = parse_list<int64_t>(o, "model.divisions", to_int);
  pred.cube_side = parse_list<int64_t>(o, "model.cube-side", to_int);
  if (o.has("model.range-lo")) pred.range_lo = parse_list<double>(o, "model.range-lo", to_double);
  if (o.has("model.range-hi")) pred.range_hi = parse_list<double>(o, "model.range-hi", to_double);
  pred.init_std = o.number("model.init-std");
  pred.per_subject = o.flag("model.per-subject-predictors");
  try {
    pred.activation = parse_activation(o.str("model.activation"));
  } catch (const Error& e) {
    bad(o, "model.activation", o.str("model.activation"), "is not an activation");
  }

  if (o.list("model.input").empty() || o.list("model.output").empty())
    throw UsageError("mslr " + o.command() +
                     ": no model: give --model.input and --model.output (or a --config with a "
                     "[model] section), or fit a file written by mslr simulate");
  for (const auto& text : o.list("model.input")) {
    const auto f = split(text, ':');
    if (f.size() != 3) bad(o, "model.input", text, "is not GROUP:SOURCE:MODES");
    InputSpec in;
    in.group = f[0];
    try {
      in.modes = parse_mode_source(f[1]);
      in.n_modes = std::stoll(f[2]);
    } catch (const std::exception&) {
      bad(o, "model.input", text, "is not GROUP:SOURCE:MODES with SOURCE predicted, owned or fixed");
    }
    in.predictor = pred;
    spec.inputs.push_back(in);
  }
  for (const auto& text : o.list("model.output")) {
    const auto f = split(text, ':');
    if (f.size() != 2 && f.size() != 3) bad(o, "model.output", text, "is not GROUP:SOURCE[:NONLINEARITY]");
    OutputSpec out;
    out.group = f[0];
    try {
      out.modes = parse_mode_source(f[1]);
      if (f.size() == 3) out.nonlinearity = parse_activation(f[2]);
    } catch (const Error& e) {
      bad(o, "model.output", text, std::string("is not valid: ") + e.what());
    }
    out.predictor = pred;
    out.scales = o.flag("model.scales");
    out.offsets = o.flag("model.offsets");
    spec.outputs.push_back(out);
  }
  try {
    spec.mapping = parse_mapping(o.str("model.mapping"));
    if (o.has("model.shared-mapping")) spec.shared_mapping = parse_mapping(o.str("model.shared-mapping"));
  } catch (const Error& e) {
    throw UsageError("mslr " + o.command() + ": " + e.what());
  }
  for (const auto& text : o.list("model.direct")) {
    const auto f = split(text, ':');
    if (f.size() != 2) bad(o, "model.direct", text, "is not IN:OUT");
    int g = -1, h = -1;
    for (size_t i = 0; i < spec.inputs.size(); ++i)
      if (spec.inputs[i].group == f[0]) g = static_cast<int>(i);
    for (size_t i = 0; i < spec.outputs.size(); ++i)
      if (spec.outputs[i].group == f[1]) h = static_cast<int>(i);
    if (g < 0 || h < 0)
      bad(o, "model.direct", text, "names a group that is not an input/output of the model");
    spec.direct_pairs.emplace_back(g, h);
  }
  const std::string scaling = o.str("model.p-mode-scaling");
  if (scaling != "mean" && scaling != "none") bad(o, "model.p-mode-scaling", scaling, "is not mean or none");
  spec.p_modes_mean = scaling == "mean";
  spec.psi_init = o.number("model.psi-init");
  try {
    spec.validate();
  } catch (const Error& e) {
    throw UsageError("mslr " + o.command() + ": model: " + e.what());
  }
  return spec;
}

std::string model_text(const Options& o) {
  const std::string all = o.resolved();
  const auto at = all.find("[model]");
  return at == std::string::npos ? "" : all.substr(at);
}

}  // namespace mslr
