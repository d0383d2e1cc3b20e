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

SharedModules::SharedModules(ModelSpec spec, const std::map<std::string, int64_t>& n_props)
    : spec_(std::move(spec)) {
  spec_.validate();
  const auto trans = spec_.trans_dims();
  for (const auto& g : spec_.inputs) {
    std::unique_ptr<ModePredictor> p;
    if (g.modes == ModeSource::kPredicted && !g.predictor.per_subject)
      p = make_predictor(g.predictor, props_of(n_props, g.group, "the data"), g.n_modes, layout_,
                         "pred.p." + g.group);
    p_pred_.push_back(std::move(p));
  }
  for (size_t h = 0; h < spec_.outputs.size(); ++h) {
    const auto& o = spec_.outputs[h];
    std::unique_ptr<ModePredictor> p;
    if (o.modes == ModeSource::kPredicted && !o.predictor.per_subject)
      p = make_predictor(o.predictor, props_of(n_props, o.group, "the data"), trans[h], layout_,
                         "pred.u." + o.group);
    u_pred_.push_back(std::move(p));
  }
  if (spec_.shared_mapping)
    mapping_ =
        std::make_unique<Mapping>(*spec_.shared_mapping, spec_.specific_out_dims(), layout_, "shared_map");
}

at::Tensor SharedModules::initial_values(uint64_t seed, at::ScalarType dtype) const {
  return layout_.initial_values(seed, hash_name("shared"), dtype);
}

