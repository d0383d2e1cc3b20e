// The forward pass of each mapping and option against values computed by hand (explicit loops over elements,
// independent of the tensor ops the model uses), and the NLL against its closed form.
#include <cmath>

#include <ATen/Parallel.h>

#include "mslr/model/nll.h"
#include "mslr/model/subject_model.h"
#include "test_util.h"

namespace mslr {
namespace {

using Matrix = std::vector<std::vector<double>>;

Matrix to_matrix(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  Matrix m(c.size(0), std::vector<double>(c.size(1)));
  for (int64_t i = 0; i < c.size(0); ++i)
    for (int64_t j = 0; j < c.size(1); ++j)
      m[i][j] = c[i][j].item<double>();
  return m;
}

Matrix matmul(const Matrix& a, const Matrix& b) {  // a [n, k] · b [k, m]
  Matrix c(a.size(), std::vector<double>(b[0].size(), 0.0));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < b.size(); ++k)
      for (size_t j = 0; j < b[0].size(); ++j)
        c[i][j] += a[i][k] * b[k][j];
  return c;
}

Matrix transpose(const Matrix& a) {
  Matrix t(a[0].size(), std::vector<double>(a.size()));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[0].size(); ++j)
      t[j][i] = a[i][j];
  return t;
}

Matrix hcat(const std::vector<Matrix>& parts) {
  Matrix out(parts[0].size());
  for (const auto& p : parts)
    for (size_t i = 0; i < p.size(); ++i)
      out[i].insert(out[i].end(), p[i].begin(), p[i].end());
  return out;
}

void expect_matrix_near(const at::Tensor& got, const Matrix& want, double tol = 1e-12) {
  ASSERT_EQ(got.size(0), static_cast<int64_t>(want.size()));
  ASSERT_EQ(got.size(1), static_cast<int64_t>(want[0].size()));
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t j = 0; j < want[0].size(); ++j)
      EXPECT_NEAR(got[i][j].item<double>(), want[i][j], tol) << "at (" << i << ", " << j << ")";
}

// A subject model with its flat buffers, set from random values (so every parameter matters).
struct Fixture {
  std::unique_ptr<SharedModules> shared;
  std::unique_ptr<SubjectModel> model;
  at::Tensor shared_flat, subject_flat;

  Fixture(const ModelSpec& spec, const SubjectShape& shape) {
    std::map<std::string, int64_t> n_props = shape.n_props;
    shared = std::make_unique<SharedModules>(spec, n_props);
    model = std::make_unique<SubjectModel>(*shared, shape, "s0");
    shared_flat = test::uniform({shared->layout().numel()}, 1);
    subject_flat = test::uniform({model->layout().numel()}, 2, 0.2, 1.5);  // psi, scales > 0
  }
  ParamViews views() const {
    return {model->layout().views(subject_flat), shared->layout().views(shared_flat)};
  }
  Matrix param(const std::string& name) const {
    at::Tensor v = model->layout().contains(name)
                       ? model->layout().view(subject_flat, model->layout().index_of(name))
                       : shared->layout().view(shared_flat, shared->layout().index_of(name));
    return v.dim() == 1 ? Matrix{std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel())}
                        : to_matrix(v);
  }
};

TEST(Forward, ConcatWithOwnedFixedScalesOffsetsAndDirectPairByHand) {
  // Everything written out: x_a = [1, 1], p_a = [[1], [2]] -> proj_a = 3; x_b = [2], fixed identity -> proj_b
  // = 2; tran = [3, 2]; u = [[1, 0], [0.5, -1]] -> z = [3, -0.5]; scale [2, 3], offset [0.1, -0.2] -> [6.1,
  // -1.7]; direct pair a -> o with c = [0.5, -1] adds [0.5, -1] -> mn = [6.6, -2.7].
  ModelSpec spec;
  spec.inputs = {{"a", 1, ModeSource::kOwned, {}}, {"b", 1, ModeSource::kFixed, {}}};
  spec.outputs = {{"o", ModeSource::kOwned, {}, Activation::kIdentity, true, true}};
  spec.direct_pairs = {{0, 0}};
  SharedModules shared(spec, {});
  SubjectModel m(shared, {{{"a", 2}, {"b", 1}, {"o", 2}}, {}});
  at::Tensor flat = m.initial_values(0, 0, at::kDouble);
  const auto& l = m.layout();
  l.view(flat, l.index_of("p.a")).copy_(at::tensor({1.0, 2.0}, at::kDouble).view({2, 1}));
  l.view(flat, l.index_of("u.o")).copy_(at::tensor({1.0, 0.0, 0.5, -1.0}, at::kDouble).view({2, 2}));
  l.view(flat, l.index_of("scale.o")).copy_(at::tensor({2.0, 3.0}, at::kDouble));
  l.view(flat, l.index_of("offset.o")).copy_(at::tensor({0.1, -0.2}, at::kDouble));
  l.view(flat, l.index_of("direct.a.o")).copy_(at::tensor({0.5, -1.0}, at::kDouble));
  l.view(flat, l.index_of("psi.o")).copy_(at::tensor({0.5, 2.0}, at::kDouble));
  const ParamViews v{l.views(flat), {}};
  const auto mn = m.forward(
      {at::tensor({1.0, 1.0}, at::kDouble).view({1, 2}), at::tensor({2.0}, at::kDouble).view({1, 1})}, {}, v);
  expect_matrix_near(mn[0], {{6.6, -2.7}});
  // NLL closed form: log(2π) + 0.5(log 0.5 + log 2) + 0.5(0.4²/0.5 + 0.3²/2) with y = [7, -3].
  const at::Tensor y = at::tensor({7.0, -3.0}, at::kDouble).view({1, 2});
  const double want = std::log(2 * M_PI) + 0.5 * (0.16 / 0.5 + 0.09 / 2.0);
  EXPECT_NEAR(m.nll({y}, mn, v).item<double>(), want, 1e-12);
  EXPECT_NEAR(m.nll_reference({y}, mn, v).item<double>(), want, 1e-12);
}

