#include "mslr/app/model_config.h"

#include <algorithm>
#include <cmath>

#include "mslr/core/error.h"

namespace mslr {
namespace {

[[noreturn]] void bad(const Options& o, const std::string& name, const std::string& value,
                      const std::string& rule) {
  throw UsageError("mslr " + o.command() + ": --" + name + ": '" + value + "' " + rule);
}

}  // namespace

std::vector<OptionDecl> model_options() {
  return {
      {"model.input", "",
       "input group at t-1 as GROUP:SOURCE:MODES, SOURCE = predicted, owned, fixed (identity) or given (per subject, from the data file's modes/GROUP)",
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
      {"model.group", "",
       "a setting of one group, TARGET.KEY=VALUE: TARGET a group (its p- and u-modes) or p.GROUP / u.GROUP; "
       "KEY predictor, hidden, activation, divisions, cube-side, range-lo, range-hi, init-std, "
       "per-subject-predictors, or scales, offsets (outputs); e.g. neurons.hidden=64,64",
       OptionDecl::kList},
  };
}

namespace {

// The predictor settings a group may set for itself (--model.group TARGET.KEY=VALUE), each also a model.KEY
// option that sets it for every group.
const char* const kPredictorKeys[] = {"predictor", "hidden",    "activation",
                                      "divisions", "cube-side", "range-lo",
                                      "range-hi",  "init-std",  "per-subject-predictors"};

// Sets one predictor setting from its text; `option` and `text` name it in errors.
void set_predictor_key(PredictorSpec& pred, const std::string& key, const std::string& value,
                       const Options& o, const std::string& option, const std::string& text) {
  auto bad_value = [&](const std::string& rule) { bad(o, option, text, rule); };
  auto to_int = [](const std::string& s, size_t* u) { return static_cast<int64_t>(std::stoll(s, u)); };
  auto to_double = [](const std::string& s, size_t* u) { return std::stod(s, u); };
  auto numbers = [&](auto convert) {
    using T = decltype(convert(std::string(), nullptr));
    std::vector<T> out;
    for (const auto& item : split(value, ',')) {
      try {
        size_t used = 0;
        out.push_back(convert(item, &used));
        if (used != item.size()) throw std::invalid_argument("");
      } catch (const std::exception&) {
        throw UsageError("mslr " + o.command() + ": --" + option + ": '" + item + "' in '" + text +
                         "' is not a number");
      }
    }
    return out;
  };
  if (key == "predictor") {
    if (value == "mlp")
      pred.kind = PredictorSpec::kMlp;
    else if (value == "hypercube")
      pred.kind = PredictorSpec::kHypercube;
    else
      bad_value("is not mlp or hypercube");
  } else if (key == "hidden") {
    pred.hidden = numbers(to_int);
  } else if (key == "divisions") {
    pred.divisions = numbers(to_int);
  } else if (key == "cube-side") {
    pred.cube_side = numbers(to_int);
  } else if (key == "range-lo") {
    pred.range_lo = numbers(to_double);
  } else if (key == "range-hi") {
    pred.range_hi = numbers(to_double);
  } else if (key == "init-std") {
    const auto v = numbers(to_double);
    if (v.size() != 1 || !std::isfinite(v[0])) bad_value("is not a finite number");
    pred.init_std = v[0];
  } else if (key == "per-subject-predictors") {
    if (value != "true" && value != "false") bad_value("is not true or false");
    pred.per_subject = value == "true";
  } else if (key == "activation") {
    try {
      pred.activation = parse_activation(value);
    } catch (const Error&) {
      bad_value("is not an activation");
    }
  }
}

// One --model.group setting, TARGET.KEY=VALUE: TARGET a group (its p- and u-modes) or p.GROUP / u.GROUP
// (one side).
struct GroupSetting {
  std::string target, key, value;
  bool applies_to(const std::string& group, bool input) const {
    return target == group || target == (input ? "p." : "u.") + group;
  }
};

std::vector<GroupSetting> group_settings(const Options& o) {
  std::vector<GroupSetting> out;
  for (const auto& text : o.list("model.group")) {
    const auto eq = text.find('=');
    const auto dot = eq == std::string::npos ? std::string::npos : text.rfind('.', eq);
    if (dot == std::string::npos || dot == 0) bad(o, "model.group", text, "is not TARGET.KEY=VALUE");
    GroupSetting s{text.substr(0, dot), text.substr(dot + 1, eq - dot - 1), text.substr(eq + 1)};
    const bool predictor_key =
        std::find(std::begin(kPredictorKeys), std::end(kPredictorKeys), s.key) != std::end(kPredictorKeys);
    if (!predictor_key && s.key != "scales" && s.key != "offsets")
      bad(o, "model.group", text,
          "sets no known key (predictor, hidden, activation, divisions, cube-side, range-lo, range-hi, "
          "init-std, per-subject-predictors, scales, offsets)");
    out.push_back(s);
  }
  return out;
}

// The predictor of a group's p-modes (`input`) or u-modes: the model.* settings, then the group's own.
PredictorSpec group_predictor(const Options& o, const PredictorSpec& common,
                              const std::vector<GroupSetting>& settings, const std::string& group,
                              bool input) {
  PredictorSpec pred = common;
  for (const auto& s : settings)
    if (s.applies_to(group, input) && s.key != "scales" && s.key != "offsets")
      set_predictor_key(pred, s.key, s.value, o, "model.group", s.target + "." + s.key + "=" + s.value);
  return pred;
}

// A group's scales or offsets flag: the model.* flag, then the group's own.
bool group_flag(const Options& o, const std::vector<GroupSetting>& settings, const std::string& group,
                const std::string& key) {
  bool on = o.flag("model." + key);
  for (const auto& s : settings)
    if (s.key == key && s.applies_to(group, false)) {
      if (s.value != "true" && s.value != "false")
        bad(o, "model.group", s.target + "." + s.key + "=" + s.value, "is not true or false");
      on = s.value == "true";
    }
  return on;
}

}  // namespace

ModelSpec model_from_options(const Options& o) {
  ModelSpec spec;
  PredictorSpec pred;
  for (const char* key : kPredictorKeys) {
    const std::string option = std::string("model.") + key;
    if (key == std::string("per-subject-predictors"))
      pred.per_subject = o.flag(option);
    else if (key == std::string("init-std"))
      pred.init_std = o.number(option);
    else if (o.has(option))
      set_predictor_key(pred, key, o.str(option), o, option, o.str(option));
  }
  const std::vector<GroupSetting> settings = group_settings(o);
  for (const auto& s : settings) {
    bool known = false;
    for (const auto& text : o.list("model.input"))
      known |= s.applies_to(split(text, ':')[0], true);
    for (const auto& text : o.list("model.output"))
      known |= s.applies_to(split(text, ':')[0], false);
    if (!known)
      bad(o, "model.group", s.target + "." + s.key + "=" + s.value,
          "names no input or output group of the model (TARGET is GROUP, p.GROUP or u.GROUP)");
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
      bad(o, "model.input", text, "is not GROUP:SOURCE:MODES with SOURCE predicted, owned, fixed or given");
    }
    in.predictor = group_predictor(o, pred, settings, in.group, true);
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
    out.predictor = group_predictor(o, pred, settings, out.group, false);
    out.scales = group_flag(o, settings, out.group, "scales");
    out.offsets = group_flag(o, settings, out.group, "offsets");
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
