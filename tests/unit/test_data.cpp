#include "mslr/data/subject_data.h"

#include "test_util.h"

namespace mslr {
namespace {

TEST(SampleTimes, NoPairCrossesASegmentOrTheSplit) {
  const at::Tensor seg = at::tensor(std::vector<int64_t>{0, 10, 10, 11, 15, 30}, at::kLong).view({3, 2});
  for (auto [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{0, 30}, {0, 20}, {5, 25}, {12, 30}}) {
    const at::Tensor t = sample_times(seg, begin, end);
    int64_t expected = 0;
    for (int64_t s = 0; s < 3; ++s) {
      const int64_t lo = std::max(seg[s][0].item<int64_t>(), begin),
                    hi = std::min(seg[s][1].item<int64_t>(), end);
      expected += std::max<int64_t>(0, hi - lo - 1);
    }
    ASSERT_EQ(t.numel(), expected) << begin << ".." << end;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t ti = t[i].item<int64_t>();
      EXPECT_GE(ti - 1, begin);
      EXPECT_LT(ti, end);
      bool same = false;
      for (int64_t s = 0; s < 3; ++s)
        same |= ti - 1 >= seg[s][0].item<int64_t>() && ti < seg[s][1].item<int64_t>();
      EXPECT_TRUE(same) << "pair (" << ti - 1 << ", " << ti << ") crosses a segment boundary";
    }
  }
  // Segment [10, 11) has one point: no pair. The pairs (9, 10) and (10, 11), (14, 15) are absent.
  const at::Tensor all = sample_times(seg, 0, 30);
  for (int64_t bad : {10, 11, 15})
    EXPECT_FALSE(all.eq(bad).any().item<bool>()) << bad;
}

TEST(Gather, InputsAreTheRowsBeforeTheOutputs) {
  const at::Tensor series = at::arange(20, at::kDouble).view({10, 2});
  const at::Tensor t = at::tensor(std::vector<int64_t>{3, 7, 1}, at::kLong);
  EXPECT_TRUE(at::equal(gather_rows(series, t, -1).select(1, 0), at::tensor({4.0, 12.0, 0.0}, at::kDouble)));
  EXPECT_TRUE(at::equal(gather_rows(series, t, 0).select(1, 1), at::tensor({7.0, 15.0, 3.0}, at::kDouble)));
}

TEST(SubjectData, ValidationNamesSubjectGroupAndSizes) {
  SubjectData d;
  d.name = "fish3";
  d.groups = {{"neurons", at::zeros({10, 4})}, {"stim", at::zeros({9, 2})}};
  EXPECT_EQ(test::error_of([&] { d.validate(); }),
            "subject 'fish3', group 'stim' has 9 time points, group 'neurons' has 10");
  d.groups["stim"] = at::zeros({10, 2});
  d.props = {{"neurons", at::zeros({5, 3})}};
  EXPECT_EQ(test::error_of([&] { d.validate(); }),
            "subject 'fish3': properties of group 'neurons' have 5 rows, the group has 4 variables");
  d.props["neurons"] = at::zeros({4, 3});
  d.segments = at::tensor(std::vector<int64_t>{0, 6, 5, 10}, at::kLong).view({2, 2});
  EXPECT_NE(test::error_of([&] { d.validate(); }).find("segment 1 [5, 10) must be"), std::string::npos);
  d.segments = at::tensor(std::vector<int64_t>{0, 6, 6, 10}, at::kLong).view({2, 2});
  d.validate();
}

TEST(Split, FirstRoundedFractionIsTrainingOrExplicitRanges) {
  Split s;
  EXPECT_EQ(s.train(1500).end, 1200);
  EXPECT_EQ(s.test(1500).begin, 1200);
  EXPECT_EQ(s.test(1500).end, 1500);
  s.train_fraction = 0.5;
  EXPECT_EQ(s.train(7).end, 4);  // round half away from zero
  s.train_fraction = 0.0;
  EXPECT_NE(test::error_of([&] { s.validate(); }).find("train-fraction must be in (0, 1]"),
            std::string::npos);
  Split r;
  r.explicit_ranges = true;
  r.train_range = Split::parse_range("100:900", "--train-range");
  r.test_range = Split::parse_range("0:100", "--test-range");
  EXPECT_EQ(r.train(1000).begin, 100);
  EXPECT_EQ(r.test(1000).end, 100);
  EXPECT_EQ(test::error_of([] { Split::parse_range("5-9", "--test-range"); }),
            "--test-range: '5-9' is not START:END");
  SubjectInfo info;
  info.name = "f";
  info.n_time = 50;
  EXPECT_EQ(test::error_of([&] {
              info.times_in({0, 60});
            }),
            "subject 'f' has 50 time points; the range 0:60 goes beyond it");
  EXPECT_EQ(info.times_in({10, 20}).numel(), 9);
}

}  // namespace
}  // namespace mslr