// Inputs a (d=3, owned, 2 modes) and b (d=2, owned, 1 mode); n = 4 samples.
ModelSpec two_inputs(MappingSpec mapping, std::vector<OutputSpec> outputs) {
  ModelSpec spec;
  spec.inputs = {{"a", 2, ModeSource::kOwned, {}}, {"b", 1, ModeSource::kOwned, {}}};
  spec.outputs = std::move(outputs);
  spec.mapping = std::move(mapping);
  return spec;
}

OutputSpec owned_output(const std::string& g, Activation nl = Activation::kIdentity) {
  return {g, ModeSource::kOwned, {}, nl, false, false};
}

TEST(Forward, IdentityMappingByHand) {
  Fixture f(two_inputs({MappingSpec::kIdentity, {}}, {owned_output("o1"), owned_output("o2")}),
            {{{"a", 3}, {"b", 2}, {"o1", 4}, {"o2", 3}}, {}});
  const at::Tensor xa = test::uniform({4, 3}, 10), xb = test::uniform({4, 2}, 11);
  const auto mn = f.model->forward({xa, xb}, {}, f.views());
  // tran_1 = x_a p_a, tran_2 = x_b p_b; mn_h = tran_h u_hᵀ
  expect_matrix_near(mn[0], matmul(matmul(to_matrix(xa), f.param("p.a")), transpose(f.param("u.o1"))));
  expect_matrix_near(mn[1], matmul(matmul(to_matrix(xb), f.param("p.b")), transpose(f.param("u.o2"))));
}

TEST(Forward, LinearMappingByHand) {
  Fixture f(
      two_inputs(parse_mapping("linear:2,3"), {owned_output("o1"), owned_output("o2", Activation::kTanh)}),
      {{{"a", 3}, {"b", 2}, {"o1", 4}, {"o2", 3}}, {}});
  const at::Tensor xa = test::uniform({4, 3}, 10), xb = test::uniform({4, 2}, 11);
  const auto mn = f.model->forward({xa, xb}, {}, f.views());
  const Matrix all = hcat({matmul(to_matrix(xa), f.param("p.a")), matmul(to_matrix(xb), f.param("p.b"))});
  expect_matrix_near(mn[0], matmul(matmul(all, f.param("map.w0")), transpose(f.param("u.o1"))));
  Matrix z2 = matmul(matmul(all, f.param("map.w1")), transpose(f.param("u.o2")));
  for (auto& row : z2)
    for (auto& v : row)
      v = std::tanh(v);
  expect_matrix_near(mn[1], z2);
}

TEST(Forward, SharedAfterSpecificMappingByHand) {
  ModelSpec spec = two_inputs(parse_mapping("linear:3"), {owned_output("o1")});
  spec.shared_mapping = parse_mapping("linear:2");
  Fixture f(spec, {{{"a", 3}, {"b", 2}, {"o1", 4}}, {}});
  EXPECT_TRUE(f.shared->layout().contains("shared_map.w0"));  // the shared part lives in the shared buffer
  EXPECT_FALSE(f.model->layout().contains("shared_map.w0"));
  const at::Tensor xa = test::uniform({4, 3}, 10), xb = test::uniform({4, 2}, 11);
  const auto mn = f.model->forward({xa, xb}, {}, f.views());
  const Matrix all = hcat({matmul(to_matrix(xa), f.param("p.a")), matmul(to_matrix(xb), f.param("p.b"))});
  expect_matrix_near(mn[0], matmul(matmul(matmul(all, f.param("map.w0")), f.param("shared_map.w0")),
                                   transpose(f.param("u.o1"))));
}