SubjectModel::SubjectModel(const SharedModules& shared, const SubjectShape& shape, std::string name)
    : shared_(shared), name_(std::move(name)) {
  const ModelSpec& spec = shared.spec();
  std::vector<int64_t> proj_dims;
  for (size_t g = 0; g < spec.inputs.size(); ++g) {
    const InputSpec& in = spec.inputs[g];
    const int64_t d = width_of(shape, in.group, name_);
    d_in_.push_back(d);
    proj_dims.push_back(in.n_modes);
    std::unique_ptr<ModePredictor> own;
    int owned = -1;
    at::Tensor fixed;
    bool identity = false;
    switch (in.modes) {
      case ModeSource::kPredicted:
        if (in.predictor.per_subject)
          own = make_predictor(in.predictor, props_of(shape.n_props, in.group, "subject '" + name_ + "'"),
                               in.n_modes, layout_, "pred.p." + in.group);
        else
          MSLR_CHECK(props_of(shape.n_props, in.group, "subject '" + name_ + "'") ==
                         shared.p_predictor(g)->n_props(),
                     "subject '", name_, "' has ", shape.n_props.at(in.group), " properties for group '",
                     in.group, "', the shared predictor takes ", shared.p_predictor(g)->n_props());
        break;
      case ModeSource::kOwned:
        owned = layout_.add("p." + in.group, {d, in.n_modes},
                            Init::normal(1.0 / std::sqrt(static_cast<double>(d))));
        break;
      case ModeSource::kFixed:
        MSLR_CHECK(d == in.n_modes, "subject '", name_, "', input group '", in.group,
                   "': fixed identity modes need ", in.n_modes,
                   " variables (the number of modes), the group has ", d);
        fixed = at::eye(d, at::kDouble);
        identity = true;
        break;
    }
    own_p_pred_.push_back(std::move(own));
    p_owned_.push_back(owned);
    p_fixed_.push_back(fixed);
    p_identity_.push_back(identity);
  }
  mapping_ = std::make_unique<Mapping>(spec.mapping, proj_dims, layout_, "map");
  d_trans_ = spec.trans_dims();

  for (size_t h = 0; h < spec.outputs.size(); ++h) {
    const OutputSpec& out = spec.outputs[h];
    const int64_t d = width_of(shape, out.group, name_);
    d_out_.push_back(d);
    std::unique_ptr<ModePredictor> own;
    int owned = -1;
    at::Tensor fixed;
    switch (out.modes) {
      case ModeSource::kPredicted:
        if (out.predictor.per_subject)
          own = make_predictor(out.predictor, props_of(shape.n_props, out.group, "subject '" + name_ + "'"),
                               d_trans_[h], layout_, "pred.u." + out.group);
        else
          MSLR_CHECK(props_of(shape.n_props, out.group, "subject '" + name_ + "'") ==
                         shared.u_predictor(h)->n_props(),
                     "subject '", name_, "' has ", shape.n_props.at(out.group), " properties for group '",
                     out.group, "', the shared predictor takes ", shared.u_predictor(h)->n_props());
        break;
      case ModeSource::kOwned:
        owned = layout_.add("u." + out.group, {d, d_trans_[h]},
                            Init::normal(1.0 / std::sqrt(static_cast<double>(d_trans_[h]))));
        break;
      case ModeSource::kFixed:
        MSLR_CHECK(d == d_trans_[h], "subject '", name_, "', output group '", out.group,
                   "': fixed identity modes need ", d_trans_[h],
                   " variables (the latent width), the group has ", d);
        fixed = at::eye(d, at::kDouble);
        break;
    }
    own_u_pred_.push_back(std::move(own));
    u_owned_.push_back(owned);
    u_fixed_.push_back(fixed);
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

void SubjectModel::set_fixed_p(int g, const at::Tensor& modes) {
  const auto& in = spec().inputs[g];
  MSLR_CHECK(in.modes == ModeSource::kFixed, "input group '", in.group, "' does not have fixed modes");
  MSLR_CHECK(modes.dim() == 2 && modes.size(0) == d_in_[g] && modes.size(1) == in.n_modes, "subject '", name_,
             "': fixed modes of input group '", in.group, "' have shape ", shape_str(modes.sizes()),
             ", expected [", d_in_[g], ", ", in.n_modes, "]");
  p_fixed_[g] = modes;
  p_identity_[g] = false;
}

void SubjectModel::set_fixed_u(int h, const at::Tensor& modes) {
  const auto& out = spec().outputs[h];
  MSLR_CHECK(out.modes == ModeSource::kFixed, "output group '", out.group, "' does not have fixed modes");
  MSLR_CHECK(modes.dim() == 2 && modes.size(0) == d_out_[h] && modes.size(1) == d_trans_[h], "subject '",
             name_, "': fixed modes of output group '", out.group, "' have shape ", shape_str(modes.sizes()),
             ", expected [", d_out_[h], ", ", d_trans_[h], "]");
  u_fixed_[h] = modes;
}

void SubjectModel::to(const at::TensorOptions& options) {
  for (auto& t : p_fixed_)
    if (t.defined()) t = t.to(options);
  for (auto& t : u_fixed_)
    if (t.defined()) t = t.to(options);
}

const ModePredictor* SubjectModel::p_predictor(int g) const {
  return own_p_pred_[g] ? own_p_pred_[g].get() : shared_.p_predictor(g);
}

const ModePredictor* SubjectModel::u_predictor(int h) const {
  return own_u_pred_[h] ? own_u_pred_[h].get() : shared_.u_predictor(h);
}

at::Tensor SubjectModel::p_from_prediction(int g, const at::Tensor& raw) const {
  const auto& in = spec().inputs[g];
  MSLR_CHECK(raw.dim() == 2 && raw.size(0) == d_in_[g] && raw.size(1) == in.n_modes, "subject '", name_,
             "': predicted modes of input group '", in.group, "' have shape ", shape_str(raw.sizes()),
             ", expected [", d_in_[g], ", ", in.n_modes, "]");
  return spec().p_modes_mean ? raw / static_cast<double>(d_in_[g]) : raw;
}

at::Tensor SubjectModel::u_from_prediction(int h, const at::Tensor& raw) const {
  MSLR_CHECK(raw.dim() == 2 && raw.size(0) == d_out_[h] && raw.size(1) == d_trans_[h], "subject '", name_,
             "': predicted modes of output group '", spec().outputs[h].group, "' have shape ",
             shape_str(raw.sizes()), ", expected [", d_out_[h], ", ", d_trans_[h], "]");
  return raw;
}

void SubjectModel::check_props(const std::map<std::string, at::Tensor>& props) const {
  auto check = [&](const std::string& group, int64_t width, const ModePredictor* pred) {
    auto it = props.find(group);
    MSLR_CHECK(it != props.end(), "subject '", name_, "' has no properties for group '", group,
               "', whose modes are predicted from them");
    const at::Tensor& t = it->second;
    MSLR_CHECK(t.dim() == 2 && t.size(0) == width, "subject '", name_, "': properties of group '", group,
               "' have ", t.dim() == 2 ? t.size(0) : -1, " rows, the group has ", width, " variables");
    MSLR_CHECK(t.size(1) == pred->n_props(), "subject '", name_, "': properties of group '", group, "' have ",
               t.size(1), " columns, the predictor takes ", pred->n_props());
  };
  for (int g = 0; g < n_inputs(); ++g)
    if (p_predictor(g)) check(spec().inputs[g].group, d_in_[g], p_predictor(g));
  for (int h = 0; h < n_outputs(); ++h)
    if (u_predictor(h)) check(spec().outputs[h].group, d_out_[h], u_predictor(h));
}

std::vector<SubjectModel::PredictedMode> SubjectModel::predicted_modes() const {
  std::vector<PredictedMode> out;
  for (int g = 0; g < n_inputs(); ++g)
    if (p_predictor(g)) out.push_back({"p." + spec().inputs[g].group, {d_in(g), spec().inputs[g].n_modes}, true, g});
  for (int h = 0; h < n_outputs(); ++h)
    if (u_predictor(h)) out.push_back({"u." + spec().outputs[h].group, {d_out(h), d_trans(h)}, false, h});
  return out;
}

ModeSet SubjectModel::predict_modes(const std::map<std::string, at::Tensor>& props,
                                    const ParamViews& params) const {
  check_props(props);
  ModeSet m;
  m.p.resize(n_inputs());
  m.u.resize(n_outputs());
  for (int g = 0; g < n_inputs(); ++g)
    if (const ModePredictor* pred = p_predictor(g))
      m.p[g] = p_from_prediction(g, pred->forward(props.at(spec().inputs[g].group),
                                                  p_predictor_own(g) ? params.subject : params.shared));
  for (int h = 0; h < n_outputs(); ++h)
    if (const ModePredictor* pred = u_predictor(h))
      m.u[h] = u_from_prediction(h, pred->forward(props.at(spec().outputs[h].group),
                                                  u_predictor_own(h) ? params.subject : params.shared));
  return m;
}

at::Tensor SubjectModel::p_mode(int g, const ModeSet& modes, const ParamViews& params) const {
  if (p_owned_[g] >= 0) return params.subject[p_owned_[g]];
  if (p_fixed_[g].defined()) return p_fixed_[g];
  MSLR_CHECK(g < static_cast<int>(modes.p.size()) && modes.p[g].defined(), "subject '", name_,
             "': no modes supplied for input group '", spec().inputs[g].group, "'");
  const at::Tensor& p = modes.p[g];
  MSLR_CHECK(p.dim() == 2 && p.size(0) == d_in_[g] && p.size(1) == spec().inputs[g].n_modes, "subject '",
             name_, "': modes of input group '", spec().inputs[g].group, "' have shape ",
             shape_str(p.sizes()), ", expected [", d_in_[g], ", ", spec().inputs[g].n_modes, "]");
  return p;
}

at::Tensor SubjectModel::u_mode(int h, const ModeSet& modes, const ParamViews& params) const {
  if (u_owned_[h] >= 0) return params.subject[u_owned_[h]];
  if (u_fixed_[h].defined()) return u_fixed_[h];
  MSLR_CHECK(h < static_cast<int>(modes.u.size()) && modes.u[h].defined(), "subject '", name_,
             "': no modes supplied for output group '", spec().outputs[h].group, "'");
  const at::Tensor& u = modes.u[h];
  MSLR_CHECK(u.dim() == 2 && u.size(0) == d_out_[h] && u.size(1) == d_trans_[h], "subject '", name_,
             "': modes of output group '", spec().outputs[h].group, "' have shape ", shape_str(u.sizes()),
             ", expected [", d_out_[h], ", ", d_trans_[h], "]");
  return u;
}

std::vector<at::Tensor> SubjectModel::forward(const std::vector<at::Tensor>& x, const ModeSet& modes,
                                              const ParamViews& params) const {
  const ModelSpec& spec = this->spec();
  MSLR_CHECK(static_cast<int>(x.size()) == n_inputs(), "subject '", name_, "': ", x.size(),
             " input groups given, the model has ", n_inputs());
  std::vector<at::Tensor> proj;  // proj[g]: [n, d_proj_g]
  for (int g = 0; g < n_inputs(); ++g) {
    MSLR_CHECK(x[g].dim() == 2 && x[g].size(1) == d_in_[g], "subject '", name_, "': input group '",
               spec.inputs[g].group, "' has ", x[g].dim() == 2 ? x[g].size(1) : -1,
               " columns, the model expects ", d_in_[g]);
    proj.push_back(p_identity_[g] ? x[g] : x[g].mm(p_mode(g, modes, params)));
  }
  std::vector<at::Tensor> tran = mapping_->forward(proj, params.subject);
  if (const Mapping* m = shared_.mapping()) tran = m->forward(tran, params.shared);

  std::vector<at::Tensor> mn;
  for (int h = 0; h < n_outputs(); ++h) {
    const at::Tensor z = tran[h].mm(u_mode(h, modes, params).t());  // [n, d_out_h]
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
                                               const ModeSet& modes, const ParamViews& params,
                                               Rng* noise) const {
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
  // Where each input comes from: given data, or the fed-back output.
  std::vector<at::Tensor> source;
  for (int g = 0; g < n_inputs(); ++g) {
    const std::string& group = spec.inputs[g].group;
    if (auto it = given.find(group); it != given.end()) {
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
