#include "mslr/fit/predict.h"

#include <ATen/core/grad_mode.h>

#include "mslr/core/error.h"
#include "mslr/core/rng.h"

namespace mslr {

SubjectPrediction predict_subject(const SubjectModel& model, const ParamViews& params,
                                  const SubjectData& data, const at::Tensor& times, int64_t batch_size) {
  MSLR_CHECK(batch_size >= 1, "batch-size must be >= 1, got ", batch_size);
  at::NoGradGuard no_grad;
  const auto opts = params.subject.empty() ? params.shared.at(0).options() : params.subject[0].options();
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

at::Tensor estimate_unfitted_params(const SubjectModel& model, const std::vector<at::Tensor>& shared_params,
                                    const SubjectData& data, const at::Tensor& times, double min_var,
                                    uint64_t seed) {
  MSLR_CHECK(times.numel() > 0, "subject '", model.name(),
             "' has no training samples to set its offsets and noise from");
  const at::ScalarType dtype = shared_params.empty() ? at::kFloat : shared_params[0].scalar_type();
  at::Tensor params = model.initial_values(seed, hash_name(model.name()), dtype);
  const auto& layout = model.layout();
  const auto base = predict_subject(model, {layout.views(params), shared_params}, data, times, 4096);
  at::NoGradGuard no_grad;
  for (int h = 0; h < model.n_outputs(); ++h) {
    const std::string& g = model.spec().outputs[h].group;
    const at::Tensor resid =
        gather_rows(data.group(g), times, 0).to(at::kDouble) - base.means[h].to(at::kDouble);
    at::Tensor offset = at::zeros({model.d_out(h)}, at::kDouble);
    if (layout.contains("offset." + g)) {
      offset = resid.mean(0);
      layout.view(params, layout.index_of("offset." + g)).copy_(offset);
    }
    layout.view(params, model.psi_index(h)).copy_((resid - offset).pow(2).mean(0).clamp_min(min_var));
  }
  return params;
}

}  // namespace mslr
