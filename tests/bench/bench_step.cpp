// Benchmark (not a test): the batched step alone, phase by phase, on subjects shaped like the workloads of
// tools/bench_fit.sh (the model of its runs: stim fixed 4, neurons predicted 4 modes by an MLP 32,32 tanh,
// output neurons predicted, p-mode scaling none, no offsets). Prints milliseconds per step for each phase and
// in all, and the step's FLOPs as GFLOP/s.
//
//   mslr_bench_step [--subjects 4] [--neurons 20000] [--batch 159] [--time-points 2000] [--steps 20]
//                   [--threads 1] [--adam LR] [--wave-bytes B] [--rows-in-cache 1]
//       --adam LR: an Adam step of rate LR on every parameter after each step (not timed), so that the
//       parameters move as in a fit (0, the default: the step runs on the same initial values throughout).
//       --wave-bytes B: the step's waves of subjects at least B bytes of minibatch rows per thread
//       (BatchedModel::set_wave_bytes; 0, the default: the step's own choice).
//       --rows-in-cache 1: every sample of a subject reads one of its first 5 time points, so that the
//       regression's rows come from the cache: the step's compute without its waits on memory.
//   mslr_bench_step --fixed-cost 1
//       the fixed part of a subject's placement cost (fitter.h, kSubjectCostCpu): a step of 64 subjects of 16
//       neurons and 8 samples against one of 20000 neurons and 159 samples, as the cost a subject has beyond
//       its samples × variables, in those units.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mslr/core/system.h"
#include "mslr/fit/adam.h"
#include "mslr/model/batched.h"

using namespace mslr;

namespace {

struct Setup {
  std::unique_ptr<SharedModules> shared;
  at::Tensor shared_params;
  std::vector<std::unique_ptr<SubjectModel>> models;
  std::vector<at::Tensor> params, grads, shared_grads, times;
  Minibatch mb;
  int64_t batch = 0, batches = 1, next = 0;  // the epoch's minibatches, used in turn
  std::unique_ptr<BatchedModel> model;
  std::vector<double> nll;
  double lr = 0;  // --adam
  std::vector<AdamState> adam;
  AdamState shared_adam;
  at::Tensor shared_sum;
};

const int64_t kStim = 4, kModes = 4;

// The bench's model over `subjects` subjects of `neurons` neurons and T time points, minibatches of `batch`.
Setup make_setup(int64_t subjects, int64_t neurons, int64_t batch, int64_t T, bool rows_in_cache = false) {
  Setup u;
  ModelSpec spec;
  spec.inputs = {InputSpec{"stim", kStim, ModeSource::kFixed, {}},
                 InputSpec{"neurons", kModes, ModeSource::kPredicted, {}}};
  OutputSpec out{"neurons", ModeSource::kPredicted, {}, Activation::kIdentity, false, false};
  spec.outputs = {out};
  spec.p_modes_mean = false;
  u.shared = std::make_unique<SharedModules>(spec, std::map<std::string, int64_t>{{"neurons", 3}});
  u.shared_params = u.shared->initial_values(1, at::kFloat);
  std::vector<BatchedSubject> batched;
  for (int64_t s = 0; s < subjects; ++s) {
    auto m = std::make_unique<SubjectModel>(
        *u.shared, SubjectShape{{{"stim", kStim}, {"neurons", neurons}}, {{"neurons", 3}}},
        "s" + std::to_string(s));
    m->to(at::TensorOptions().dtype(at::kFloat));
    u.params.push_back(m->initial_values(1, static_cast<uint64_t>(s), at::kFloat));
    u.grads.push_back(at::zeros_like(u.params.back()));
    u.shared_grads.push_back(at::zeros_like(u.shared_params));
    BatchedSubject b;
    b.model = m.get();
    b.groups["stim"] = at::randn({T, kStim});
    b.groups["neurons"] = at::randn({T, neurons});
    b.props["neurons"] = at::rand({neurons, 3});
    b.max_batch = batch;
    batched.push_back(b);
    // An epoch's disjoint minibatches, as a fit draws them, so that the rows come from memory as in a fit
    // rather than from the cache the previous step left.
    u.batches = std::max<int64_t>(1, std::min<int64_t>(10, (T - 1) / batch));
    u.times.push_back((at::randperm(T - 1, at::kLong) + 1).narrow(0, 0, u.batches * batch).contiguous());
    if (rows_in_cache) u.times.back() = u.times.back().remainder(4) + 1;
    u.mb.times.push_back(u.times.back().data_ptr<int64_t>());
    u.mb.count.push_back(batch);
    u.mb.weight.push_back(10.0);
    u.models.push_back(std::move(m));
  }
  u.batch = batch;
  u.model = std::make_unique<BatchedModel>(*u.shared, std::move(batched), at::kFloat);
  u.nll.resize(subjects);
  return u;
}

void step(Setup& u) {
  for (size_t s = 0; s < u.times.size(); ++s)
    u.mb.times[s] = u.times[s].data_ptr<int64_t>() + u.next * u.batch;
  u.next = (u.next + 1) % u.batches;
  u.model->step(u.mb, u.params, u.shared_params, u.grads, u.shared_grads, u.nll.data());
}

// An Adam step on every parameter from the last step's gradients (the shared ones summed over subjects).
void adam(Setup& u, BatchedModel::Phases* ph) {
  if (u.lr <= 0) return;
  if (u.adam.empty()) {
    for (const auto& p : u.params)
      u.adam.push_back(AdamState::zeros_like(p));
    u.shared_adam = AdamState::zeros_like(u.shared_params);
  }
  u.model->time_phases(nullptr);
  for (size_t s = 0; s < u.params.size(); ++s)
    adam_step(u.params[s], u.grads[s], u.adam[s], u.lr, AdamOptions{});
  u.shared_sum = u.shared_grads[0].clone();
  for (size_t s = 1; s < u.shared_grads.size(); ++s)
    u.shared_sum.add_(u.shared_grads[s]);
  adam_step(u.shared_params, u.shared_sum, u.shared_adam, u.lr, AdamOptions{});
  u.model->time_phases(ph);
}

// The best of `rounds` timings of `steps` steps, in seconds per step.
double seconds_per_step(Setup& u, int steps, int rounds) {
  step(u);  // warm-up
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      step(u);
      adam(u, nullptr);
    }
    best =
        std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps);
  }
  return best;
}

