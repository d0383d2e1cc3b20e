#include "mslr/comm/placement.h"
#include "mslr/core/rng.h"

#include <algorithm>

#include "test_util.h"

namespace mslr {
namespace {

TEST(Rng, StreamsAreKeyedAndReproducible) {
  Rng a(1, {2, 3}), b(1, {2, 3}), c(1, {3, 2});
  const uint64_t va = a.next_u64();
  EXPECT_EQ(va, b.next_u64());
  EXPECT_NE(va, c.next_u64());
  auto p = Rng(5, {kRngMinibatch, 0, 7}).permutation(100);
  auto q = p;
  std::sort(q.begin(), q.end());
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(q[i], i);
  EXPECT_EQ(p, Rng(5, {kRngMinibatch, 0, 7}).permutation(100));
  EXPECT_NE(p, Rng(5, {kRngMinibatch, 0, 8}).permutation(100));
}

TEST(Rng, NormalHasUnitVariance) {
  Rng r(0, {});
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double v = r.normal();
    s += v;
    s2 += v * v;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
}

TEST(Placement, LongestFirstOnTheLeastLoadedRank) {
  // Costs 10, 9, 8, 3, 2, 1 on 2 ranks: 10->0, 9->1, 8->1 (9 < 10), then 3, 2, 1 -> 0 (loads 16 and 17).
  const std::vector<double> cost = {3, 10, 1, 9, 2, 8};
  const Placement p = place_subjects(cost, 2, 1);
  EXPECT_EQ(p.rank, (std::vector<int>{0, 0, 0, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(p.rank_load[0], 16.0);
  EXPECT_DOUBLE_EQ(p.rank_load[1], 17.0);
  EXPECT_NEAR(p.imbalance(), 17.0 / 16.5, 1e-12);
  EXPECT_EQ(p.subjects_of(1), (std::vector<int>{3, 5}));
  // Devices within a rank follow the same rule.
  const Placement q = place_subjects(cost, 1, 2);
  EXPECT_EQ(q.device, (std::vector<int>{0, 0, 0, 1, 0, 1}));
  EXPECT_NE(p.table({"a", "b", "c", "d", "e", "f"}).find("imbalance (max/mean load) 1.030"),
            std::string::npos);
}

TEST(Placement, BeatsRoundRobinOnSkewedCosts) {
  const std::vector<double> cost = {100, 1, 1, 1, 90, 1, 1, 1};
  const Placement p = place_subjects(cost, 2, 1);
  EXPECT_NEAR(p.imbalance(), 100.0 / 98.0, 1e-12);  // round robin puts 100 and 90 together: 1.96
}

}  // namespace
}  // namespace mslr
