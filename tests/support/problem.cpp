#include "problem.h"

#include <ATen/core/grad_mode.h>

#include "mslr/core/rng.h"

namespace mslr::test {

ModelSpec problem_spec(const ProblemConfig& c) {
  ModelSpec spec;
  InputSpec stim{"stim", c.stim_dims, ModeSource::kFixed, {}};
  InputSpec neurons{"neurons", c.modes, ModeSource::kPredicted, {}};
  neurons.predictor.hidden = c.hidden;
  OutputSpec out{"neurons", ModeSource::kPredicted, {}, Activation::kIdentity, false, true};
  out.predictor.hidden = c.hidden;
  spec.inputs = {stim, neurons};
  spec.outputs = {out};
  spec.psi_init = 1.0;
  return spec;
}

Problem make_problem(const ProblemConfig& c) {
  at::NoGradGuard no_grad;
  Problem p;
  p.config = c;
  p.spec = problem_spec(c);
  SharedModules shared(p.spec, {{"neurons", 3}});
  // The truth: the model's own random start, with stronger predictor outputs so that the latents matter.
  p.true_shared = shared.initial_values(c.seed + 1000, at::kDouble) * 1.5;
  std::vector<at::Tensor> positions;
  for (int s = 0; s < c.subjects; ++s) {
    Rng rng(c.seed, {kRngSimulate, static_cast<uint64_t>(s)});
    const int64_t n = c.neurons_min + static_cast<int64_t>(rng.below(c.neurons_max - c.neurons_min + 1));
    at::Tensor pos = at::empty({n, 3}, at::kDouble);
    for (int64_t i = 0; i < pos.numel(); ++i)
      pos.data_ptr<double>()[i] = rng.uniform();
    positions.push_back(pos);
  }
  // Stable dynamics: the latent recurrence A = pᵀ·u_neurons of every subject must have spectral radius below
  // 0.8; scaling the u-predictor's last layer scales A.
  double radius = 0.0;
  for (const auto& pos : positions) {
    const int64_t n = pos.size(0);
    SubjectModel model(shared, {{{"stim", c.stim_dims}, {"neurons", n}}, {{"neurons", 3}}});
    const ParamViews v{model.layout().views(model.initial_values(0, 0, at::kDouble)),
                       shared.layout().views(p.true_shared)};
    const ModeSet modes = model.predict_modes({{"neurons", pos}}, v);
    const at::Tensor a = modes.p[1].t().mm(modes.u[0].narrow(1, c.stim_dims, c.modes));  // [K, K]
    radius = std::max(radius, at::linalg_eigvals(a).abs().max().item<double>());
  }
  if (radius > 0.8) {
    const std::string last = std::to_string(c.hidden.size());
    for (const std::string name : {"pred.u.neurons.w" + last, "pred.u.neurons.b" + last})
      shared.layout().view(p.true_shared, shared.layout().index_of(name)).mul_(0.8 / radius);
  }
  for (int s = 0; s < c.subjects; ++s) {
    Rng rng(c.seed, {kRngSample, static_cast<uint64_t>(s)});
    const at::Tensor& pos = positions[s];
    const int64_t n = pos.size(0);
    SubjectData d;
    d.name = "subject" + std::to_string(s);
    at::Tensor stim = at::empty({c.time_points, c.stim_dims}, at::kDouble);
    for (int64_t i = 0; i < stim.numel(); ++i)
      stim.data_ptr<double>()[i] = rng.normal();
    SubjectModel model(shared, {{{"stim", c.stim_dims}, {"neurons", n}}, {{"neurons", 3}}}, d.name);
    at::Tensor params = model.initial_values(c.seed + 1000, hash_name(d.name), at::kDouble);
    model.layout().view(params, model.psi_index(0)).fill_(c.noise);
    const ParamViews v{model.layout().views(params), shared.layout().views(p.true_shared)};
    const ModeSet modes = model.predict_modes({{"neurons", pos}}, v);
    at::Tensor x0 = at::zeros({n}, at::kDouble);
    const auto g = model.generate(c.time_points, {{"stim", stim}}, {{"neurons", x0}}, modes, v, &rng);
    d.groups = {{"stim", stim.to(at::kFloat)}, {"neurons", g.values.at("neurons").to(at::kFloat)}};
    d.props = {{"neurons", pos.to(at::kFloat)}};
    d.true_means = {{"neurons", g.means.at("neurons").to(at::kFloat)}};
    SubjectInfo info;
    info.name = d.name;
    info.widths = {{"stim", c.stim_dims}, {"neurons", n}};
    info.n_props = {{"neurons", 3}};
    info.n_time = c.time_points;
    info.has_true_means = true;
    p.infos.push_back(info);
    p.data.push_back(std::move(d));
    p.true_subject.push_back(params);
  }
  return p;
}

std::vector<at::Tensor> all_subject_params(const Communicator& comm, const Fitter& fitter, const Problem& p) {
  const FitState st = fitter.state();
  std::vector<int64_t> sizes;
  int64_t total = 0;
  std::vector<int64_t> offset;
  SharedModules shared(p.spec, {{"neurons", 3}});
  for (int s = 0; s < static_cast<int>(p.infos.size()); ++s) {
    SubjectModel m(shared, shape_of(p.infos[s]), p.infos[s].name);
    offset.push_back(total);
    total += m.layout().numel();
  }
  at::Tensor all = at::zeros({total}, at::kDouble);
  for (const auto& ss : st.subjects)
    all.narrow(0, offset[ss.index], ss.params.numel()).copy_(ss.params);
  comm.all_reduce_sum(all);
  std::vector<at::Tensor> out;
  for (size_t s = 0; s < p.infos.size(); ++s) {
    const int64_t end = s + 1 < p.infos.size() ? offset[s + 1] : total;
    out.push_back(all.narrow(0, offset[s], end - offset[s]));
  }
  return out;
}

}  // namespace mslr::test
