// The batched step (CPU): the forward pass, the NLL and a hand-written backward for all the subjects of one
// device at once, with every buffer allocated when it is built and none during a step.
//
// Why it exists: with autograd, a step costs ~100 small ops per subject, each predictor runs over each
// subject's variables separately, and every op makes a temporary; at whole-brain sizes the element-wise
// passes and the page faults of those temporaries (freed and faulted in again every step) dominate. Here a
// step runs over the subjects a wave of consecutive subjects at a time, and for each wave:
//   1. each predictor over the variables of the wave's subjects, in blocks of 512 rows, each layer one call of
//      mslr's dense kernels (kernels.h) with its activation applied in registers,
//   2. the regression over the minibatch's rows, read where they lie in the recording: the projections x·p;
//      the means, residuals, NLL and the gradients of psi, offsets, scales, u-modes and the transformed
//      latents in one vectorised pass per group of rows and chunk of variables; the gradient of the p-modes
//      xᵀ·d proj,
//   3. the predictors' backward, block by block, from the activations the forward left in the cache.
// docs/DESIGN.md §8 says why each is cut as it is. SubjectModel's autograd forward stays as the reference it
// is tested against (tests/unit/test_batched.cpp).
//
// Rank invariance: every number computed for a subject depends on that subject's data and the parameters
// alone. Blocks and column chunks are cut from each subject's own variables (never across subjects), partial
// sums are added in a fixed order, and the work items are the same whatever the number of threads; so a
// subject's contribution to the shared gradient is bitwise the same wherever it is placed and however many
// threads its rank has.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mslr/model/subject_model.h"

namespace mslr {

// "" when the batched step covers the model; otherwise what it lacks, for the log (the fit then uses the
// autograd step). Covered: fixed (identity or given), owned and predicted p- and u-modes, MLP and hypercube
// predictors, shared or per subject; identity or concat mapping; identity, relu, tanh, sigmoid, softplus or
// exp outputs; scales, offsets, psi. Not covered: linear and shared mappings, direct pairs, prelu.
std::string batched_step_gap(const ModelSpec& spec);

struct BatchedSubject {
  const SubjectModel* model = nullptr;
  std::map<std::string, at::Tensor>
      groups;  // [T, d] of every group the model reads: CPU, contiguous, the dtype
  std::map<std::string, at::Tensor> props;  // [d, n_props] of every group whose modes are predicted
  int64_t max_batch = 0;                    // the most sample pairs of one call
};

// One minibatch per subject: times[s] points at count[s] <= max_batch times t of sample pairs (t-1, t).
struct Minibatch {
  std::vector<const int64_t*> times;
  std::vector<int64_t> count;
  std::vector<double> weight;  // subject s contributes weight[s] · NLL_s (n_s / b_s in a fit)
};

class BatchedModel {
 public:
  // `subjects` share `shared`; the model's fixed modes must already be in `dtype` (SubjectModel::to).
  BatchedModel(const SharedModules& shared, std::vector<BatchedSubject> subjects, at::ScalarType dtype);
  ~BatchedModel();
  BatchedModel(const BatchedModel&) = delete;
  BatchedModel& operator=(const BatchedModel&) = delete;

  int size() const;
  // With every shared parameter held fixed (fit --freeze shared), step() leaves the shared gradients zero
  // and skips the work only they need: the shared predictors' backward and the gradients of their modes.
  void hold_shared(bool held);
  // The step runs over the subjects in waves of consecutive subjects (src/model/batched.cpp, kWaveBytes): by
  // default a subject per wave on one thread, and on more as few subjects as read 16 MB of minibatch rows
  // per thread. With `bytes` set, each wave reads at least `bytes` per thread. No number depends on it; the
  // tests set 1 (a wave per subject) and 2^40 (one wave) to show that.
  void set_wave_bytes(int64_t bytes);

  // Seconds spent in each phase of step() and forward(), added up over calls while timing is on (a
  // benchmark's breakdown, tests/bench/bench_step.cpp); `into` nullptr turns timing off (the default).
  struct Phases {
    double predictors_forward = 0, projections = 0, outputs = 0, mode_gradients = 0, predictors_backward = 0;
  };
  void time_phases(Phases* into);

  // Forward, NLL and gradients. subject_params[s] [numel_s] and shared_params [n_shared] are contiguous CPU
  // tensors of the dtype. Overwrites subject_grads[s] [numel_s] and shared_grads[s] [n_shared] with the
  // gradients of weight[s] · NLL_s alone, and nll[s] with weight[s] · NLL_s (float64).
  void step(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
            const at::Tensor& shared_params, const std::vector<at::Tensor>& subject_grads,
            const std::vector<at::Tensor>& shared_grads, double* nll);

  // Forward only: writes means[s][h] [count[s], d_out_h] (contiguous) and nll[s] = weight[s] · NLL_s.
  void forward(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
               const at::Tensor& shared_params, const std::vector<std::vector<at::Tensor>>& means,
               double* nll);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mslr
