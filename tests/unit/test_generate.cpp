#include "mslr/core/rng.h"
#include "mslr/fit/predict.h"
#include "mslr/model/subject_model.h"
#include "test_util.h"

namespace mslr {
namespace {

TEST(Generate, FeedsOutputsBackAsInputsAndRecordsTheMeans) {
  ModelSpec spec;
  spec.inputs = {{"stim", 2, ModeSource::kFixed, {}}, {"neurons", 2, ModeSource::kOwned, {}}};
  spec.outputs = {{"neurons", ModeSource::kOwned, {}, Activation::kTanh, false, true}};
  SharedModules shared(spec, {});
  SubjectModel m(shared, {{{"stim", 2}, {"neurons", 5}}, {}}, "gen");
  const at::Tensor flat = m.initial_values(3, 4, at::kDouble);
  const ParamViews v{m.layout().views(flat), {}};
  const at::Tensor stim = test::uniform({40, 2}, 1);
  const at::Tensor x0 = test::uniform({5}, 2);
  const auto g = m.generate(40, {{"stim", stim}}, {{"neurons", x0}}, {}, v, nullptr);
  const at::Tensor& x = g.values.at("neurons");
  EXPECT_TRUE(at::equal(x[0], x0));
  EXPECT_TRUE(at::isnan(g.means.at("neurons")[0]).all().item<bool>());
  for (int64_t t : {1, 17, 39}) {
    const auto mn = m.forward({stim.narrow(0, t - 1, 1), x.narrow(0, t - 1, 1)}, {}, v);
    EXPECT_LT(test::rel_diff(x[t], mn[0][0]), 1e-14) << t;
    EXPECT_LT(test::rel_diff(g.means.at("neurons")[t], mn[0][0]), 1e-14) << t;
  }
  // With noise, the residuals about the recorded means have variance psi.
  Rng rng(5, {kRngSample});
  const auto noisy =
      m.generate(4000, {{"stim", test::uniform({4000, 2}, 3)}}, {{"neurons", x0}}, {}, v, &rng);
  const at::Tensor r = (noisy.values.at("neurons") - noisy.means.at("neurons")).narrow(0, 1, 3999);
  EXPECT_NEAR(r.var(0).mean().item<double>(), spec.psi_init, 0.05);
  EXPECT_EQ(test::error_of([&] {
              m.generate(10, {{"stim", stim}}, {}, {}, v, nullptr);
            }),
            "generate: fed-back group 'neurons' needs an initial value");
}

// A subject the fit never saw: its scales, offsets and noise come from its training data, and recover those
// it was drawn with; parts no data can give are refused by name.
TEST(UnfittedSubject, ScalesOffsetsAndNoiseAreEstimatedFromItsData) {
  ModelSpec spec;
  PredictorSpec mlp;
  mlp.hidden = {6};
  spec.inputs = {{"stim", 2, ModeSource::kFixed, {}}};
  spec.outputs = {{"neurons", ModeSource::kPredicted, mlp, Activation::kTanh, /*scales=*/true, true}};
  SharedModules shared(spec, {{"neurons", 3}});
  SubjectModel m(shared, {{{"stim", 2}, {"neurons", 30}}, {{"neurons", 3}}}, "new");
  const at::Tensor shared_params = shared.initial_values(1, at::kDouble);
  at::Tensor truth = m.initial_values(2, 3, at::kDouble);
  const ParamLayout& l = m.layout();
  l.view(truth, l.index_of("scale.neurons")).copy_(test::uniform({30}, 4, 1.5, 2.5));
  l.view(truth, l.index_of("offset.neurons")).copy_(test::uniform({30}, 5));
  l.view(truth, m.psi_index(0)).fill_(0.01);
  SubjectData d;
  d.name = "new";
  d.props["neurons"] = test::uniform({30, 3}, 6);
  d.groups["stim"] = test::uniform({3000, 2}, 7, -2.0, 2.0);
  const ParamViews views{l.views(truth), shared.layout().views(shared_params)};
  Rng rng(8, {kRngSample});
  d.groups["neurons"] = m.generate(3000, {{"stim", d.groups["stim"]}}, {{"neurons", at::zeros({30})}},
                                   m.predict_modes(d.props, views), views, &rng)
                            .values.at("neurons");
  const at::Tensor times = at::arange(1, 3000, at::kLong);
  const at::Tensor est = estimate_unfitted_params(m, shared_params, d, times, 1e-3, 9);
  for (const char* name : {"scale.neurons", "offset.neurons"})
    EXPECT_LT((l.view(est, l.index_of(name)) - l.view(truth, l.index_of(name))).abs().max().item<double>(),
              0.05)
        << name;
  EXPECT_NEAR(l.view(est, m.psi_index(0)).mean().item<double>(), 0.01, 0.001);

  ModelSpec owned = spec;
  owned.inputs[0].modes = ModeSource::kOwned;
  SharedModules shared_owned(owned, {{"neurons", 3}});
  SubjectModel o(shared_owned, {{{"stim", 2}, {"neurons", 30}}, {{"neurons", 3}}}, "new");
  EXPECT_EQ(
      test::error_of([&] { estimate_unfitted_params(o, shared_params, d, times, 1e-3, 9); }),
      "subject 'new' was never fitted, and its model has parameters that only a fit gives (p.stim); fit "
      "it first, e.g. mslr fit --init-from CHECKPOINT --subjects new");
}

}  // namespace
}  // namespace mslr
