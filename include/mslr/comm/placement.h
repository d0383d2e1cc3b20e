// Placement of subjects on ranks and on the devices of a rank, by estimated cost (docs/DESIGN.md §4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mslr {

struct Placement {
  std::vector<int> rank;          // per subject
  std::vector<int> device;        // per subject: index among the devices of its rank
  std::vector<double> cost;       // per subject: the cost it was placed by
  std::vector<double> rank_load;  // per rank: sum of its subjects' costs

  // max load / mean load over ranks (1 is perfect).
  double imbalance() const;
  // Subjects of `r`, in ascending subject order.
  std::vector<int> subjects_of(int r) const;
  // A table: subject -> rank/device and cost, then load per rank and the imbalance.
  std::string table(const std::vector<std::string>& names) const;
};

// Greedy longest-processing-time: subjects in decreasing cost (ties: lower index first) go to the least
// loaded rank (ties: lower rank), then the same within each rank over its devices. Deterministic. A rank may
// be left without subjects when there are fewer subjects than ranks.
Placement place_subjects(const std::vector<double>& cost, int n_ranks, int devices_per_rank);

}  // namespace mslr
