// What a fit knows and a checkpoint must keep: the log, every parameter buffer and its Adam state, and where
// in the epoch/minibatch sequence the fit stands. Host tensors only; the same on every rank except
// `subjects`.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace mslr {

// Per epoch (docs/DESIGN.md §3). Figures are means over the epoch's minibatches (the seed kept only the last
// minibatch's values); a subject's figure is (n_s / b_s)·NLL_s(minibatch), an estimate of its NLL on all its
// training data, and the objective is their sum over the fitted subjects.
struct FitLog {
  std::vector<int> fitted;  // global indices of the fitted subjects, the columns of subject_nll
  std::vector<int> epoch;
  std::vector<double> elapsed;  // seconds since the fit began (summed over resumed runs) at the epoch's end
  std::vector<double> objective;
  std::vector<double> lr;
  std::vector<std::vector<double>> subject_nll;  // [entry][column]

  size_t size() const { return epoch.size(); }
};

struct SubjectState {
  int index = -1;  // into the data's subject list
  std::string name;
  bool fitted = false;
  at::Tensor params;          // [numel] of the subject's layout
  at::Tensor adam_m, adam_v;  // [numel]
  int64_t adam_step = 0;
  double partial_nll = 0.0;  // sum over the minibatches already taken in the current epoch
};

struct FitState {
  int epoch = 0;         // the epoch in progress (== number of completed epochs when batch == 0)
  int batch = 0;         // minibatches already taken in `epoch`
  double adam_lr = 0.0;  // the rate Adam's moments were built with (a change resets them)
  double elapsed = 0.0;  // seconds of fitting so far
  at::Tensor shared_params, shared_m, shared_v;  // [numel] of the shared layout
  int64_t shared_step = 0;
  std::vector<SubjectState> subjects;  // on a rank: its own subjects, in ascending index
  FitLog log;

  // The state of subject `index`, or nullptr.
  const SubjectState* find(int index) const;
};

}  // namespace mslr
