// Benchmark (not a test): the batched step alone, phase by phase, on subjects shaped like the workloads of
// tools/bench_fit.sh (the model of its runs: stim fixed 4, neurons predicted 4 modes by an MLP 32,32 tanh,
// output neurons predicted, p-mode scaling none, no offsets). Prints milliseconds per step for each phase and
// in all, and the step's FLOPs as GFLOP/s.
//
//   mslr_bench_step [--subjects 4] [--neurons 20000] [--batch 159] [--time-points 2000] [--steps 20]
//                   [--threads 1]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mslr/core/system.h"
#include "mslr/model/batched.h"

using namespace mslr;

int main(int argc, char** argv) {
  int64_t subjects = 4, neurons = 20000, batch = 159, T = 2000, steps = 20, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int64_t v = std::atoll(argv[i + 1]);
    if (k == "--subjects")
      subjects = v;
    else if (k == "--neurons")
      neurons = v;
    else if (k == "--batch")
      batch = v;
    else if (k == "--time-points")
      T = v;
    else if (k == "--steps")
      steps = v;
    else if (k == "--threads")
      threads = v;
    else {
      std::fprintf(stderr, "mslr_bench_step: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  limit_threads(static_cast<int>(threads), 1);
  const int64_t stim = 4, modes = 4;
  ModelSpec spec;
  spec.inputs = {InputSpec{"stim", stim, ModeSource::kFixed, {}},
                 InputSpec{"neurons", modes, ModeSource::kPredicted, {}}};
  OutputSpec out{"neurons", ModeSource::kPredicted, {}, Activation::kIdentity, false, false};
  spec.outputs = {out};
  spec.p_modes_mean = false;
  SharedModules shared(spec, {{"neurons", 3}});
  const at::Tensor shared_params = shared.initial_values(1, at::kFloat);
  std::vector<std::unique_ptr<SubjectModel>> models;
  std::vector<BatchedSubject> batched;
  std::vector<at::Tensor> params, grads, shared_grads, times;
  Minibatch mb;
  for (int64_t s = 0; s < subjects; ++s) {
    auto m = std::make_unique<SubjectModel>(
        shared, SubjectShape{{{"stim", stim}, {"neurons", neurons}}, {{"neurons", 3}}},
        "s" + std::to_string(s));
    m->to(at::TensorOptions().dtype(at::kFloat));
    params.push_back(m->initial_values(1, static_cast<uint64_t>(s), at::kFloat));
    grads.push_back(at::zeros_like(params.back()));
    shared_grads.push_back(at::zeros_like(shared_params));
    BatchedSubject b;
    b.model = m.get();
    b.groups["stim"] = at::randn({T, stim});
    b.groups["neurons"] = at::randn({T, neurons});
    b.props["neurons"] = at::rand({neurons, 3});
    b.max_batch = batch;
    batched.push_back(b);
    times.push_back((at::randperm(T - 1, at::kLong) + 1).narrow(0, 0, batch).contiguous());
    mb.times.push_back(times.back().data_ptr<int64_t>());
    mb.count.push_back(batch);
    mb.weight.push_back(10.0);
    models.push_back(std::move(m));
  }
  BatchedModel model(shared, std::move(batched), at::kFloat);
  std::vector<double> nll(subjects);
  model.step(mb, params, shared_params, grads, shared_grads, nll.data());  // warm-up
  BatchedModel::Phases ph;
  model.time_phases(&ph);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i)
    model.step(mb, params, shared_params, grads, shared_grads, nll.data());
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // FLOPs of a step, counted as tools/bench_roofline.py counts them.
  const double latent = static_cast<double>(stim + modes);
  double flops = 0;
  for (double n_out : {static_cast<double>(modes), latent}) {
    const double l0 = 3 * 32, l1 = 32 * 32, l2 = 32 * n_out;
    flops += 2.0 * static_cast<double>(neurons) * (2 * (l0 + l1 + l2) + l1 + l2);
  }
  flops += 2.0 * static_cast<double>(batch * neurons) * (modes + 3 * latent + modes);
  flops *= static_cast<double>(subjects);
  const double ms = 1e3 / static_cast<double>(steps);
  std::printf("%lld subjects x %lld neurons, batch %lld, %lld thread(s), %lld steps\n",
              static_cast<long long>(subjects), static_cast<long long>(neurons),
              static_cast<long long>(batch), static_cast<long long>(threads), static_cast<long long>(steps));
  std::printf("predictors forward  %8.3f ms\n", ph.predictors_forward * ms);
  std::printf("projections         %8.3f ms\n", ph.projections * ms);
  std::printf("outputs             %8.3f ms\n", ph.outputs * ms);
  std::printf("mode gradients      %8.3f ms\n", ph.mode_gradients * ms);
  std::printf("predictors backward %8.3f ms\n", ph.predictors_backward * ms);
  std::printf("step                %8.3f ms  (%.1f GFLOP/s)\n", total * ms,
              flops * static_cast<double>(steps) / total / 1e9);
  return 0;
}
