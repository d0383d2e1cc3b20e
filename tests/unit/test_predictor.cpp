#include "mslr/model/predictor.h"

#include "test_util.h"

namespace mslr {
namespace {

TEST(Hypercube, MatchesDirectSlowEvaluation) {
  PredictorSpec spec;
  spec.kind = PredictorSpec::kHypercube;
  spec.range_lo = {0.0, -1.0, 2.0};
  spec.range_hi = {1.0, 1.0, 4.5};  // cell widths 0.25, 2/3, 0.5
  spec.divisions = {4, 3, 5};
  spec.cube_side = {2, 3, 1};
  ParamLayout layout;
  HypercubePredictor pred(spec, 3, 2, layout, "h");
  EXPECT_EQ(pred.n_cubes(), (4 + 1) * (3 + 2) * (5 + 0));
  const at::Tensor flat = test::uniform({layout.numel()}, 1);
  // Points inside the range, on cell edges, and outside it (clamped into the boundary cells).
  at::Tensor props = test::uniform({200, 3}, 2, 0.0, 1.0);
  props.select(1, 1).mul_(2.0).sub_(1.0);
  props.select(1, 2).mul_(2.5).add_(2.0);
  // Edges are exactly representable here, so both evaluations put them in the same cell.
  const at::Tensor edges =
      at::tensor({0.0, -1.0, 2.0, 0.25, 0.0, 3.5, 1.0, 1.0, 4.5, -0.5, 3.0, 1.0}, at::kDouble);
  props = at::cat({props, edges.view({4, 3})});
  const auto v = layout.views(flat);
  EXPECT_LT(test::rel_diff(pred.forward(props, v), pred.forward_reference(props, v)), 1e-14);
  // Every point lies in exactly prod(cube_side) = 6 cubes.
  EXPECT_EQ(pred.cube_indices(props).size(1), 6);
}

TEST(Hypercube, IsPiecewiseConstantOnCells) {
  PredictorSpec spec;
  spec.kind = PredictorSpec::kHypercube;
  spec.divisions = {10};
  ParamLayout layout;
  HypercubePredictor pred(spec, 2, 1, layout, "h");
  const auto v = layout.views(test::uniform({layout.numel()}, 3));
  const at::Tensor a = pred.forward(at::tensor({0.31, 0.52, 0.39, 0.58}, at::kDouble).view({2, 2}), v);
  EXPECT_DOUBLE_EQ(a[0][0].item<double>(), a[1][0].item<double>());  // same cell (3, 5)
}

TEST(Mlp, ScalesPropertiesOntoTheUnitRangeAndStartsAtTheRequestedSpread) {
  PredictorSpec spec;
  spec.range_lo = {0.0};
  spec.range_hi = {100.0};
  spec.hidden = {64};
  ParamLayout layout;
  auto pred = make_predictor(spec, 3, 4, layout, "m");
  EXPECT_TRUE(at::allclose(pred->prepare(at::tensor({0.0, 50.0, 100.0}, at::kDouble).view({1, 3})),
                           at::tensor({-1.0, 0.0, 1.0}, at::kDouble).view({1, 3})));
  const at::Tensor out = pred->forward(test::uniform({5000, 3}, 4, 0, 100),
                                       layout.views(layout.initial_values(0, 0, at::kDouble)));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5000, 4}));
  // Outputs O(1) whatever the units of the properties.
  const double s = out.std().item<double>();
  EXPECT_GT(s, 0.2);
  EXPECT_LT(s, 2.0);
}

}  // namespace
}  // namespace mslr
