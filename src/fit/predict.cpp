#include "mslr/fit/predict.h"

#include <ATen/core/grad_mode.h>

#include "mslr/core/error.h"
#include "mslr/core/rng.h"
#include "mslr/model/batched.h"

namespace mslr {

namespace {

// The batched forward, one batch of sample pairs at a time.
SubjectPrediction predict_batched(const SubjectModel& model, const at::Tensor& subject_params,
                                  const at::Tensor& shared_params, const SubjectData& data,
                                  const at::Tensor& times, int64_t batch_size) {
  const at::ScalarType dtype = subject_params.scalar_type();
  const at::Tensor t = times.to(at::kLong).contiguous();
  const int64_t n = t.numel();
  BatchedSubject b;
  b.model = &model;
  for (const auto& g : model.spec().groups())
    b.groups[g] = data.group(g).to(dtype).contiguous();
  b.props = data.props;
  b.max_batch = std::min(batch_size, std::max<int64_t>(n, 1));
  BatchedModel batched(model.shared(), {b}, dtype);
  const at::Tensor sp = subject_params.contiguous(), shp = shared_params.contiguous();
  SubjectPrediction out;
  std::vector<std::vector<at::Tensor>> parts(model.n_outputs());
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t count = std::min(batch_size, n - start);
    std::vector<std::vector<at::Tensor>> means(1);
    for (int h = 0; h < model.n_outputs(); ++h)
      means[0].push_back(at::empty({count, model.d_out(h)}, at::TensorOptions().dtype(dtype)));
    const Minibatch mb{{t.data_ptr<int64_t>() + start}, {count}, {1.0}};
    double nll = 0.0;
    batched.forward(mb, {sp}, shp, means, &nll);
    out.nll += nll;
    for (int h = 0; h < model.n_outputs(); ++h)
      parts[h].push_back(means[0][h]);
  }
  for (int h = 0; h < model.n_outputs(); ++h)
    out.means.push_back(parts[h].empty() ? at::zeros({0, model.d_out(h)}, at::TensorOptions().dtype(dtype))
                                         : at::cat(parts[h]));
  out.samples = n;
  return out;
}

}  // namespace

SubjectPrediction predict_subject(const SubjectModel& model, const at::Tensor& subject_params,
                                  const at::Tensor& shared_params, const SubjectData& data,
                                  const at::Tensor& times, int64_t batch_size) {
  MSLR_CHECK(batch_size >= 1, "batch-size must be >= 1, got ", batch_size);
  at::NoGradGuard no_grad;
  const bool batched =
      subject_params.device().is_cpu() && shared_params.device().is_cpu() &&
      subject_params.scalar_type() == shared_params.scalar_type() &&
      (subject_params.scalar_type() == at::kFloat || subject_params.scalar_type() == at::kDouble) &&
      batched_step_gap(model.spec()).empty();
  if (batched) {
    model.check_props(data.props);
    return predict_batched(model, subject_params, shared_params, data, times, batch_size);
  }
  const ParamViews params{model.layout().views(subject_params), model.shared().layout().views(shared_params)};
  const auto opts = subject_params.options();
  std::map<std::string, at::Tensor> props;
  for (const auto& [g, p] : data.props)
    props[g] = p.to(opts);
  const ModeSet modes = model.predict_modes(props, params);
  SubjectPrediction out;
  std::vector<std::vector<at::Tensor>> parts(model.n_outputs());
  const int64_t n = times.numel();
  for (int64_t start = 0; start < n; start += batch_size) {
    const at::Tensor t = times.narrow(0, start, std::min(batch_size, n - start));
    std::vector<at::Tensor> x, y;
    for (const auto& g : model.spec().inputs)
      x.push_back(gather_rows(data.group(g.group), t, -1).to(opts));
    for (const auto& h : model.spec().outputs)
      y.push_back(gather_rows(data.group(h.group), t, 0).to(opts));
    const auto mn = model.forward(x, modes, params);
    out.nll += model.nll(y, mn, params).item<double>();
    for (int h = 0; h < model.n_outputs(); ++h)
      parts[h].push_back(mn[h].cpu());
  }
  for (int h = 0; h < model.n_outputs(); ++h)
    out.means.push_back(parts[h].empty() ? at::zeros({0, model.d_out(h)}, opts.device(at::kCPU))
                                         : at::cat(parts[h]));
  out.samples = n;
  return out;
}

}  // namespace mslr

namespace mslr {

at::Tensor estimate_unfitted_params(const SubjectModel& model, const at::Tensor& shared_params,
                                    const SubjectData& data, const at::Tensor& times, double min_var,
                                    uint64_t seed) {
  const auto& layout = model.layout();
  std::string missing;
  for (const auto& e : layout.entries()) {
    const std::string kind = e.name.substr(0, e.name.find('.'));
    if (kind != "psi" && kind != "offset" && kind != "scale")
      missing += (missing.empty() ? "" : ", ") + e.name;
  }
  MSLR_CHECK(missing.empty(), "subject '", model.name(),
             "' was never fitted, and its model has parameters that only a fit gives (", missing,
             "); fit it first, e.g. mslr fit --init-from CHECKPOINT --subjects ", model.name());
  MSLR_CHECK(times.numel() > 0, "subject '", model.name(),
             "' has no training samples to set its offsets and noise from");
  const at::ScalarType dtype = shared_params.scalar_type();
  // With scale 1 and offset 0 the means are s(z) alone; each output variable's scale and offset are then the
  // least-squares fit of its training data on them, and psi the variance of what is left.
  at::Tensor params = model.initial_values(seed, hash_name(model.name()), dtype);  // scales 1, offsets 0
  const auto base = predict_subject(model, params, shared_params, data, times, 4096);
  at::NoGradGuard no_grad;
  for (int h = 0; h < model.n_outputs(); ++h) {
    const std::string& g = model.spec().outputs[h].group;
    const at::Tensor y = gather_rows(data.group(g), times, 0).to(at::kDouble);
    const at::Tensor m = base.means[h].to(at::kDouble);
    const bool scaled = layout.contains("scale." + g), offset = layout.contains("offset." + g);
    at::Tensor a = at::ones({model.d_out(h)}, at::kDouble), b = at::zeros({model.d_out(h)}, at::kDouble);
    if (scaled && offset) {
      const at::Tensor mc = m - m.mean(0), var = mc.pow(2).mean(0);
      a = at::where(var > 0, (mc * (y - y.mean(0))).mean(0) / var.clamp_min(1e-300), a);
      b = y.mean(0) - a * m.mean(0);
    } else if (scaled) {
      const at::Tensor mm = m.pow(2).sum(0);
      a = at::where(mm > 0, (m * y).sum(0) / mm.clamp_min(1e-300), a);
    } else if (offset) {
      b = (y - m).mean(0);
    }
    if (scaled) layout.view(params, layout.index_of("scale." + g)).copy_(a);
    if (offset) layout.view(params, layout.index_of("offset." + g)).copy_(b);
    layout.view(params, model.psi_index(h)).copy_((y - a * m - b).pow(2).mean(0).clamp_min(min_var));
  }
  return params;
}

}  // namespace mslr
