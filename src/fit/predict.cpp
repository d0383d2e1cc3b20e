#include "mslr/fit/predict.h"

#include <ATen/core/grad_mode.h>

#include "mslr/core/error.h"

namespace mslr {

SubjectPrediction predict_subject(const SubjectModel& model, const ParamViews& params, const SubjectData& data,
                                  const at::Tensor& times, int64_t batch_size) {
  MSLR_CHECK(batch_size >= 1, "batch-size must be >= 1, got ", batch_size);
  at::NoGradGuard no_grad;
  const auto opts = params.subject.empty() ? params.shared.at(0).options() : params.subject[0].options();
  std::map<std::string, at::Tensor> props;
  for (const auto& [g, p] : data.props) props[g] = p.to(opts);
  const ModeSet modes = model.predict_modes(props, params);
  SubjectPrediction out;
  std::vector<std::vector<at::Tensor>> parts(model.n_outputs());
  const int64_t n = times.numel();
  for (int64_t start = 0; start < n; start += batch_size) {
    const at::Tensor t = times.narrow(0, start, std::min(batch_size, n - start));
    std::vector<at::Tensor> x, y;
    for (const auto& g : model.spec().inputs) x.push_back(gather_rows(data.group(g.group), t, -1).to(opts));
    for (const auto& h : model.spec().outputs) y.push_back(gather_rows(data.group(h.group), t, 0).to(opts));
    const auto mn = model.forward(x, modes, params);
    out.nll += model.nll(y, mn, params).item<double>();
    for (int h = 0; h < model.n_outputs(); ++h) parts[h].push_back(mn[h].cpu());
  }
  for (int h = 0; h < model.n_outputs(); ++h)
    out.means.push_back(parts[h].empty() ? at::zeros({0, model.d_out(h)}, opts.device(at::kCPU)) : at::cat(parts[h]));
  out.samples = n;
  return out;
}

}  // namespace mslr