TEST(Forward, NonlinearitiesScalesAndOffsetsByHand) {
  for (Activation a : {Activation::kRelu, Activation::kTanh, Activation::kSigmoid, Activation::kSoftplus,
                       Activation::kExp, Activation::kPrelu}) {
    OutputSpec out = owned_output("o", a);
    out.scales = out.offsets = true;
    Fixture f(two_inputs({MappingSpec::kConcat, {}}, {out}), {{{"a", 3}, {"b", 2}, {"o", 4}}, {}});
    // Shift the mean of the latents so that both signs occur.
    const at::Tensor xa = test::uniform({5, 3}, 20, -2, 2), xb = test::uniform({5, 2}, 21, -2, 2);
    const auto mn = f.model->forward({xa, xb}, {}, f.views());
    Matrix z = matmul(hcat({matmul(to_matrix(xa), f.param("p.a")), matmul(to_matrix(xb), f.param("p.b"))}),
                      transpose(f.param("u.o")));
    const auto scale = f.param("scale.o")[0], offset = f.param("offset.o")[0];
    for (auto& row : z)
      for (size_t j = 0; j < row.size(); ++j) {
        double v = row[j];
        switch (a) {
          case Activation::kRelu:
            v = v > 0 ? v : 0;
            break;
          case Activation::kTanh:
            v = std::tanh(v);
            break;
          case Activation::kSigmoid:
            v = 1 / (1 + std::exp(-v));
            break;
          case Activation::kSoftplus:
            v = std::log1p(std::exp(v));
            break;
          case Activation::kExp:
            v = std::exp(v);
            break;
          case Activation::kPrelu:
            v = v > 0 ? v : f.param("slope.o")[0][j] * v;
            break;
          default:
            break;
        }
        row[j] = scale[j] * v + offset[j];
      }
    SCOPED_TRACE(to_string(a));
    expect_matrix_near(mn[0], z);
  }
}

TEST(Forward, SuppliedModesAreUsedAsGivenAndPredictionsAreDividedByN) {
  ModelSpec spec;
  spec.inputs = {{"n", 2, ModeSource::kPredicted, {}}};
  spec.outputs = {{"n", ModeSource::kPredicted, {}, Activation::kIdentity, false, false}};
  Fixture f(spec, {{{"n", 5}}, {{"n", 3}}});
  const at::Tensor props = test::uniform({5, 3}, 30, 0, 1);
  const ParamViews v = f.views();
  const at::Tensor raw_p = f.model->p_slot(0).predictor->forward(props, v.shared);
  const ModeSet modes = f.model->predict_modes({{"n", props}}, v);
  EXPECT_LT(test::rel_diff(modes.p[0], raw_p / 5.0), 1e-15);  // p = p_pred(props) / N
  EXPECT_LT(test::rel_diff(modes.u[0], f.model->u_slot(0).predictor->forward(props, v.shared)), 1e-15);
  // Conditional forward: whatever modes are supplied are the ones used.
  ModeSet given{{test::uniform({5, 2}, 31)}, {test::uniform({5, 2}, 32)}};
  const at::Tensor x = test::uniform({3, 5}, 33);
  expect_matrix_near(f.model->forward({x}, given, v)[0],
                     matmul(matmul(to_matrix(x), to_matrix(given.p[0])), transpose(to_matrix(given.u[0]))));
  // Without the mean scaling the predictor output is used as is.
  spec.p_modes_mean = false;
  Fixture g(spec, {{{"n", 5}}, {{"n", 3}}});
  EXPECT_LT(test::rel_diff(g.model->predict_modes({{"n", props}}, g.views()).p[0],
                           g.model->p_slot(0).predictor->forward(props, g.views().shared)),
            1e-15);
}

TEST(Nll, FusedMatchesReferenceInValueAndGradient) {
  for (auto dtype : {at::kDouble, at::kFloat}) {
    const at::Tensor y = test::uniform({300, 57}, 40).to(dtype);
    const at::Tensor mn0 = test::uniform({300, 57}, 41).to(dtype);
    const at::Tensor psi0 = test::uniform({57}, 42, 0.3, 2.0).to(dtype);
    at::Tensor mn_a = mn0.clone().requires_grad_(), psi_a = psi0.clone().requires_grad_();
    at::Tensor mn_b = mn0.clone().requires_grad_(), psi_b = psi0.clone().requires_grad_();
    const at::Tensor fused = gaussian_nll(y, mn_a, psi_a);
    const at::Tensor ref = gaussian_nll_reference(y, mn_b, psi_b);
    (3.0 * fused).backward();
    (3.0 * ref).backward();
    const double tol = dtype == at::kDouble ? 1e-12 : 1e-5;
    EXPECT_LT(test::rel_diff(fused, ref), tol);
    EXPECT_LT(test::rel_diff(mn_a.grad(), mn_b.grad()), tol);
    EXPECT_LT(test::rel_diff(psi_a.grad(), psi_b.grad()), tol);
  }
}

TEST(Nll, FusedResultDoesNotDependOnTheThreadCount) {
  const at::Tensor y = test::uniform({1000, 33}, 50).to(at::kFloat);
  const at::Tensor mn = test::uniform({1000, 33}, 51).to(at::kFloat);
  const at::Tensor psi = test::uniform({33}, 52, 0.5, 1.0).to(at::kFloat);
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const float one = gaussian_nll(y, mn, psi).item<float>();
  at::set_num_threads(2);
  const float two = gaussian_nll(y, mn, psi).item<float>();
  at::set_num_threads(before);
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace mslr
