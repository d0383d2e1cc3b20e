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

}  // namespace
}  // namespace mslr
