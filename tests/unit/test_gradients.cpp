// The gradient of the NLL with respect to every kind of parameter against central finite differences
// (float64).
#include <set>

#include "mslr/model/gradcheck.h"
#include "mslr/model/subject_model.h"
#include "test_util.h"

namespace mslr {
namespace {

// A model with every parameter kind: fixed, predicted (MLP and hypercube) and owned modes; a linear specific
// mapping followed by a shared linear one; PReLU and tanh outputs with scales and offsets; a direct pair.
ModelSpec full_spec(bool per_subject_predictors) {
  ModelSpec spec;
  InputSpec stim{"stim", 3, ModeSource::kFixed, {}};
  InputSpec neurons{"neurons", 2, ModeSource::kPredicted, {}};
  neurons.predictor.hidden = {5, 4};
  neurons.predictor.per_subject = per_subject_predictors;
  InputSpec aux{"aux", 2, ModeSource::kOwned, {}};
  OutputSpec out{"neurons", ModeSource::kPredicted, {}, Activation::kPrelu, true, true};
  out.predictor.kind = PredictorSpec::kHypercube;
  out.predictor.divisions = {3};
  out.predictor.cube_side = {2};
  out.predictor.per_subject = per_subject_predictors;
  OutputSpec out2{"aux", ModeSource::kOwned, {}, Activation::kTanh, true, true};
  spec.inputs = {stim, neurons, aux};
  spec.outputs = {out, out2};
  spec.mapping = parse_mapping("linear:4,3");
  spec.shared_mapping = parse_mapping("linear:3,2");
  spec.direct_pairs = {{1, 0}};
  return spec;
}

struct Problem {
  std::unique_ptr<SharedModules> shared;
  std::unique_ptr<SubjectModel> model;
  at::Tensor shared_flat, subject_flat;
  std::map<std::string, at::Tensor> props;
  std::vector<at::Tensor> x, y;

  explicit Problem(bool per_subject) {
    const int64_t n_neurons = 6, n_aux = 4, n = 9;
    shared = std::make_unique<SharedModules>(full_spec(per_subject),
                                             std::map<std::string, int64_t>{{"neurons", 3}});
    model = std::make_unique<SubjectModel>(
        *shared, SubjectShape{{{"stim", 3}, {"neurons", n_neurons}, {"aux", n_aux}}, {{"neurons", 3}}}, "s");
    shared_flat =
        (shared->initial_values(0, at::kDouble) + 0.3 * test::uniform({shared->layout().numel()}, 1))
            .requires_grad_();
    subject_flat =
        (model->initial_values(0, 1, at::kDouble) + 0.3 * test::uniform({model->layout().numel()}, 2))
            .requires_grad_();
    props = {{"neurons", test::uniform({n_neurons, 3}, 3, 0, 1)}};
    x = {test::uniform({n, 3}, 4), test::uniform({n, n_neurons}, 5), test::uniform({n, n_aux}, 6)};
    y = {test::uniform({n, n_neurons}, 7), test::uniform({n, n_aux}, 8)};
  }

  at::Tensor loss() const {
    const ParamViews v{model->layout().views(subject_flat), shared->layout().views(shared_flat)};
    return model->nll(y, model->forward(x, model->predict_modes(props, v), v), v);
  }

  // Checks every named parameter of one layout separately.
  void check_each(const ParamLayout& layout, at::Tensor& flat, std::set<std::string>* seen) {
    for (const auto& e : layout.entries()) {
      const GradCheck g = check_gradient([&] { return loss(); }, flat, e.offset, e.numel);
      EXPECT_LT(g.relative_error, 1e-6) << e.name << " (|grad| " << g.norm << ")";
      EXPECT_GT(g.norm, 0.0) << e.name << " has no effect on the NLL";
      // The kind: "pred.p." / "pred.u." for predictor weights, else the name up to its first dot.
      seen->insert(e.name.rfind("pred.", 0) == 0 ? e.name.substr(0, 7) : e.name.substr(0, e.name.find('.')));
    }
  }
};

TEST(Gradients, EveryParameterKindMatchesFiniteDifferences) {
  Problem p(false);
  std::set<std::string> kinds;
  p.check_each(p.model->layout(), p.subject_flat, &kinds);
  p.check_each(p.shared->layout(), p.shared_flat, &kinds);
  // Modes (owned p and u), predictor weights (p: MLP, u: hypercube), psi, scales, offsets, direct pairs,
  // PReLU slopes, the specific and the shared mapping.
  EXPECT_EQ(kinds, (std::set<std::string>{"direct", "map", "offset", "p", "pred.p.", "pred.u.", "psi",
                                          "scale", "shared_map", "slope", "u"}));
}

TEST(Gradients, PerSubjectPredictorsLiveInTheSubjectBuffer) {
  Problem p(true);
  EXPECT_TRUE(p.model->layout().contains("pred.p.neurons.w0"));
  EXPECT_TRUE(p.model->layout().contains("pred.u.neurons.values"));
  EXPECT_FALSE(p.shared->layout().contains("pred.p.neurons.w0"));
  const GradCheck g = check_gradient([&] { return p.loss(); }, p.subject_flat);
  EXPECT_LT(g.relative_error, 1e-6);
}

}  // namespace
}  // namespace mslr
