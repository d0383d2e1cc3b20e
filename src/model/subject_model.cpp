#include "mslr/model/subject_model.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <limits>

#include "mslr/core/error.h"
#include "mslr/model/nll.h"

namespace mslr {
namespace {

int64_t width_of(const SubjectShape& shape, const std::string& group, const std::string& subject) {
  auto it = shape.widths.find(group);
  MSLR_CHECK(it != shape.widths.end(), "subject '", subject, "' has no group '", group, "'");
  return it->second;
}

int64_t props_of(const std::map<std::string, int64_t>& n_props, const std::string& group,
                 const std::string& who) {
  auto it = n_props.find(group);
  MSLR_CHECK(it != n_props.end(), who, " has no properties for group '", group,
             "', whose modes are predicted from them");
  return it->second;
}

}  // namespace

namespace {

// What the spec says of the mode matrix of input or output `index`: its group, source and predictor, and its
// number of columns (n_modes for p, the latent width for u).
struct SlotSpec {
  const std::string& group;
  ModeSource source;
  const PredictorSpec& predictor;
  int64_t cols;
};

SlotSpec slot_spec(const ModelSpec& spec, ModeSlot::Side side, int index) {
  if (side == ModeSlot::kInput) {
    const InputSpec& in = spec.inputs[index];
    return {in.group, in.modes, in.predictor, in.n_modes};
  }
  const OutputSpec& out = spec.outputs[index];
  return {out.group, out.modes, out.predictor, spec.trans_dims()[index]};
}

std::string slot_name(ModeSlot::Side side, const std::string& group) {
  return (side == ModeSlot::kInput ? "p." : "u.") + group;
}

}  // namespace

SharedModules::SharedModules(ModelSpec spec, const std::map<std::string, int64_t>& n_props)
    : spec_(std::move(spec)) {
  spec_.validate();
  const int sizes[2] = {static_cast<int>(spec_.inputs.size()), static_cast<int>(spec_.outputs.size())};
  for (const ModeSlot::Side side : {ModeSlot::kInput, ModeSlot::kOutput}) {
    for (int i = 0; i < sizes[side]; ++i) {
      const SlotSpec m = slot_spec(spec_, side, i);
      std::unique_ptr<ModePredictor> p;
      if (m.source == ModeSource::kPredicted && !m.predictor.per_subject)
        p = make_predictor(m.predictor, props_of(n_props, m.group, "the data"), m.cols, layout_,
                           "pred." + slot_name(side, m.group));
      pred_[side].push_back(std::move(p));
    }
  }
  if (spec_.shared_mapping)
    mapping_ =
        std::make_unique<Mapping>(*spec_.shared_mapping, spec_.specific_out_dims(), layout_, "shared_map");
}

at::Tensor SharedModules::initial_values(uint64_t seed, at::ScalarType dtype) const {
  return layout_.initial_values(seed, hash_name("shared"), dtype);
}

ModeSlot SubjectModel::make_slot(ModeSlot::Side side, int index, int64_t rows, const SubjectShape& shape) {
  const SlotSpec m = slot_spec(spec(), side, index);
  ModeSlot slot;
  slot.side = side;
  slot.index = index;
  slot.group = m.group;
  slot.name = slot_name(side, m.group);
  slot.source = m.source;
  slot.rows = rows;
  slot.cols = m.cols;
  const std::string who = "subject '" + name_ + "'";
  switch (m.source) {
    case ModeSource::kPredicted:
      if (m.predictor.per_subject) {
        own_predictors_.push_back(make_predictor(m.predictor, props_of(shape.n_props, m.group, who), m.cols,
                                                 layout_, "pred." + slot.name));
        slot.predictor = own_predictors_.back().get();
        slot.own_predictor = true;
      } else {
        slot.predictor = shared_.predictor(side, index);
        MSLR_CHECK(props_of(shape.n_props, m.group, who) == slot.predictor->n_props(), who, " has ",
                   shape.n_props.at(m.group), " properties for group '", m.group,
                   "', the shared predictor takes ", slot.predictor->n_props());
      }
      break;
    case ModeSource::kOwned:
      // Starting values of variance about 1/width of the side the modes are summed over.
      slot.owned = layout_.add(
          slot.name, {rows, m.cols},
          Init::normal(1.0 / std::sqrt(static_cast<double>(side == ModeSlot::kInput ? rows : m.cols))));
      break;
    case ModeSource::kGiven:
      // Fixed modes whose values come with the subject's data (set_given).
      slot.source = ModeSource::kFixed;
      slot.given = true;
      break;
    case ModeSource::kFixed:
      MSLR_CHECK(
          rows == m.cols, who, ", ", slot.side_name(), " group '", m.group, "': fixed identity modes need ",
          m.cols,
          side == ModeSlot::kInput ? " variables (the number of modes)" : " variables (the latent width)",
          ", the group has ", rows);
      slot.fixed = at::eye(rows, at::kDouble);
      slot.identity = side == ModeSlot::kInput;
      break;
  }
  return slot;
}

SubjectModel::SubjectModel(const SharedModules& shared, const SubjectShape& shape, std::string name)
    : shared_(shared), name_(std::move(name)) {
  const ModelSpec& spec = shared.spec();
  // The layout's order (each input's modes, the mapping, then each output's modes and noise) is part of the
  // checkpoint format: checkpoints compare layouts.
  std::vector<int64_t> proj_dims;
  for (size_t g = 0; g < spec.inputs.size(); ++g) {
    d_in_.push_back(width_of(shape, spec.inputs[g].group, name_));
    proj_dims.push_back(spec.inputs[g].n_modes);
    slots_.push_back(make_slot(ModeSlot::kInput, static_cast<int>(g), d_in_.back(), shape));
  }
  mapping_ = std::make_unique<Mapping>(spec.mapping, proj_dims, layout_, "map");
  d_trans_ = spec.trans_dims();

  for (size_t h = 0; h < spec.outputs.size(); ++h) {
    const OutputSpec& out = spec.outputs[h];
    const int64_t d = width_of(shape, out.group, name_);
    d_out_.push_back(d);
    slots_.push_back(make_slot(ModeSlot::kOutput, static_cast<int>(h), d, shape));
    psi_.push_back(layout_.add("psi." + out.group, {d}, Init::constant(spec.psi_init)));
    scale_.push_back(out.scales ? layout_.add("scale." + out.group, {d}, Init::constant(1.0)) : -1);
    offset_.push_back(out.offsets ? layout_.add("offset." + out.group, {d}, Init::constant(0.0)) : -1);
    slope_.push_back(out.nonlinearity == Activation::kPrelu
                         ? layout_.add("slope." + out.group, {d}, Init::constant(0.25))
                         : -1);
  }
  for (const auto& [g, h] : spec.direct_pairs) {
    const auto& gin = spec.inputs[g].group;
    const auto& hout = spec.outputs[h].group;
    MSLR_CHECK(d_in_[g] == d_out_[h], "subject '", name_, "': direct pair ", gin, " -> ", hout,
               " needs equal widths, input has ", d_in_[g], " and output has ", d_out_[h]);
    direct_.push_back(layout_.add("direct." + gin + "." + hout, {d_in_[g]}, Init::constant(0.0)));
  }
}

at::Tensor SubjectModel::initial_values(uint64_t seed, uint64_t subject_key, at::ScalarType dtype) const {
  return layout_.initial_values(seed, subject_key, dtype);
}

void SubjectModel::set_fixed(ModeSlot::Side side, int index, const at::Tensor& modes) {
  ModeSlot& slot = slots_[side == ModeSlot::kInput ? index : n_inputs() + index];
  MSLR_CHECK(slot.source == ModeSource::kFixed, slot.side_name(), " group '", slot.group,
             "' does not have fixed modes");
  MSLR_CHECK(modes.dim() == 2 && modes.size(0) == slot.rows && modes.size(1) == slot.cols, "subject '", name_,
             "': fixed modes of ", slot.side_name(), " group '", slot.group, "' have shape ",
             shape_str(modes.sizes()), ", expected [", slot.rows, ", ", slot.cols, "]");
  slot.fixed = modes;
  slot.identity = false;
}

void SubjectModel::to(const at::TensorOptions& options) {
  for (auto& slot : slots_)
    if (slot.fixed.defined()) slot.fixed = slot.fixed.to(options);
}

void SubjectModel::set_given(const std::map<std::string, at::Tensor>& modes) {
  for (const ModeSlot& slot : slots_) {
    if (!slot.given) continue;
    auto it = modes.find(slot.name);
    if (it == modes.end()) it = modes.find(slot.group);
    MSLR_CHECK(it != modes.end(), "subject '", name_, "' has no given modes for ", slot.side_name(),
               " group '", slot.group, "' (modes/", slot.group, " or modes/", slot.name, " in its data, [",
               slot.rows, ", ", slot.cols, "])");
    set_fixed(slot.side, slot.index, it->second.to(at::kDouble));  // to() moves it where the model runs
  }
}

at::Tensor SubjectModel::from_prediction(const ModeSlot& slot, const at::Tensor& raw) const {
  MSLR_CHECK(raw.dim() == 2 && raw.size(0) == slot.rows && raw.size(1) == slot.cols, "subject '", name_,
             "': predicted modes of ", slot.side_name(), " group '", slot.group, "' have shape ",
             shape_str(raw.sizes()), ", expected [", slot.rows, ", ", slot.cols, "]");
  return slot.side == ModeSlot::kInput && spec().p_modes_mean ? raw / static_cast<double>(slot.rows) : raw;
}

void SubjectModel::check_props(const std::map<std::string, at::Tensor>& props) const {
  for (const ModeSlot& slot : slots_) {
    if (!slot.predictor) continue;
    auto it = props.find(slot.group);
    MSLR_CHECK(it != props.end(), "subject '", name_, "' has no properties for group '", slot.group,
               "', whose modes are predicted from them");
    const at::Tensor& t = it->second;
    MSLR_CHECK(t.dim() == 2 && t.size(0) == slot.rows, "subject '", name_, "': properties of group '",
               slot.group, "' have ", t.dim() == 2 ? t.size(0) : -1, " rows, the group has ", slot.rows,
               " variables");
    MSLR_CHECK(t.size(1) == slot.predictor->n_props(), "subject '", name_, "': properties of group '",
               slot.group, "' have ", t.size(1), " columns, the predictor takes ", slot.predictor->n_props());
  }
}

ModeSet SubjectModel::predict_modes(const std::map<std::string, at::Tensor>& props,
                                    const ParamViews& params) const {
  check_props(props);
  ModeSet m;
  m.p.resize(n_inputs());
  m.u.resize(n_outputs());
  for (const ModeSlot& slot : slots_)
    if (slot.predictor)
      m.of(slot) = from_prediction(
          slot,
          slot.predictor->forward(props.at(slot.group), slot.own_predictor ? params.subject : params.shared));
  return m;
}

at::Tensor SubjectModel::mode(const ModeSlot& slot, const ModeSet& modes, const ParamViews& params) const {
  if (slot.owned >= 0) return params.subject[slot.owned];
  if (slot.fixed.defined()) return slot.fixed;
  MSLR_CHECK(!slot.given, "subject '", name_, "': the given modes of ", slot.side_name(), " group '",
             slot.group, "' were not set from its data");
  const at::Tensor* m = modes.find(slot);
  MSLR_CHECK(m, "subject '", name_, "': no modes supplied for ", slot.side_name(), " group '", slot.group,
             "'");
  MSLR_CHECK(m->dim() == 2 && m->size(0) == slot.rows && m->size(1) == slot.cols, "subject '", name_,
             "': modes of ", slot.side_name(), " group '", slot.group, "' have shape ", shape_str(m->sizes()),
             ", expected [", slot.rows, ", ", slot.cols, "]");
  return *m;
}

SubjectModel::Latents SubjectModel::latents(const std::vector<at::Tensor>& x, const ModeSet& modes,
                                            const ParamViews& params) const {
  const ModelSpec& spec = this->spec();
  MSLR_CHECK(static_cast<int>(x.size()) == n_inputs(), "subject '", name_, "': ", x.size(),
             " input groups given, the model has ", n_inputs());
  std::vector<at::Tensor> proj;  // proj[g]: [n, d_proj_g]
  for (int g = 0; g < n_inputs(); ++g) {
    MSLR_CHECK(x[g].dim() == 2 && x[g].size(1) == d_in_[g], "subject '", name_, "': input group '",
               spec.inputs[g].group, "' has ", x[g].dim() == 2 ? x[g].size(1) : -1,
               " columns, the model expects ", d_in_[g]);
    proj.push_back(p_slot(g).identity ? x[g] : x[g].mm(mode(p_slot(g), modes, params)));
  }
  std::vector<at::Tensor> tran = mapping_->forward(proj, params.subject);
  if (const Mapping* m = shared_.mapping()) tran = m->forward(tran, params.shared);
  return {std::move(proj), std::move(tran)};
}

std::vector<at::Tensor> SubjectModel::forward(const std::vector<at::Tensor>& x, const ModeSet& modes,
                                              const ParamViews& params) const {
  const ModelSpec& spec = this->spec();
  const std::vector<at::Tensor> tran = latents(x, modes, params).tran;

  std::vector<at::Tensor> mn;
  for (int h = 0; h < n_outputs(); ++h) {
    const at::Tensor z = tran[h].mm(mode(u_slot(h), modes, params).t());  // [n, d_out_h]
    at::Tensor w = apply_activation(spec.outputs[h].nonlinearity, z,
                                    slope_[h] >= 0 ? params.subject[slope_[h]] : at::Tensor());
    if (scale_[h] >= 0) w = w * params.subject[scale_[h]];
    if (offset_[h] >= 0) w = w + params.subject[offset_[h]];
    mn.push_back(w);
  }
  for (size_t k = 0; k < spec.direct_pairs.size(); ++k) {
    const auto [g, h] = spec.direct_pairs[k];
    mn[h] = mn[h] + x[g] * params.subject[direct_[k]];
  }
  return mn;
}

at::Tensor SubjectModel::nll(const std::vector<at::Tensor>& y, const std::vector<at::Tensor>& mn,
                             const ParamViews& params) const {
  MSLR_CHECK(static_cast<int>(y.size()) == n_outputs(), "subject '", name_, "': ", y.size(),
             " output groups given, the model has ", n_outputs());
  at::Tensor total;
  for (int h = 0; h < n_outputs(); ++h) {
    MSLR_CHECK(y[h].dim() == 2 && y[h].size(1) == d_out_[h], "subject '", name_, "': output group '",
               spec().outputs[h].group, "' has ", y[h].dim() == 2 ? y[h].size(1) : -1,
               " columns, the model expects ", d_out_[h]);
    at::Tensor v = gaussian_nll(y[h], mn[h], params.subject[psi_[h]]);
    total = total.defined() ? total + v : v;
  }
  return total;
}

at::Tensor SubjectModel::nll_reference(const std::vector<at::Tensor>& y, const std::vector<at::Tensor>& mn,
                                       const ParamViews& params) const {
  at::Tensor total;
  for (int h = 0; h < n_outputs(); ++h) {
    at::Tensor v = gaussian_nll_reference(y[h], mn[h], params.subject[psi_[h]]);
    total = total.defined() ? total + v : v;
  }
  return total;
}

at::Tensor SubjectModel::sample(int h, const at::Tensor& mn, const ParamViews& params, Rng& rng) const {
  at::Tensor noise = at::empty(mn.sizes(), at::kDouble);
  double* q = noise.data_ptr<double>();
  for (int64_t i = 0; i < noise.numel(); ++i)
    q[i] = rng.normal();
  return mn + noise.to(mn.options()) * params.subject[psi_[h]].sqrt();
}

SubjectModel::Generated SubjectModel::generate(int64_t n_time, const std::map<std::string, at::Tensor>& given,
                                               const std::map<std::string, at::Tensor>& initial,
                                               const ModeSet& modes, const ParamViews& params, Rng* noise,
                                               const std::map<std::string, std::string>& feed) const {
  at::NoGradGuard no_grad;
  const ModelSpec& spec = this->spec();
  const auto opts = params.subject.empty() ? at::TensorOptions(at::kDouble) : params.subject[0].options();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Generated out;
  for (int h = 0; h < n_outputs(); ++h) {
    const std::string& group = spec.outputs[h].group;
    at::Tensor values = at::full({n_time, d_out_[h]}, nan, opts);
    if (auto it = initial.find(group); it != initial.end())
      values[0].copy_(it->second.reshape({d_out_[h]}));
    else if (auto jt = given.find(group); jt != given.end())
      values[0].copy_(jt->second[0]);
    out.values[group] = values;
    out.means[group] = at::full({n_time, d_out_[h]}, nan, opts);
  }
  // Where each input comes from: a fed-back output named in `feed`, given data, or the output of its name.
  std::vector<at::Tensor> source;
  for (int g = 0; g < n_inputs(); ++g) {
    const std::string& group = spec.inputs[g].group;
    if (auto f = feed.find(group); f != feed.end()) {
      MSLR_CHECK(out.values.count(f->second), "generate: '", f->second, "', fed back into input group '",
                 group, "', is not an output group of the model");
      MSLR_CHECK(out.values.at(f->second).size(1) == d_in_[g], "generate: output group '", f->second,
                 "' has ", out.values.at(f->second).size(1), " variables, input group '", group, "' takes ",
                 d_in_[g]);
      MSLR_CHECK(initial.count(f->second) || given.count(f->second), "generate: fed-back group '", f->second,
                 "' needs an initial value");
      source.push_back(out.values.at(f->second));
    } else if (auto it = given.find(group); it != given.end()) {
      MSLR_CHECK(it->second.dim() == 2 && it->second.size(0) >= n_time && it->second.size(1) == d_in_[g],
                 "generate: given group '", group, "' has shape ", shape_str(it->second.sizes()),
                 ", expected [", n_time, ", ", d_in_[g], "]");
      source.push_back(it->second.to(opts));
    } else {
      MSLR_CHECK(out.values.count(group), "generate: input group '", group,
                 "' is neither given nor an output of the model");
      MSLR_CHECK(initial.count(group) || given.count(group), "generate: fed-back group '", group,
                 "' needs an initial value");
      source.push_back(out.values.at(group));
    }
  }
  for (int64_t t = 1; t < n_time; ++t) {
    std::vector<at::Tensor> x;
    for (int g = 0; g < n_inputs(); ++g)
      x.push_back(source[g].narrow(0, t - 1, 1));  // [1, d_in_g]
    const auto mn = forward(x, modes, params);
    for (int h = 0; h < n_outputs(); ++h) {
      const std::string& group = spec.outputs[h].group;
      out.means[group][t].copy_(mn[h][0]);
      out.values[group][t].copy_(noise ? sample(h, mn[h], params, *noise)[0] : mn[h][0]);
    }
  }
  return out;
}

}  // namespace mslr
