#include "mslr/app/selfcheck.h"

#include <cmath>
#include <cstdio>

#include "mslr/core/rng.h"
#include "mslr/model/gradcheck.h"
#include "mslr/model/nll.h"
#include "mslr/model/subject_model.h"

namespace mslr {
namespace {

at::Tensor random_tensor(std::vector<int64_t> shape, Rng& rng, double lo = -1.0, double hi = 1.0) {
  at::Tensor t = at::empty(shape, at::kDouble);
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

bool report(const char* what, double err, double tol) {
  const bool ok = err < tol;
  std::printf("  %-58s %.2e  %s\n", what, err, ok ? "ok" : "FAILED");
  return ok;
}

}  // namespace

bool run_selfcheck() {
  std::printf("mslr self-check (float64): model gradients against finite differences\n");
  ModelSpec spec;
  InputSpec stim{"stim", 3, ModeSource::kFixed, {}};
  InputSpec neurons{"neurons", 2, ModeSource::kPredicted, {}};
  neurons.predictor.hidden = {6};
  OutputSpec out{"neurons", ModeSource::kPredicted, {}, Activation::kTanh, true, true};
  out.predictor.kind = PredictorSpec::kHypercube;
  out.predictor.divisions = {3};
  spec.inputs = {stim, neurons};
  spec.outputs = {out};
  spec.direct_pairs = {{1, 0}};
  spec.psi_init = 0.7;

  const int64_t n_neurons = 7, n = 11;
  SharedModules shared(spec, {{"neurons", 3}});
  SubjectModel model(shared, {{{"stim", 3}, {"neurons", n_neurons}}, {{"neurons", 3}}}, "selfcheck");
  Rng rng(7, {1});
  at::Tensor shared_flat = shared.initial_values(1, at::kDouble).requires_grad_();
  at::Tensor subject_flat = model.initial_values(1, 2, at::kDouble);
  subject_flat = (subject_flat + 0.1 * random_tensor({subject_flat.numel()}, rng)).requires_grad_();
  const std::map<std::string, at::Tensor> props = {{"neurons", random_tensor({n_neurons, 3}, rng, 0.0, 1.0)}};
  const std::vector<at::Tensor> x = {random_tensor({n, 3}, rng), random_tensor({n, n_neurons}, rng)};
  const std::vector<at::Tensor> y = {random_tensor({n, n_neurons}, rng)};

  auto loss = [&](bool fused) {
    const ParamViews v{model.layout().views(subject_flat), shared.layout().views(shared_flat)};
    const auto mn = model.forward(x, model.predict_modes(props, v), v);
    return fused ? model.nll(y, mn, v) : model.nll_reference(y, mn, v);
  };
  bool ok = true;
  ok &= report("fused NLL value vs plain-ops reference (relative)",
               std::abs((loss(true) - loss(false)).item<double>() / loss(false).item<double>()), 1e-12);
  ok &= report("d NLL / d subject parameters (relative error)",
               check_gradient([&] { return loss(true); }, subject_flat).relative_error, 1e-6);
  ok &= report("d NLL / d shared parameters (relative error)",
               check_gradient([&] { return loss(true); }, shared_flat).relative_error, 1e-6);
  std::printf(ok ? "self-check passed\n" : "self-check FAILED\n");
  return ok;
}

}  // namespace mslr
