// A small multi-subject problem drawn from a known model, shared by the unit, multi-rank and benchmark code.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mslr/data/subject_data.h"
#include "mslr/fit/fitter.h"
#include "mslr/model/subject_model.h"

namespace mslr::test {

struct ProblemConfig {
  int subjects = 4;
  int64_t neurons_min = 20, neurons_max = 40;
  int64_t time_points = 200;
  int64_t stim_dims = 2;
  int64_t modes = 2;
  double noise = 0.1;  // psi of the true model
  uint64_t seed = 11;
  std::vector<int64_t> hidden = {8};
};

// The model: stim (fixed identity) and neurons (MLP-predicted p-modes) at t-1, neurons at t (MLP-predicted
// u-modes, offsets), concatenated.
ModelSpec problem_spec(const ProblemConfig& c);

struct Problem {
  ProblemConfig config;
  ModelSpec spec;
  std::vector<SubjectInfo> infos;
  std::vector<SubjectData> data;  // every subject, generated identically on every rank
  at::Tensor true_shared;         // the true shared parameters (float64)
  std::vector<at::Tensor> true_subject;
};

// Deterministic in the config: every rank that calls it gets the same data.
Problem make_problem(const ProblemConfig& c);

// All subjects' parameters after a fit, on every rank: [subject] -> params (float64 host), gathered with the
// communicator (the subjects of each rank are summed into place).
std::vector<at::Tensor> all_subject_params(const Communicator& comm, const Fitter& fitter, const Problem& p);

}  // namespace mslr::test
