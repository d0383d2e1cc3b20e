// Prediction for one subject: the means of the output groups for chosen sample pairs, in batches, and the NLL
// of the data there. Used by evaluation, by `mslr predict` on each rank, and by tests.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "mslr/data/subject_data.h"
#include "mslr/model/subject_model.h"

namespace mslr {

struct SubjectPrediction {
  std::vector<at::Tensor> means;  // per output group h: [n, d_out_h], host, the model's dtype
  double nll = 0.0;               // summed over samples and output groups
  int64_t samples = 0;
};

// Modes come from the subject's properties through the model's predictors (so a subject that was never fitted
// can be predicted from its properties and the shared parameters alone). subject_params [numel] and
// shared_params [n_shared] are flat buffers of the model's layouts; `times` [n]: the t of each pair (t-1, t).
// Runs without autograd, `batch_size` samples at a time, on the device of the parameters: on the CPU through
// the batched model's forward pass (model/batched.h) where it covers the model, otherwise through
// SubjectModel::forward.
SubjectPrediction predict_subject(const SubjectModel& model, const at::Tensor& subject_params,
                                  const at::Tensor& shared_params, const SubjectData& data,
                                  const at::Tensor& times, int64_t batch_size);

}  // namespace mslr

namespace mslr {

// Per-subject parameters for a subject the fit never saw (its modes come from its properties through the
// fitted predictors), each from its training data `times`: an output's scales and offsets are the least-squares
// fit of each variable on s(z), and psi the variance left (at least min_var). Throws, naming them, when the
// model has per-subject parameters that only a fit can give (owned modes, its own predictors or mapping,
// prelu slopes, direct pairs), rather than predicting with their random starting values.
at::Tensor estimate_unfitted_params(const SubjectModel& model, const at::Tensor& shared_params,
                                    const SubjectData& data, const at::Tensor& times, double min_var,
                                    uint64_t seed);

}  // namespace mslr