int fixed_cost() {
  Setup tiny = make_setup(64, 16, 8, 200), large = make_setup(1, 20000, 159, 2000);
  const double t_tiny = seconds_per_step(tiny, 200, 5), t_large = seconds_per_step(large, 10, 5);
  // Placement counts a subject's samples × the variables of the groups its model reads.
  const double per_unit = t_large / (159.0 * (20000 + kStim));
  const double per_tiny = t_tiny / 64 - per_unit * 8.0 * (16 + kStim);
  std::printf("step of 64 subjects x 16 neurons x 8 samples: %.3f ms; of 1 x 20000 x 159: %.3f ms\n",
              t_tiny * 1e3, t_large * 1e3);
  std::printf("per sample x variable %.3g s; fixed per subject %.3g s = %.3g sample x variable units\n",
              per_unit, per_tiny, per_tiny / per_unit);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t subjects = 4, neurons = 20000, batch = 159, T = 2000, steps = 20, threads = 1, wave_bytes = 0;
  bool fixed = false, rows_in_cache = false;
  double lr = 0;
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
    else if (k == "--adam")
      lr = std::atof(argv[i + 1]);
    else if (k == "--wave-bytes")
      wave_bytes = v;
    else if (k == "--rows-in-cache")
      rows_in_cache = v != 0;
    else if (k == "--fixed-cost")
      fixed = v != 0;
    else {
      std::fprintf(stderr, "mslr_bench_step: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  limit_threads(static_cast<int>(threads), 1);
  if (fixed) return fixed_cost();
  Setup u = make_setup(subjects, neurons, batch, T, rows_in_cache);
  u.lr = lr;
  if (wave_bytes > 0) u.model->set_wave_bytes(wave_bytes);
  step(u);  // warm-up
  adam(u, nullptr);
  BatchedModel::Phases ph;
  u.model->time_phases(&ph);
  double total = 0;
  for (int64_t i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step(u);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    adam(u, &ph);
  }
  const int64_t stim = kStim, modes = kModes;
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
