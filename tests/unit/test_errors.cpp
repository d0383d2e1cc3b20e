// Every shape error names the subject, the group and both sizes.
#include "mslr/model/subject_model.h"
#include "test_util.h"

namespace mslr {
namespace {

ModelSpec basic_spec() {
  ModelSpec spec;
  spec.inputs = {{"stim", 2, ModeSource::kFixed, {}}, {"neurons", 3, ModeSource::kPredicted, {}}};
  spec.outputs = {{"neurons", ModeSource::kPredicted, {}, Activation::kIdentity, false, true}};
  return spec;
}

const SubjectShape kShape{{{"stim", 2}, {"neurons", 7}}, {{"neurons", 3}}};

TEST(ShapeErrors, InputWidthDiffersFromTheModel) {
  SharedModules shared(basic_spec(), {{"neurons", 3}});
  SubjectModel m(shared, kShape, "fish1");
  const auto v = ParamViews{m.layout().views(m.initial_values(0, 0, at::kDouble)),
                            shared.layout().views(shared.initial_values(0, at::kDouble))};
  const auto modes = m.predict_modes({{"neurons", at::rand({7, 3}, at::kDouble)}}, v);
  EXPECT_EQ(test::error_of([&] {
              m.forward({at::zeros({4, 2}, at::kDouble), at::zeros({4, 6}, at::kDouble)}, modes, v);
            }),
            "subject 'fish1': input group 'neurons' has 6 columns, the model expects 7");
  EXPECT_EQ(test::error_of([&] {
              m.nll({at::zeros({4, 5}, at::kDouble)}, {at::zeros({4, 7}, at::kDouble)}, v);
            }),
            "subject 'fish1': output group 'neurons' has 5 columns, the model expects 7");
}

TEST(ShapeErrors, PropertiesRowsDifferFromGroupWidth) {
  SharedModules shared(basic_spec(), {{"neurons", 3}});
  SubjectModel m(shared, kShape, "fish1");
  EXPECT_EQ(test::error_of([&] {
              m.check_props({{"neurons", at::zeros({6, 3})}});
            }),
            "subject 'fish1': properties of group 'neurons' have 6 rows, the group has 7 variables");
  EXPECT_EQ(test::error_of([&] {
              m.check_props({{"neurons", at::zeros({7, 2})}});
            }),
            "subject 'fish1': properties of group 'neurons' have 2 columns, the predictor takes 3");
  EXPECT_EQ(test::error_of([&] { m.check_props({}); }),
            "subject 'fish1' has no properties for group 'neurons', whose modes are predicted from them");
  EXPECT_EQ(test::error_of([&] {
              SubjectModel(shared, {{{"stim", 2}, {"neurons", 7}}, {{"neurons", 4}}}, "fish2");
            }),
            "subject 'fish2' has 4 properties for group 'neurons', the shared predictor takes 3");
}

TEST(ShapeErrors, DirectPairOfUnequalWidths) {
  ModelSpec spec = basic_spec();
  spec.direct_pairs = {{0, 0}};
  SharedModules shared(spec, {{"neurons", 3}});
  EXPECT_EQ(test::error_of([&] { SubjectModel(shared, kShape, "fish1"); }),
            "subject 'fish1': direct pair stim -> neurons needs equal widths, input has 2 and output has 7");
}

TEST(ShapeErrors, PredictorOutputDiffersFromModeCount) {
  SharedModules shared(basic_spec(), {{"neurons", 3}});
  SubjectModel m(shared, kShape, "fish1");
  EXPECT_EQ(test::error_of([&] {
              m.from_prediction(m.p_slot(1), at::zeros({7, 2}));
            }),
            "subject 'fish1': predicted modes of input group 'neurons' have shape [7, 2], expected [7, 3]");
  EXPECT_EQ(test::error_of([&] {
              m.from_prediction(m.u_slot(0), at::zeros({7, 4}));
            }),
            "subject 'fish1': predicted modes of output group 'neurons' have shape [7, 4], expected [7, 5]");
  const auto v = ParamViews{m.layout().views(m.initial_values(0, 0, at::kDouble)), {}};
  ModeSet wrong{{at::Tensor(), at::zeros({7, 4}, at::kDouble)}, {at::zeros({7, 5}, at::kDouble)}};
  EXPECT_EQ(test::error_of([&] {
              m.forward({at::zeros({1, 2}, at::kDouble), at::zeros({1, 7}, at::kDouble)}, wrong, v);
            }),
            "subject 'fish1': modes of input group 'neurons' have shape [7, 4], expected [7, 3]");
}

TEST(ShapeErrors, FixedModesAndMissingGroups) {
  SharedModules shared(basic_spec(), {{"neurons", 3}});
  EXPECT_EQ(
      test::error_of([&] {
        SubjectModel(shared, {{{"stim", 4}, {"neurons", 7}}, {{"neurons", 3}}}, "fish1");
      }),
      "subject 'fish1', input group 'stim': fixed identity modes need 2 variables (the number of modes), the "
      "group has 4");
  EXPECT_EQ(test::error_of([&] {
              SubjectModel(shared, {{{"neurons", 7}}, {{"neurons", 3}}}, "fish1");
            }),
            "subject 'fish1' has no group 'stim'");
  SubjectModel m(shared, kShape, "fish1");
  EXPECT_EQ(test::error_of([&] {
              m.set_fixed(ModeSlot::kInput, 0, at::zeros({2, 3}));
            }),
            "subject 'fish1': fixed modes of input group 'stim' have shape [2, 3], expected [2, 2]");
}

TEST(ShapeErrors, MappingOutputsDifferFromOutputGroups) {
  ModelSpec spec = basic_spec();
  spec.mapping = parse_mapping("linear:3,3");
  EXPECT_EQ(test::error_of([&] { spec.validate(); }),
            "the mapping (linear:3,3) gives 2 transformed latents, the model has 1 output groups");
  spec.mapping = parse_mapping("identity");
  EXPECT_EQ(test::error_of([&] { spec.validate(); }),
            "the mapping (identity) gives 2 transformed latents, the model has 1 output groups");
  EXPECT_EQ(test::error_of([] { parse_mapping("linear:3,x"); }),
            "mapping 'linear:3,x': widths must be positive integers, got 'x'");
}

}  // namespace
}  // namespace mslr
