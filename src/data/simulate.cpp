#include "mslr/data/simulate.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

#include "mslr/core/error.h"
#include "mslr/core/rng.h"
#include "mslr/model/subject_model.h"

namespace mslr {
namespace {

// A smooth function on the unit cube: a sum of Gaussian bumps with random centres, widths and signs.
struct BumpFunction {
  std::vector<std::array<double, 3>> centre;
  std::vector<double> weight, inv_two_var;

  BumpFunction(Rng& rng, int bumps) {
    for (int b = 0; b < bumps; ++b) {
      centre.push_back({rng.uniform(), rng.uniform(), rng.uniform()});
      weight.push_back((rng.uniform() < 0.5 ? -1.0 : 1.0) * (0.6 + 0.8 * rng.uniform()));
      const double width = 0.15 + 0.15 * rng.uniform();
      inv_two_var.push_back(1.0 / (2.0 * width * width));
    }
  }
  double operator()(const double* x) const {
    double v = 0;
    for (size_t b = 0; b < centre.size(); ++b) {
      double r2 = 0;
      for (int d = 0; d < 3; ++d)
        r2 += (x[d] - centre[b][d]) * (x[d] - centre[b][d]);
      v += weight[b] * std::exp(-r2 * inv_two_var[b]);
    }
    return v;
  }
};

// [N, k] values of k bump functions at the positions [N, 3].
at::Tensor evaluate(const std::vector<BumpFunction>& fns, const at::Tensor& pos) {
  const int64_t n = pos.size(0), k = static_cast<int64_t>(fns.size());
  at::Tensor out = at::empty({n, k}, at::kDouble);
  const double* p = pos.data_ptr<double>();
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      o[i * k + j] = fns[j](p + 3 * i);
  return out;
}

ModelSpec generating_spec(const SimulateOptions& o) {
  ModelSpec spec;
  spec.inputs = {{"stim", o.stim_dims, ModeSource::kFixed, {}},
                 {"neurons", o.modes, ModeSource::kPredicted, {}}};
  spec.outputs = {{"neurons", ModeSource::kPredicted, {}, Activation::kIdentity, false, true}};
  spec.mapping.kind = MappingSpec::kConcat;
  spec.psi_init = o.noise;
  return spec;
}

}  // namespace

void SimulateOptions::validate() const {
  MSLR_CHECK(subjects >= 1, "subjects must be >= 1, got ", subjects);
  MSLR_CHECK(neurons_min >= 1 && neurons_max >= neurons_min,
             "neurons-min/neurons-max must satisfy 1 <= min <= max, got ", neurons_min, " and ", neurons_max);
  MSLR_CHECK(time_points >= 3, "time-points must be >= 3, got ", time_points);
  MSLR_CHECK(stim_dims >= 1, "stim-dims must be >= 1, got ", stim_dims);
  MSLR_CHECK(modes >= 1, "modes must be >= 1, got ", modes);
  MSLR_CHECK(noise > 0, "noise must be positive, got ", noise);
  MSLR_CHECK(stability > 0 && stability < 1, "stability must be in (0, 1), got ", stability);
  MSLR_CHECK(stim_smoothness >= 0 && stim_smoothness < 1, "stim-smoothness must be in [0, 1), got ",
             stim_smoothness);
}

std::string simulated_model_config(const SimulateOptions& o) {
  return cat("input = stim:fixed:", o.stim_dims, "\ninput = neurons:predicted:", o.modes,
             "\noutput = neurons:predicted\nmapping = concat\noffsets = true\n");
}

std::vector<SubjectData> simulate(const SimulateOptions& o) {
  o.validate();
  at::NoGradGuard no_grad;
  const int64_t k = o.modes, d = o.stim_dims;
  // The functions every subject shares: K p-modes, D stimulus u-modes, K latent u-modes, a baseline.
  Rng fn_rng(o.seed, {kRngSimulate, 0});
  std::vector<BumpFunction> p_fns, u_fns, base_fn;
  for (int64_t j = 0; j < k; ++j)
    p_fns.emplace_back(fn_rng, 3);
  for (int64_t j = 0; j < d + k; ++j)
    u_fns.emplace_back(fn_rng, 3);
  base_fn.emplace_back(fn_rng, 2);

  struct Subject {
    at::Tensor pos, p, u, offsets;
  };
  std::vector<Subject> subjects;
  double radius = 0.0;
  for (int s = 0; s < o.subjects; ++s) {
    Rng rng(o.seed, {kRngSimulate, 1, static_cast<uint64_t>(s)});
    const int64_t n =
        o.neurons_min +
        static_cast<int64_t>(rng.below(static_cast<uint64_t>(o.neurons_max - o.neurons_min + 1)));
    Subject sub;
    sub.pos = at::empty({n, 3}, at::kDouble);
    for (int64_t i = 0; i < sub.pos.numel(); ++i)
      sub.pos.data_ptr<double>()[i] = rng.uniform();
    sub.p = evaluate(p_fns, sub.pos);
    sub.u = evaluate(u_fns, sub.pos);
    sub.offsets = 0.5 * evaluate(base_fn, sub.pos).select(1, 0);
    // Latent recurrence of this subject: A = (p/N)ᵀ · u_latent  [K, K]
    const at::Tensor a = (sub.p / static_cast<double>(n)).t().mm(sub.u.narrow(1, d, k));
    radius = std::max(radius, at::linalg_eigvals(a).abs().max().item<double>());
    subjects.push_back(sub);
  }
  // One scale of the latent u-modes for all subjects keeps every subject's dynamics stable.
  const double gain = o.stability / std::max(radius, 1e-12);

  const ModelSpec spec = generating_spec(o);
  SharedModules shared(spec, {{"neurons", 3}});
  std::vector<SubjectData> out;
  for (int s = 0; s < o.subjects; ++s) {
    Subject& sub = subjects[s];
    const int64_t n = sub.pos.size(0);
    sub.u.narrow(1, d, k).mul_(gain);
    SubjectData data;
    // Zero-padded, so that name order (the order HDF5 lists them in) is index order.
    const std::string digits = std::to_string(std::max(o.subjects - 1, 9));
    data.name = std::to_string(s);
    data.name = "subject" + std::string(digits.size() - data.name.size(), '0') + data.name;
    SubjectModel model(shared, {{{"stim", d}, {"neurons", n}}, {{"neurons", 3}}}, data.name);
    at::Tensor params = model.initial_values(o.seed, hash_name(data.name), at::kDouble);
    model.layout().view(params, model.layout().index_of("offset.neurons")).copy_(sub.offsets);
    const ParamViews v{model.layout().views(params),
                       shared.layout().views(shared.initial_values(0, at::kDouble))};
    ModeSet modes{{at::Tensor(), sub.p / static_cast<double>(n)}, {sub.u}};
    Rng rng(o.seed, {kRngSimulate, 2, static_cast<uint64_t>(s)});
    // A smooth stimulus: AR(1) with unit stationary variance.
    at::Tensor stim = at::empty({o.time_points, d}, at::kDouble);
    double* st = stim.data_ptr<double>();
    const double a = o.stim_smoothness, b = std::sqrt(1.0 - a * a);
    for (int64_t j = 0; j < d; ++j)
      st[j] = rng.normal();
    for (int64_t t = 1; t < o.time_points; ++t)
      for (int64_t j = 0; j < d; ++j)
        st[t * d + j] = a * st[(t - 1) * d + j] + b * rng.normal();
    const auto g =
        model.generate(o.time_points, {{"stim", stim}}, {{"neurons", sub.offsets}}, modes, v, &rng);
    data.groups = {{"stim", stim.to(at::kFloat)}, {"neurons", g.values.at("neurons").to(at::kFloat)}};
    data.props = {{"neurons", sub.pos.to(at::kFloat)}};
    data.true_means = {{"neurons", g.means.at("neurons").to(at::kFloat)}};
    data.truth = {{"p_modes/neurons", sub.p.to(at::kFloat)},
                  {"u_modes/neurons", sub.u.to(at::kFloat)},
                  {"psi/neurons", at::full({n}, o.noise, at::kFloat)},
                  {"offsets/neurons", sub.offsets.to(at::kFloat)}};
    out.push_back(std::move(data));
  }
  return out;
}

}  // namespace mslr
