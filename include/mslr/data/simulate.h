// The built-in ground-truth scenario of `mslr simulate` (docs/DESIGN.md §6): subjects with different numbers
// of neurons at random 3-D positions in a unit-cube reference brain, a smooth random stimulus, and neural
// dynamics driven by the stimulus and by K latents read out from the neurons; every mode is a smooth sum of
// Gaussian bumps over position, the same functions for every subject, so that mode predictors shared by all
// subjects can learn them. The recurrence is scaled to be stable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mslr/data/subject_data.h"

namespace mslr {

struct SimulateOptions {
  int subjects = 8;
  int64_t neurons_min = 300, neurons_max = 800;
  int64_t time_points = 1500;
  int64_t stim_dims = 4;
  int64_t modes = 4;
  double noise = 0.1;            // noise variance psi of every neuron (signal variance is O(1))
  double stability = 0.8;        // spectral radius of the latent recurrence
  double stim_smoothness = 0.9;  // AR(1) coefficient of the stimulus
  uint64_t seed = 0;

  void validate() const;  // throws naming the option and the rule
};

// The subjects, with truth: true_means, and truth/ "p_modes/neurons" [N, K] (before the 1/N of the model),
// "u_modes/neurons" [N, D+K], "psi/neurons" [N], "offsets/neurons" [N].
std::vector<SubjectData> simulate(const SimulateOptions& options);

// The model that generated the data, as the [model] section of an mslr config (for `mslr fit` to use when no
// model options are given).
std::string simulated_model_config(const SimulateOptions& options);

}  // namespace mslr
