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
  for (int s = 0; s < c.subjects; ++s) {
    Rng rng(c.seed, {kRngSimulate, static_cast<uint64_t>(s)});
    const int64_t n = c.neurons_min + static_cast<int64_t>(rng.below(c.neurons_max - c.neurons_min + 1));
    SubjectData d;
    d.name = "subject" + std::to_string(s);
    at::Tensor pos = at::empty({n, 3}, at::kDouble);
    for (int64_t i = 0; i < pos.numel(); ++i) pos.data_ptr<double>()[i] = rng.uniform();
    at::Tensor stim = at::empty({c.time_points, c.stim_dims}, at::kDouble);
    for (int64_t i = 0; i < stim.numel(); ++i) stim.data_ptr<double>()[i] = rng.normal();
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
    p.infos.push_back({d.name, {{{"stim", c.stim_dims}, {"neurons", n}}, {{"neurons", 3}}}, c.time_points, {}});
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
    SubjectModel m(shared, p.infos[s].shape, p.infos[s].name);
    offset.push_back(total);
    total += m.layout().numel();
  }
  at::Tensor all = at::zeros({total}, at::kDouble);
  for (const auto& ss : st.subjects) all.narrow(0, offset[ss.index], ss.params.numel()).copy_(ss.params);
  comm.all_reduce_sum(all);
  std::vector<at::Tensor> out;
  for (size_t s = 0; s < p.infos.size(); ++s) {
    const int64_t end = s + 1 < p.infos.size() ? offset[s + 1] : total;
    out.push_back(all.narrow(0, offset[s], end - offset[s]));
  }
  return out;
}

}  // namespace mslr::test
