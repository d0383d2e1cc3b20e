#include "mslr/comm/placement.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "mslr/core/error.h"

namespace mslr {
namespace {

// Assigns items (indices into cost) to `bins` bins, longest first; returns the bin of each item.
std::vector<int> greedy(const std::vector<int>& items, const std::vector<double>& cost, int bins,
                        std::vector<double>* load_out) {
  std::vector<int> order = items;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cost[a] > cost[b]; });
  std::vector<double> load(bins, 0.0);
  std::vector<int> bin(cost.size(), -1);
  for (int i : order) {
    const int b = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    bin[i] = b;
    load[b] += cost[i];
  }
  if (load_out) *load_out = load;
  return bin;
}

}  // namespace

Placement place_subjects(const std::vector<double>& cost, int n_ranks, int devices_per_rank) {
  MSLR_CHECK(n_ranks >= 1, "placement needs at least one rank");
  MSLR_CHECK(devices_per_rank >= 1, "placement needs at least one device per rank");
  Placement p;
  p.cost = cost;
  std::vector<int> all(cost.size());
  std::iota(all.begin(), all.end(), 0);
  p.rank = greedy(all, cost, n_ranks, &p.rank_load);
  p.device.assign(cost.size(), 0);
  for (int r = 0; r < n_ranks; ++r) {
    const std::vector<int> mine = p.subjects_of(r);
    const std::vector<int> dev = greedy(mine, cost, devices_per_rank, nullptr);
    for (int s : mine)
      p.device[s] = dev[s];
  }
  return p;
}

double Placement::imbalance() const {
  const double total = std::accumulate(rank_load.begin(), rank_load.end(), 0.0);
  if (total <= 0.0) return 1.0;
  return *std::max_element(rank_load.begin(), rank_load.end()) /
         (total / static_cast<double>(rank_load.size()));
}

std::vector<int> Placement::subjects_of(int r) const {
  std::vector<int> s;
  for (size_t i = 0; i < rank.size(); ++i)
    if (rank[i] == r) s.push_back(static_cast<int>(i));
  return s;
}

std::string Placement::table(const std::vector<std::string>& names) const {
  std::string out = "placement: subject -> rank/device (cost = samples x variables)\n";
  char line[256];
  for (size_t i = 0; i < rank.size(); ++i) {
    std::snprintf(line, sizeof line, "  %-24s -> %d/%d  %.3g\n", names[i].c_str(), rank[i], device[i],
                  cost[i]);
    out += line;
  }
  for (size_t r = 0; r < rank_load.size(); ++r) {
    std::snprintf(line, sizeof line, "  rank %zu load %.3g (%zu subjects)\n", r, rank_load[r],
                  subjects_of(static_cast<int>(r)).size());
    out += line;
  }
  std::snprintf(line, sizeof line, "  imbalance (max/mean load) %.3f", imbalance());
  return out + line;
}

}  // namespace mslr
