// The batched step (hand-written backward, fused passes) against the autograd reference: the objective and
// every gradient in float64 to 1e-10 relative, for every model option it covers, on subjects of unequal sizes
// that cross its column chunks (256) and MLP blocks (512); float32 to its rounding; its independence of the
// other subjects and of the thread count; and the fast tanh against std::tanh.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "mslr/data/subject_data.h"
#include "mslr/fit/predict.h"
#include "mslr/model/batched.h"
#include "mslr/model/kernels.h"
#include "test_util.h"

namespace mslr {
namespace {

struct Case {
  std::string name;
  ModelSpec spec;
  std::vector<int64_t> neurons;  // per subject
  bool fixed_p = false;          // input 1 gets given fixed modes instead of the identity
};

// Inputs: stim (fixed, 3 modes) and neurons (2 modes); outputs: neurons; concat mapping. Each case changes
// what it names.
ModelSpec base_spec() {
  ModelSpec spec;
  InputSpec stim{"stim", 3, ModeSource::kFixed, {}};
  InputSpec neurons{"neurons", 2, ModeSource::kPredicted, {}};
  neurons.predictor.hidden = {6, 5};
  OutputSpec out{"neurons", ModeSource::kPredicted, {}, Activation::kIdentity, false, true};
  out.predictor.hidden = {4};
  spec.inputs = {stim, neurons};
  spec.outputs = {out};
  spec.psi_init = 0.7;
  return spec;
}

std::vector<Case> cases() {
  std::vector<Case> c;
  const std::vector<int64_t> sizes = {300, 700, 37};  // chunks of 256 and MLP blocks of 512 cut the second
  c.push_back({"default", base_spec(), sizes});
  {
    ModelSpec s = base_spec();
    s.outputs[0].nonlinearity = Activation::kTanh;
    s.outputs[0].scales = true;
    s.outputs[0].offsets = false;
    s.p_modes_mean = false;
    s.inputs[1].predictor.activation = Activation::kSigmoid;
    c.push_back({"tanh_scales_unscaled_p", s, sizes});
  }
  for (Activation a : {Activation::kRelu, Activation::kSigmoid, Activation::kSoftplus, Activation::kExp}) {
    ModelSpec s = base_spec();
    s.outputs[0].nonlinearity = a;
    s.outputs[0].scales = true;
    s.outputs[0].predictor.activation = a == Activation::kExp ? Activation::kTanh : a;
    c.push_back({"output_" + to_string(a), s, {40, 290}});
  }
  {
    ModelSpec s = base_spec();
    for (auto* p : {&s.inputs[1].predictor, &s.outputs[0].predictor}) {
      p->kind = PredictorSpec::kHypercube;
      p->divisions = {3, 4, 2};
      p->cube_side = {2, 1, 2};
    }
    c.push_back({"hypercube", s, sizes});
  }
  {
    ModelSpec s = base_spec();
    s.inputs[1].predictor.per_subject = true;
    s.outputs[0].predictor.per_subject = true;
    c.push_back({"per_subject_predictors", s, sizes});
  }
  {
    ModelSpec s = base_spec();
    s.inputs[1].modes = ModeSource::kOwned;
    s.outputs[0].modes = ModeSource::kOwned;
    c.push_back({"owned_modes_given_fixed_p", s, {290, 33}, true});
  }
  {
    // Identity mapping: stim -> stim (fixed u), neurons -> neurons; two output groups.
    ModelSpec s = base_spec();
    OutputSpec stim_out{"stim", ModeSource::kFixed, {}, Activation::kIdentity, true, true};
    s.outputs = {stim_out, s.outputs[0]};
    s.mapping = parse_mapping("identity");
    c.push_back({"identity_mapping_fixed_u", s, {280, 45}});
  }
  return c;
}

struct Problem {
  std::unique_ptr<SharedModules> shared;
  std::vector<std::unique_ptr<SubjectModel>> models;
  std::vector<SubjectData> data;
  std::vector<at::Tensor> params;  // per subject, float64
  at::Tensor shared_params;
  std::vector<at::Tensor> times;
  std::vector<double> weight;

  Problem(const Case& c, uint64_t seed) {
    const int64_t T = 60;
    shared = std::make_unique<SharedModules>(c.spec, std::map<std::string, int64_t>{{"neurons", 3}});
    shared_params =
        shared->initial_values(seed, at::kDouble) + 0.2 * test::uniform({shared->layout().numel()}, seed + 1);
    for (size_t s = 0; s < c.neurons.size(); ++s) {
      const int64_t n = c.neurons[s];
      const uint64_t key = seed * 100 + s * 10;
      SubjectData d;
      d.name = "s" + std::to_string(s);
      d.groups["stim"] = test::uniform({T, 3}, key + 1);
      d.groups["neurons"] = test::uniform({T, n}, key + 2, -2, 2);
      d.props["neurons"] = test::uniform({n, 3}, key + 3, 0, 1);
      auto m = std::make_unique<SubjectModel>(
          *shared, SubjectShape{{{"stim", 3}, {"neurons", n}}, {{"neurons", 3}}}, d.name);
      if (c.fixed_p) m->set_fixed(ModeSlot::kInput, 0, test::uniform({3, 3}, key + 4));
      at::Tensor p =
          m->initial_values(seed, key, at::kDouble) + 0.2 * test::uniform({m->layout().numel()}, key + 5);
      // Noise variances and scales stay positive and away from 0.
      for (int h = 0; h < m->n_outputs(); ++h)
        m->layout().view(p, m->psi_index(h)).uniform_(0.5, 1.5);
      params.push_back(p);
      // A minibatch of distinct times in [1, T), of a size that differs per subject.
      at::Tensor perm = at::randperm(T - 1, at::TensorOptions().dtype(at::kLong)) + 1;
      times.push_back(perm.narrow(0, 0, 17 + 5 * static_cast<int64_t>(s)).contiguous());
      weight.push_back(3.5 + static_cast<double>(s));
      models.push_back(std::move(m));
      data.push_back(std::move(d));
    }
  }

  // Subject s's minibatch: the inputs at t-1 and the outputs at t, [n, d] each, in `dtype`.
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> minibatch(size_t s,
                                                                        at::ScalarType dtype) const {
    const SubjectModel& m = *models[s];
    std::vector<at::Tensor> x, y;
    for (const auto& g : m.spec().inputs)
      x.push_back(gather_rows(data[s].groups.at(g.group).to(dtype), times[s], -1));
    for (const auto& h : m.spec().outputs)
      y.push_back(gather_rows(data[s].groups.at(h.group).to(dtype), times[s], 0));
    return {x, y};
  }

  // The autograd reference: per subject, weight · NLL and its gradients (subject, shared).
  struct Result {
    std::vector<double> nll;
    std::vector<at::Tensor> grad, shared_grad;
  };
  Result reference(at::ScalarType dtype) const {
    Result r;
    for (size_t s = 0; s < models.size(); ++s) {
      const SubjectModel& m = *models[s];
      // Copies: .to() of a tensor already of the dtype would return it, and grads would pile up in it.
      at::Tensor sp = params[s].to(dtype).clone().requires_grad_();
      at::Tensor shp = shared_params.to(dtype).clone().requires_grad_();
      const ParamViews v{m.layout().views(sp), shared->layout().views(shp)};
      std::map<std::string, at::Tensor> props;
      for (const auto& [g, p] : data[s].props)
        props[g] = p.to(dtype);
      const ModeSet modes = m.predict_modes(props, v);
      const auto [x, y] = minibatch(s, dtype);
      const at::Tensor loss = m.nll_reference(y, m.forward(x, modes, v), v) * weight[s];
      torch::autograd::backward({loss});
      r.nll.push_back(loss.item<double>());
      auto grad_of = [](const at::Tensor& leaf) {
        return leaf.grad().defined() ? leaf.grad().to(at::kDouble).clone()
                                     : at::zeros(leaf.sizes(), at::kDouble);
      };
      r.grad.push_back(grad_of(sp));
      r.shared_grad.push_back(grad_of(shp));
    }
    return r;
  }

  // The batched step over the subjects `which` (all by default), the shared parameters held when asked, the
  // regression passes in waves of wave_bytes when given (else the default).
  Result batched(at::ScalarType dtype, std::vector<int> which = {}, bool hold_shared = false,
                 int64_t wave_bytes = 0) const {
    if (which.empty())
      for (size_t s = 0; s < models.size(); ++s)
        which.push_back(static_cast<int>(s));
    std::vector<BatchedSubject> subjects;
    Minibatch mb;
    std::vector<at::Tensor> sp, grads, shared_grads;
    for (int s : which) {
      models[s]->to(at::TensorOptions().dtype(dtype));
      BatchedSubject b;
      b.model = models[s].get();
      for (const auto& [g, x] : data[s].groups)
        b.groups[g] = x.to(dtype).contiguous();
      b.props = data[s].props;
      b.max_batch = times[s].numel() + 3;
      subjects.push_back(b);
      mb.times.push_back(times[s].data_ptr<int64_t>());
      mb.count.push_back(times[s].numel());
      mb.weight.push_back(weight[s]);
      sp.push_back(params[s].to(dtype));
      grads.push_back(at::full({models[s]->layout().numel()}, 7.0, dtype));  // overwritten, not added to
      shared_grads.push_back(at::full({shared->layout().numel()}, 7.0, dtype));
    }
    BatchedModel model(*shared, subjects, dtype);
    model.hold_shared(hold_shared);
    if (wave_bytes > 0) model.set_wave_bytes(wave_bytes);
    std::vector<double> nll(which.size());
    model.step(mb, sp, shared_params.to(dtype), grads, shared_grads, nll.data());
    Result r;
    r.nll = nll;
    for (size_t i = 0; i < which.size(); ++i) {
      r.grad.push_back(grads[i].to(at::kDouble));
      r.shared_grad.push_back(shared_grads[i].to(at::kDouble));
    }
    for (auto& m : models)
      m->to(at::TensorOptions().dtype(at::kDouble));
    return r;
  }
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class BatchedStep : public ::testing::TestWithParam<Case> {};

TEST_P(BatchedStep, EqualsAutogradInFloat64) {
  const Case& c = GetParam();
  ASSERT_EQ(batched_step_gap(c.spec), "");
  Problem p(c, 3);
  const auto ref = p.reference(at::kDouble);
  const auto got = p.batched(at::kDouble);
  for (size_t s = 0; s < p.models.size(); ++s) {
    EXPECT_NEAR(got.nll[s], ref.nll[s], 1e-10 * std::abs(ref.nll[s])) << "subject " << s;
    // Every parameter of the subject and of the shared modules, each to 1e-10 of its own size.
    for (const auto* layout : {&p.models[s]->layout(), &p.shared->layout()}) {
      const bool own = layout == &p.models[s]->layout();
      for (int i = 0; i < layout->size(); ++i) {
        const at::Tensor a = layout->view(own ? got.grad[s] : got.shared_grad[s], i);
        const at::Tensor b = layout->view(own ? ref.grad[s] : ref.shared_grad[s], i);
        EXPECT_LT(test::rel_diff(a, b, 1e-300), 1e-10) << "subject " << s << ", " << (*layout)[i].name;
        EXPECT_GT(b.abs().max().item<double>(), 0.0) << (*layout)[i].name << " has no gradient";
      }
    }
  }
}

TEST_P(BatchedStep, EqualsAutogradInFloat32ToItsRounding) {
  const Case& c = GetParam();
  Problem p(c, 5);
  const auto ref = p.reference(at::kDouble);
  const auto got = p.batched(at::kFloat);
  for (size_t s = 0; s < p.models.size(); ++s) {
    EXPECT_NEAR(got.nll[s], ref.nll[s], 1e-5 * std::abs(ref.nll[s]));
    EXPECT_LT(test::rel_diff(got.grad[s], ref.grad[s]), 1e-4);
    if (ref.shared_grad[s].numel() > 0)
      EXPECT_LT(test::rel_diff(got.shared_grad[s], ref.shared_grad[s]), 1e-4);
  }
}

TEST_P(BatchedStep, ASubjectsNumbersDependOnItAloneAndNotOnThreads) {
  // What decides rank invariance: a subject's gradients are bitwise the same computed with others or alone,
  // with 1 or 2 threads, and with the step in one wave or a wave per subject (the predictors' activations of
  // every wave in the same memory).
  const Case& c = GetParam();
  Problem p(c, 7);
  const int threads = at::get_num_threads();
  const int64_t one_wave = int64_t{1} << 40;
  at::set_num_threads(1);
  const auto all = p.batched(at::kFloat, {}, false, one_wave);
  const auto waves = p.batched(at::kFloat, {}, false, 1);
  const auto chosen = p.batched(at::kFloat);
  at::set_num_threads(2);
  const auto all2 = p.batched(at::kFloat, {}, false, one_wave);
  const auto waves2 = p.batched(at::kFloat, {}, false, 1);
  const auto last = p.batched(at::kFloat, {static_cast<int>(p.models.size()) - 1});
  at::set_num_threads(threads);
  for (size_t s = 0; s < p.models.size(); ++s)
    for (const auto* other : {&all2, &waves, &waves2, &chosen}) {
      EXPECT_TRUE(all.grad[s].equal(other->grad[s])) << "subject " << s;
      EXPECT_TRUE(all.shared_grad[s].equal(other->shared_grad[s])) << "subject " << s;
      EXPECT_EQ(all.nll[s], other->nll[s]);
    }
  EXPECT_TRUE(all.grad.back().equal(last.grad[0]));
  EXPECT_TRUE(all.shared_grad.back().equal(last.shared_grad[0]));
  EXPECT_EQ(all.nll.back(), last.nll[0]);
}

TEST_P(BatchedStep, HoldingTheSharedPartsSkipsOnlyTheirGradients) {
  // fit --freeze shared: the subjects' own numbers are bit for bit those of the full step.
  const Case& c = GetParam();
  Problem p(c, 9);
  const auto full = p.batched(at::kFloat);
  const auto held = p.batched(at::kFloat, {}, true);
  for (size_t s = 0; s < p.models.size(); ++s) {
    EXPECT_TRUE(full.grad[s].equal(held.grad[s])) << "subject " << s;
    EXPECT_EQ(full.nll[s], held.nll[s]);
    EXPECT_FALSE(held.shared_grad[s].ne(0).any().item<bool>());
  }
}

TEST_P(BatchedStep, ForwardGivesTheReferenceMeans) {
  const Case& c = GetParam();
  Problem p(c, 9);
  for (size_t s = 0; s < p.models.size(); ++s) {
    const SubjectModel& m = *p.models[s];
    const ParamViews v{m.layout().views(p.params[s]), p.shared->layout().views(p.shared_params)};
    const auto x = p.minibatch(s, at::kDouble).first;
    const auto ref = m.forward(x, m.predict_modes(p.data[s].props, v), v);
    BatchedSubject b{&m, p.data[s].groups, p.data[s].props, p.times[s].numel()};
    BatchedModel model(*p.shared, {b}, at::kDouble);
    std::vector<std::vector<at::Tensor>> means(1);
    for (int h = 0; h < m.n_outputs(); ++h)
      means[0].push_back(at::empty({p.times[s].numel(), m.d_out(h)}, at::kDouble));
    Minibatch mb{{p.times[s].data_ptr<int64_t>()}, {p.times[s].numel()}, {1.0}};
    double nll = 0;
    model.forward(mb, {p.params[s]}, p.shared_params, means, &nll);
    for (int h = 0; h < m.n_outputs(); ++h)
      EXPECT_LT(test::rel_diff(means[0][h], ref[h]), 1e-12);
  }
}

TEST_P(BatchedStep, PredictionGoesThroughTheBatchedForwardInBatches) {
  const Case& c = GetParam();
  Problem p(c, 11);
  for (size_t s = 0; s < p.models.size(); ++s) {
    const SubjectModel& m = *p.models[s];
    const ParamViews v{m.layout().views(p.params[s]), p.shared->layout().views(p.shared_params)};
    const auto [x, y] = p.minibatch(s, at::kDouble);
    const auto ref = m.forward(x, m.predict_modes(p.data[s].props, v), v);
    const double ref_nll = m.nll_reference(y, ref, v).item<double>();
    // Batches of 7 samples: the last one is short.
    const SubjectPrediction got = predict_subject(m, p.params[s], p.shared_params, p.data[s], p.times[s], 7);
    EXPECT_EQ(got.samples, p.times[s].numel());
    EXPECT_NEAR(got.nll, ref_nll, 1e-10 * std::abs(ref_nll));
    for (int h = 0; h < m.n_outputs(); ++h)
      EXPECT_LT(test::rel_diff(got.means[h], ref[h]), 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(Options, BatchedStep, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(BatchedStepGap, NamesWhatItDoesNotCover) {
  ModelSpec s = base_spec();
  s.mapping = parse_mapping("linear:3");
  EXPECT_EQ(batched_step_gap(s), "a linear mapping");
  s = base_spec();
  s.shared_mapping = parse_mapping("linear:3");
  EXPECT_EQ(batched_step_gap(s), "a shared mapping");
  s = base_spec();
  s.outputs[0].nonlinearity = Activation::kPrelu;
  EXPECT_EQ(batched_step_gap(s), "a prelu output");
  s = base_spec();
  s.inputs.push_back({"aux", 2, ModeSource::kOwned, {}});
  s.direct_pairs = {{1, 0}};
  EXPECT_EQ(batched_step_gap(s), "direct pairs");
}

// ULPs between a float result and the exact value.
double ulps(float got, double want) {
  const float w = static_cast<float>(want);
  if (got == w) return 0.0;
  const double ulp = std::max<double>(std::nextafter(std::fabs(w), INFINITY) - std::fabs(w), 1.4e-45);
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

TEST(FastTanh, WithinThreeUlpOverItsWholeRange) {
  // Every 61st float32 bit pattern (70 million values, all exponents and signs) plus the edges.
  std::vector<float> x, y;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 61) {
    const uint32_t bits = static_cast<uint32_t>(b);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    x.push_back(v);
  }
  for (float v : {0.0f, -0.0f, 0.5f, -0.5f, 9.0f, -9.0f, 1e-30f, -1e-30f, 1e30f, -1e30f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()})
    x.push_back(v);
  y.resize(x.size());
  kernels::tanh_fast(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  float at = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) {
      ASSERT_TRUE(std::isnan(y[i])) << "tanh(NaN) must be NaN";
      continue;
    }
    const double e = ulps(y[i], std::tanh(static_cast<double>(x[i])));
    if (e > worst) worst = e, at = x[i];
    ASSERT_EQ(y[i], kernels::tanh_fast(x[i]));  // the loop and the scalar agree
  }
  EXPECT_LE(worst, 3.0) << "at " << at;
  EXPECT_EQ(kernels::tanh_fast(0.0f), 0.0f);
  EXPECT_EQ(kernels::tanh_fast(100.0f), 1.0f);
  EXPECT_EQ(kernels::tanh_fast(-100.0f), -1.0f);
}

TEST(FastExp, WithinTwoUlpWhereTheResultIsNormal) {
  double worst = 0.0;
  for (float v = -87.3f; v < 88.7f; v = std::nextafter(v, 100.0f) + 1e-4f * std::fabs(v))
    worst = std::max(worst, ulps(kernels::exp_fast(v), std::exp(static_cast<double>(v))));
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(kernels::exp_fast(-200.0f), 0.0f);
  EXPECT_TRUE(std::isinf(kernels::exp_fast(200.0f)));
  EXPECT_TRUE(std::isnan(kernels::exp_fast(std::nanf(""))));
}

TEST(Gemm, RowMajorProductsWithTransposes) {
  const at::Tensor a = test::uniform({5, 7}, 1), b = test::uniform({7, 3}, 2), c0 = test::uniform({5, 3}, 3);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const at::Tensor A = ta ? a.t().contiguous() : a, B = tb ? b.t().contiguous() : b;
      at::Tensor c = c0.clone();
      kernels::gemm<double>(ta, tb, 5, 3, 7, 2.0, A.data_ptr<double>(), A.size(1), B.data_ptr<double>(),
                            B.size(1), 0.5, c.data_ptr<double>(), 3);
      EXPECT_LT(test::rel_diff(c, 2.0 * a.mm(b) + 0.5 * c0), 1e-14) << ta << tb;
    }
}

// The dense-layer kernels against plain products, on widths that leave every kind of tile tail (1 to 9
// outputs, 1 to 6 inputs, rows that are not a whole number of tiles), and their values independent of how
// many rows a call covers.
TEST(DenseKernels, LayersAndTheirGradientsEqualPlainProducts) {
  for (int64_t wi : {1, 3, 4, 6})
    for (int64_t wo : {1, 2, 4, 5, 9})
      for (int64_t rows : {16, 48, 80}) {
        ASSERT_EQ(kernels::dense_rows(rows), rows);
        const uint64_t key = static_cast<uint64_t>(wi * 1000 + wo * 100 + rows);
        const at::Tensor x = test::uniform({wi, rows}, key), W = test::uniform({wi, wo}, key + 1),
                         b = test::uniform({wo}, key + 2), dz = test::uniform({wo, rows}, key + 3);
        at::Tensor out = at::empty({wo, rows}, at::kDouble);
        kernels::dense_forward<double>(rows, wi, wo, W.data_ptr<double>(), wo, 1, b.data_ptr<double>(),
                                       x.data_ptr<double>(), rows, out.data_ptr<double>(), rows);
        EXPECT_LT(test::rel_diff(out, W.t().mm(x) + b.unsqueeze(1)), 1e-14) << wi << " " << wo << " " << rows;
        // The transpose through the strides, without a bias: W · dz.
        at::Tensor dh = at::empty({wi, rows}, at::kDouble);
        kernels::dense_forward<double>(rows, wo, wi, W.data_ptr<double>(), 1, wo, nullptr,
                                       dz.data_ptr<double>(), rows, dh.data_ptr<double>(), rows);
        EXPECT_LT(test::rel_diff(dh, W.mm(dz)), 1e-14) << wi << " " << wo << " " << rows;
        at::Tensor G = at::empty({wi, wo}, at::kDouble), gb = at::empty({wo}, at::kDouble);
        kernels::dense_weight_grad<double>(rows, wi, wo, x.data_ptr<double>(), rows, dz.data_ptr<double>(),
                                           rows, G.data_ptr<double>(), gb.data_ptr<double>());
        EXPECT_LT(test::rel_diff(G, x.mm(dz.t())), 1e-14) << wi << " " << wo << " " << rows;
        EXPECT_LT(test::rel_diff(gb, dz.sum(1)), 1e-14);
        // The first 16 rows alone give the same bits as within the whole call.
        at::Tensor part = at::empty({wo, 16}, at::kDouble);
        kernels::dense_forward<double>(16, wi, wo, W.data_ptr<double>(), wo, 1, b.data_ptr<double>(),
                                       x.data_ptr<double>(), rows, part.data_ptr<double>(), 16);
        EXPECT_TRUE(at::equal(part, out.narrow(1, 0, 16)));
      }
  EXPECT_EQ(kernels::dense_rows(1), 16);
  EXPECT_EQ(kernels::dense_rows(17), 32);
}

// The epilogues applied in the dense kernels' tiles: a float32 layer's fused tanh gives the bits of the layer
// followed by tanh_fast, and tanh's derivative applied to an input gradient equals the product times 1 - h²,
// on widths and rows with every kind of tile tail.
// A weight gradient's tile of 4 x 4 sums has its lane sums taken a vector's worth at once; a weight row
// alone has them one by one: the same tree, so the same bits, in float32 and float64.
template <class T>
void check_weight_rows_alone_and_in_tiles() {
  const auto dt = c10::CppTypeToScalarType<T>::value;
  const int64_t n = 48, wo = 8;
  // Whole tiles, and every number of rows left over after them (a layer of 3 inputs takes a tile of 3 rows).
  for (int64_t wi : {8, 7, 6, 5, 3, 2}) {
    const at::Tensor in = test::uniform({wi, n}, 21).to(dt), dz = test::uniform({wo, n}, 22).to(dt);
    at::Tensor together = at::empty({wi, wo}, dt), alone = at::empty({wi, wo}, dt);
    at::Tensor gb_together = at::empty({wo}, dt), gb_alone = at::empty({wo}, dt);
    kernels::dense_weight_grad<T>(n, wi, wo, in.template data_ptr<T>(), n, dz.template data_ptr<T>(), n,
                                  together.template data_ptr<T>(), gb_together.template data_ptr<T>());
    for (int64_t k = 0; k < wi; ++k)
      kernels::dense_weight_grad<T>(n, 1, wo, in.template data_ptr<T>() + k * n, n, dz.template data_ptr<T>(),
                                    n, alone.template data_ptr<T>() + k * wo,
                                    k == 0 ? gb_alone.template data_ptr<T>() : nullptr);
    EXPECT_TRUE(at::equal(together, alone)) << wi << " rows";
    EXPECT_TRUE(at::equal(gb_together, gb_alone)) << wi << " rows";
    EXPECT_LT(test::rel_diff(together.to(at::kDouble), in.to(at::kDouble).mm(dz.to(at::kDouble).t())),
              sizeof(T) == 4 ? 1e-5 : 1e-14)
        << wi << " rows";
    EXPECT_LT(test::rel_diff(gb_together.to(at::kDouble), dz.to(at::kDouble).sum(1)),
              sizeof(T) == 4 ? 1e-5 : 1e-14)
        << wi << " rows";
  }
}

TEST(DenseKernels, AWeightRowsGradientHasTheSameBitsAloneAndInATile) {
  check_weight_rows_alone_and_in_tiles<float>();
  check_weight_rows_alone_and_in_tiles<double>();
}

TEST(DenseKernels, FusedTanhAndItsDerivativeEqualTheSeparatePasses) {
  using E32 = kernels::DenseEpilogue<float>;
  using E64 = kernels::DenseEpilogue<double>;
  for (int64_t wi : {3, 32})
    for (int64_t wo : {5, 32})
      for (int64_t rows : {48, 80}) {
        const uint64_t key = static_cast<uint64_t>(wi * 1000 + wo * 100 + rows);
        const at::Tensor x = test::uniform({wi, rows}, key, -2.0, 2.0), W = test::uniform({wi, wo}, key + 1),
                         b = test::uniform({wo}, key + 2);
        const at::Tensor xf = x.to(at::kFloat), Wf = W.to(at::kFloat), bf = b.to(at::kFloat);
        at::Tensor plain = at::empty({wo, rows}, at::kFloat), fused = at::empty({wo, rows}, at::kFloat);
        kernels::dense_forward<float>(rows, wi, wo, Wf.data_ptr<float>(), wo, 1, bf.data_ptr<float>(),
                                      xf.data_ptr<float>(), rows, plain.data_ptr<float>(), rows);
        kernels::tanh_fast(plain.data_ptr<float>(), plain.data_ptr<float>(), plain.numel());
        kernels::dense_forward<float>(rows, wi, wo, Wf.data_ptr<float>(), wo, 1, bf.data_ptr<float>(),
                                      xf.data_ptr<float>(), rows, fused.data_ptr<float>(), rows,
                                      {E32::kTanh});
        EXPECT_TRUE(at::equal(fused, plain)) << wi << " " << wo << " " << rows;
        // Backward through a tanh layer with outputs h: (W · dz) ⊙ (1 - h²).
        const at::Tensor dz = test::uniform({wo, rows}, key + 3),
                         h = test::uniform({wi, rows}, key + 4, -1, 1);
        at::Tensor dh = at::empty({wi, rows}, at::kDouble);
        kernels::dense_forward<double>(rows, wo, wi, W.data_ptr<double>(), 1, wo, nullptr,
                                       dz.data_ptr<double>(), rows, dh.data_ptr<double>(), rows,
                                       {E64::kTanhBackward, h.data_ptr<double>()});
        EXPECT_LT(test::rel_diff(dh, W.mm(dz) * (1.0 - h * h)), 1e-14) << wi << " " << wo << " " << rows;
      }
  // The fused tanh is float32's; a float64 layer asks for it in vain.
  const at::Tensor x = test::uniform({3, 16}, 1), W = test::uniform({3, 2}, 2);
  at::Tensor out = at::empty({2, 16}, at::kDouble);
  EXPECT_THROW(
      kernels::dense_forward<double>(16, 3, 2, W.data_ptr<double>(), 2, 1, nullptr, x.data_ptr<double>(), 16,
                                     out.data_ptr<double>(), 16, {E64::kTanh}),
      std::exception);
}

// The regression kernels against plain products, on rows scattered over a matrix, with every kind of tail
// (rows, columns and coefficients that do not fill a tile or a vector); a row's values the same alone as
// among others.
TEST(RowKernels, ProductsOverScatteredRowsEqualPlainProducts) {
  const at::Tensor series = test::uniform({40, 70}, 7);
  for (int64_t m : {1, 5, 9})
    for (int64_t n : {3, 8, 16, 37, 70})
      for (int64_t nk : {1, 3, 4, 6}) {
        const uint64_t key = static_cast<uint64_t>(m * 1000 + n * 10 + nk);
        std::vector<const double*> rows;
        std::vector<int64_t> picked;
        for (int64_t i = 0; i < m; ++i) {
          picked.push_back((i * 7 + 3) % 40);
          rows.push_back(series.data_ptr<double>() + picked.back() * 70);
        }
        const at::Tensor X = series.index_select(0, at::tensor(picked)).narrow(1, 0, n);  // [m, n]
        const at::Tensor bT = test::uniform({nk, n}, key), c = test::uniform({m, nk}, key + 1);
        at::Tensor out = at::empty({m, nk}, at::kDouble), outT = at::empty({nk, n}, at::kDouble);
        kernels::row_dots<double>(m, n, rows.data(), nk, bT.data_ptr<double>(), n, 0.5,
                                  out.data_ptr<double>(), nk);
        EXPECT_LT(test::rel_diff(out, 0.5 * X.mm(bT.t())), 1e-14) << m << " " << n << " " << nk;
        outT.fill_(0.25);
        kernels::row_sums_into<double>(m, n, rows.data(), nk, c.data_ptr<double>(), nk,
                                       outT.data_ptr<double>(), n);
        EXPECT_LT(test::rel_diff(outT, 0.25 + c.t().mm(X)), 1e-14) << m << " " << n << " " << nk;
        at::Tensor last = at::empty({1, nk}, at::kDouble);
        kernels::row_dots<double>(1, n, rows.data() + m - 1, nk, bT.data_ptr<double>(), n, 0.5,
                                  last.data_ptr<double>(), nk);
        EXPECT_TRUE(at::equal(last[0], out[m - 1]));
      }
}

// A tile's lane sums are taken a vector's worth at once (rows of 4 x 4 tiles on AVX-512) and a lone row's one
// by one: the same tree, so a row's dot products have the same bits either way, in float32 and float64.
template <class T>
void check_dots_alone_and_in_tiles() {
  const auto dt = c10::CppTypeToScalarType<T>::value;
  const at::Tensor series = test::uniform({24, 90}, 11).to(dt);
  for (int64_t n : {16, 37, 90})
    for (int64_t nk : {4, 8, 9}) {
      const at::Tensor bT = test::uniform({nk, n}, static_cast<uint64_t>(n * 10 + nk)).to(dt);
      std::vector<const T*> rows;
      for (int64_t i = 0; i < 8; ++i)
        rows.push_back(series.template data_ptr<T>() + ((i * 5 + 2) % 24) * 90);
      at::Tensor together = at::empty({8, nk}, dt), alone = at::empty({8, nk}, dt);
      kernels::row_dots<T>(8, n, rows.data(), nk, bT.template data_ptr<T>(), n, T(0.5),
                           together.template data_ptr<T>(), nk);
      for (int64_t i = 0; i < 8; ++i)
        kernels::row_dots<T>(1, n, rows.data() + i, nk, bT.template data_ptr<T>(), n, T(0.5),
                             alone.template data_ptr<T>() + i * nk, nk);
      EXPECT_TRUE(at::equal(together, alone)) << n << " " << nk;
      at::Tensor ref = at::empty({8, nk}, at::kDouble);
      for (int64_t i = 0; i < 8; ++i)
        ref[i] = 0.5 * bT.to(at::kDouble).mv(series[(i * 5 + 2) % 24].narrow(0, 0, n).to(at::kDouble));
      EXPECT_LT(test::rel_diff(together.to(at::kDouble), ref), sizeof(T) == 4 ? 1e-5 : 1e-14);
    }
}

TEST(RowKernels, ARowsDotProductsHaveTheSameBitsAloneAndInATile) {
  check_dots_alone_and_in_tiles<float>();
  check_dots_alone_and_in_tiles<double>();
}

// Sums over rows continued group by group (row_sums_into from zeros) have the bits of one call over all the
// rows, whatever the groups, in float32 and float64; columns that fill no tile or vector included.
template <class T>
void check_sums_in_groups() {
  const auto dt = c10::CppTypeToScalarType<T>::value;
  const at::Tensor series = test::uniform({30, 150}, 13).to(dt);
  const int64_t m = 19;
  std::vector<const T*> rows;
  for (int64_t i = 0; i < m; ++i)
    rows.push_back(series.template data_ptr<T>() + ((i * 7 + 1) % 30) * 150);
  for (int64_t n : {5, 16, 150})
    for (int64_t nk : {1, 4, 6}) {
      const at::Tensor c = test::uniform({m, nk}, static_cast<uint64_t>(n * 10 + nk)).to(dt);
      at::Tensor all = at::zeros({nk, n}, dt);
      kernels::row_sums_into<T>(m, n, rows.data(), nk, c.template data_ptr<T>(), nk,
                                all.template data_ptr<T>(), n);
      at::Tensor X = at::empty({m, n}, at::kDouble);
      for (int64_t i = 0; i < m; ++i)
        X[i] = series[(i * 7 + 1) % 30].narrow(0, 0, n).to(at::kDouble);
      EXPECT_LT(test::rel_diff(all.to(at::kDouble), c.to(at::kDouble).t().mm(X)),
                sizeof(T) == 4 ? 1e-5 : 1e-14);
      for (int64_t group : std::initializer_list<int64_t>{1, 3, 8}) {
        at::Tensor parts = at::zeros({nk, n}, dt);
        for (int64_t i = 0; i < m; i += group)
          kernels::row_sums_into<T>(std::min(group, m - i), n, rows.data() + i, nk,
                                    c.template data_ptr<T>() + i * nk, nk, parts.template data_ptr<T>(), n);
        EXPECT_TRUE(at::equal(all, parts)) << n << " " << nk << " " << group;
      }
    }
}

TEST(RowKernels, SumsOverRowsHaveTheSameBitsContinuedGroupByGroup) {
  check_sums_in_groups<float>();
  check_sums_in_groups<double>();
}

TEST(RowKernels, TheResidualPassGivesTheNllSumsAndGradients) {
  const int64_t m = 7, cols = 21;  // a vector of 8 doubles twice, then 5 columns alone
  const at::Tensor o = test::uniform({m, cols}, 1), Y = test::uniform({m, cols}, 2),
                   scale = test::uniform({cols}, 3, 0.5, 1.5), offset = test::uniform({cols}, 4),
                   psi = test::uniform({cols}, 5, 0.5, 2.0), ipsi = 1.0 / psi;
  std::vector<const double*> y;
  for (int64_t i = 0; i < m; ++i)
    y.push_back(Y.data_ptr<double>() + i * cols);
  const double w = 3.0;
  at::Tensor sq = at::empty({cols}, at::kDouble), dz = at::empty({m, cols}, at::kDouble),
             doff = at::empty({cols}, at::kDouble), dscale = at::empty({cols}, at::kDouble),
             mean = at::empty({m, cols}, at::kDouble);
  kernels::ResidualArgs<double> a;
  a.m = m;
  a.cols = cols;
  a.o = o.data_ptr<double>();
  a.ld_o = cols;
  a.y = y.data();
  a.scale = scale.data_ptr<double>();
  a.offset = offset.data_ptr<double>();
  a.ipsi = ipsi.data_ptr<double>();
  a.weight = w;
  a.sq = sq.data_ptr<double>();
  a.dz = dz.data_ptr<double>();
  a.ld_dz = cols;
  a.doff = doff.data_ptr<double>();
  a.dscale = dscale.data_ptr<double>();
  kernels::residual_pass<double>(a);
  const at::Tensor mn = scale * o + offset, e = mn - Y, g = w * e / psi;
  EXPECT_LT(test::rel_diff(sq, (e * e).sum(0)), 1e-14);
  EXPECT_LT(test::rel_diff(dz, g * scale), 1e-14);
  EXPECT_LT(test::rel_diff(doff, g.sum(0)), 1e-14);
  EXPECT_LT(test::rel_diff(dscale, (g * o).sum(0)), 1e-14);
  // Without scales and offsets (both nullptr): mn = o, dz = g, and doff and dscale are left alone.
  a.scale = a.offset = nullptr;
  doff.fill_(7.0);
  dscale.fill_(7.0);
  kernels::residual_pass<double>(a);
  const at::Tensor e1 = o - Y, g1 = w * e1 / psi;
  EXPECT_LT(test::rel_diff(sq, (e1 * e1).sum(0)), 1e-14);
  EXPECT_LT(test::rel_diff(dz, g1), 1e-14);
  EXPECT_TRUE(doff.eq(7.0).all().item<bool>() && dscale.eq(7.0).all().item<bool>());
  a.scale = scale.data_ptr<double>();
  a.offset = offset.data_ptr<double>();
  a.dz = a.doff = a.dscale = nullptr;
  a.mean = mean.data_ptr<double>();
  a.ld_mean = cols;
  kernels::residual_pass<double>(a);
  EXPECT_LT(test::rel_diff(mean, mn), 1e-15);
  EXPECT_LT(test::rel_diff(sq, (e * e).sum(0)), 1e-14);
}

// The residual pass with the latent drive fused in (identity outputs): it computes z = tran · uᵀ itself and
// du = dzᵀ · tran beside the NLL's sums, and equals the products done apart, in float64 and in float32 (whose
// Σ e² is summed in float32 over runs of rows); asking for data further along the rows changes nothing, and
// groups of rows continued one from another give one pass's bits.
template <class T>
void check_fused_residual(double tol) {
  const int64_t m = 11, cols = 37, D = 5, ld = 45;  // cols: whole vectors, then a tail of single columns
  const auto dt = c10::CppTypeToScalarType<T>::value;
  const at::Tensor tran = test::uniform({m, D}, 1).to(dt), uT = test::uniform({D, ld}, 2).to(dt),
                   Y = test::uniform({m, ld}, 3).to(dt), scale = test::uniform({cols}, 4, 0.5, 1.5).to(dt),
                   offset = test::uniform({cols}, 5).to(dt), psi = test::uniform({cols}, 6, 0.5, 2.0).to(dt),
                   ipsi = 1.0 / psi;
  std::vector<const T*> y;
  for (int64_t i = 0; i < m; ++i)
    y.push_back(Y.template data_ptr<T>() + i * ld);
  const double w = 3.0;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Tensor sq = at::empty({cols}, f64), dz = at::empty({m, cols}, dt), doff = at::empty({cols}, dt),
             dscale = at::empty({cols}, dt), duT = at::full({D, ld}, 7.0, dt);
  kernels::ResidualArgs<T> a;
  a.m = m;
  a.cols = cols;
  a.y = y.data();
  a.scale = scale.template data_ptr<T>();
  a.offset = offset.template data_ptr<T>();
  a.ipsi = ipsi.template data_ptr<T>();
  a.weight = static_cast<T>(w);
  a.sq = sq.data_ptr<double>();
  a.dz = dz.template data_ptr<T>();
  a.ld_dz = cols;
  a.doff = doff.template data_ptr<T>();
  a.dscale = dscale.template data_ptr<T>();
  a.tran = tran.template data_ptr<T>();
  a.D = D;
  a.uT = uT.template data_ptr<T>();
  a.ld_u = ld;
  a.duT = duT.template data_ptr<T>();
  a.ld_du = ld;
  a.ahead = 8;  // further along the rows: asked for, and nothing else changes
  kernels::residual_pass<T>(a);
  const at::Tensor t = tran.to(at::kDouble), u = uT.to(at::kDouble).narrow(1, 0, cols), z = t.mm(u),
                   sc = scale.to(at::kDouble), mn = sc * z + offset.to(at::kDouble),
                   e = mn - Y.to(at::kDouble).narrow(1, 0, cols), g = w * e / psi.to(at::kDouble);
  EXPECT_LT(test::rel_diff(sq, (e * e).sum(0)), tol);
  EXPECT_LT(test::rel_diff(dz.to(at::kDouble), g * sc), tol);
  EXPECT_LT(test::rel_diff(doff.to(at::kDouble), g.sum(0)), tol);
  EXPECT_LT(test::rel_diff(dscale.to(at::kDouble), (g * z).sum(0)), tol);
  EXPECT_LT(test::rel_diff(duT.to(at::kDouble).narrow(1, 0, cols), t.t().mm(g * sc)), tol);
  EXPECT_TRUE(duT.narrow(1, cols, ld - cols).eq(7.0).all().item<bool>()) << "du written beyond the chunk";
  // Without scales and offsets: mn = z, and the gradients are those of scale 1 and offset 0, bit for bit.
  {
    at::Tensor sq1 = at::empty_like(sq), dz1 = at::empty_like(dz), duT1 = at::full({D, ld}, 7.0, dt);
    const at::Tensor one = at::ones({cols}, dt), zero = at::zeros({cols}, dt);
    kernels::ResidualArgs<T> b = a;
    b.scale = b.offset = nullptr;
    b.doff = b.dscale = nullptr;
    b.sq = sq1.data_ptr<double>();
    b.dz = dz1.template data_ptr<T>();
    b.duT = duT1.template data_ptr<T>();
    kernels::residual_pass<T>(b);
    b.scale = one.template data_ptr<T>();
    b.offset = zero.template data_ptr<T>();
    b.doff = doff.template data_ptr<T>();
    b.dscale = dscale.template data_ptr<T>();
    b.sq = sq.data_ptr<double>();
    b.dz = dz.template data_ptr<T>();
    b.duT = duT.template data_ptr<T>();
    kernels::residual_pass<T>(b);
    EXPECT_TRUE(at::equal(sq1, sq) && at::equal(dz1, dz) && at::equal(duT1, duT));
    const at::Tensor e1 = z - Y.to(at::kDouble).narrow(1, 0, cols), g1 = w * e1 / psi.to(at::kDouble);
    EXPECT_LT(test::rel_diff(sq1, (e1 * e1).sum(0)), tol);
    EXPECT_LT(test::rel_diff(duT1.to(at::kDouble).narrow(1, 0, cols), t.t().mm(g1)), tol);
  }
  // Group by group of rows (from multiples of four), each pass continuing the last one's sums: the same bits
  // as one pass over all the rows, with and without scales and offsets.
  for (bool affine : {true, false}) {
    at::Tensor sq2 = at::empty_like(sq), dz2 = at::empty_like(dz), doff2 = at::empty_like(doff),
               dscale2 = at::empty_like(dscale), duT2 = at::full({D, ld}, 7.0, dt);
    kernels::ResidualArgs<T> all = a, part = a;
    if (!affine) all.scale = all.offset = all.doff = all.dscale = nullptr;
    kernels::residual_pass<T>(all);
    part.scale = all.scale;
    part.offset = all.offset;
    part.sq = sq2.data_ptr<double>();
    part.doff = affine ? doff2.template data_ptr<T>() : nullptr;
    part.dscale = affine ? dscale2.template data_ptr<T>() : nullptr;
    part.duT = duT2.template data_ptr<T>();
    for (int64_t g0 : {0, 4, 8}) {
      part.m = std::min<int64_t>(4, m - g0);
      part.y = y.data() + g0;
      part.tran = a.tran + g0 * D;
      part.dz = dz2.template data_ptr<T>() + g0 * cols;
      part.resume = g0 > 0;
      kernels::residual_pass<T>(part);
    }
    EXPECT_TRUE(at::equal(sq2, sq) && at::equal(dz2, dz) && at::equal(duT2, duT)) << affine;
    if (affine) EXPECT_TRUE(at::equal(doff2, doff) && at::equal(dscale2, dscale));
  }
  at::Tensor mean = at::empty({m, cols}, dt);
  a.dz = a.doff = a.dscale = a.duT = nullptr;
  a.mean = mean.template data_ptr<T>();
  a.ld_mean = cols;
  kernels::residual_pass<T>(a);
  EXPECT_LT(test::rel_diff(mean.to(at::kDouble), mn), tol);
}

TEST(RowKernels, TheFusedResidualPassComputesTheLatentDriveAndDu) {
  check_fused_residual<double>(1e-14);
  check_fused_residual<float>(2e-6);
}

// The columns after the last whole vector of a chunk go through the residual pass as a vector padded with
// zeros: each gets the bits it gets inside a whole vector (here the same 37 columns from column 5 on, where
// columns 32 to 36 fill the last vector), and nothing outside the chunk is written (a chunk of the first 35).
template <class T>
void check_residual_tail_bits(bool fused, bool affine, bool step) {
  const int64_t m = 21, cols = 37, D = 3, shift = 5;  // m: a group of 16 rows and 5 more
  const auto dt = c10::CppTypeToScalarType<T>::value;
  const at::Tensor tran = test::uniform({m, D}, 1).to(dt), uT = test::uniform({D, cols}, 2).to(dt),
                   Y = test::uniform({m, cols}, 3).to(dt), o = test::uniform({m, cols}, 4).to(dt),
                   scale = test::uniform({cols}, 5, 0.5, 1.5).to(dt),
                   offset = test::uniform({cols}, 6).to(dt), ipsi = test::uniform({cols}, 7, 0.5, 2.0).to(dt);
  struct Out {
    at::Tensor sq, dz, doff, dscale, duT;
  };
  auto run = [&](int64_t j0, int64_t j1) {
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    Out r{at::full({cols}, 7.0, f64), at::full({m, cols}, 7.0, dt), at::full({cols}, 7.0, dt),
          at::full({cols}, 7.0, dt), at::full({D, cols}, 7.0, dt)};
    std::vector<const T*> y;
    for (int64_t i = 0; i < m; ++i)
      y.push_back(Y.template data_ptr<T>() + i * cols + j0);
    kernels::ResidualArgs<T> a;
    a.m = m;
    a.cols = j1 - j0;
    a.y = y.data();
    a.ipsi = ipsi.template data_ptr<T>() + j0;
    a.weight = T(3);
    a.sq = r.sq.template data_ptr<double>() + j0;
    if (affine) {
      a.scale = scale.template data_ptr<T>() + j0;
      a.offset = offset.template data_ptr<T>() + j0;
    }
    if (step) {
      a.dz = r.dz.template data_ptr<T>() + j0;
      a.ld_dz = cols;
      if (affine) {
        a.doff = r.doff.template data_ptr<T>() + j0;
        a.dscale = r.dscale.template data_ptr<T>() + j0;
      }
    } else {
      a.mean = r.dz.template data_ptr<T>() + j0;
      a.ld_mean = cols;
    }
    if (fused) {
      a.tran = tran.template data_ptr<T>();
      a.D = D;
      a.uT = uT.template data_ptr<T>() + j0;
      a.ld_u = cols;
      if (step) {
        a.duT = r.duT.template data_ptr<T>() + j0;
        a.ld_du = cols;
      }
    } else {
      a.o = o.template data_ptr<T>() + j0;
      a.ld_o = cols;
    }
    // In two calls, the second continuing the first's sums (as the step's groups of rows do).
    kernels::ResidualArgs<T> first = a, second = a;
    first.m = 8;
    second.m = m - 8;
    second.resume = true;
    second.y = y.data() + 8;
    if (fused)
      second.tran = a.tran + 8 * D;
    else
      second.o = a.o + 8 * cols;
    if (step)
      second.dz = a.dz + 8 * cols;
    else
      second.mean = a.mean + 8 * cols;
    kernels::residual_pass<T>(first);
    kernels::residual_pass<T>(second);
    return r;
  };
  const Out whole = run(0, cols), shifted = run(shift, cols), cut = run(0, cols - 2);
  auto same = [&](const at::Tensor& p, const at::Tensor& q, int64_t j0, int64_t j1) {  // bit for bit
    return at::equal(p.narrow(-1, j0, j1 - j0), q.narrow(-1, j0, j1 - j0));
  };
  auto untouched = [&](const Out& r, int64_t j0, int64_t j1) {
    bool ok = true;
    for (const at::Tensor& t : {r.sq, r.dz, r.doff, r.dscale, r.duT})
      ok = ok && t.narrow(-1, j0, j1 - j0).eq(7.0).all().template item<bool>();
    return ok;
  };
  const std::string what = cat(sizeof(T) == 4 ? "float" : "double", fused ? " fused" : "",
                               affine ? " affine" : "", step ? " step" : " forward");
  for (const auto& [r, j0, j1] : {std::tuple<const Out&, int64_t, int64_t>{shifted, shift, cols},
                                  std::tuple<const Out&, int64_t, int64_t>{cut, 0, cols - 2}}) {
    EXPECT_TRUE(same(whole.sq, r.sq, j0, j1) && same(whole.dz, r.dz, j0, j1)) << what << " " << j0;
    if (step && affine)
      EXPECT_TRUE(same(whole.doff, r.doff, j0, j1) && same(whole.dscale, r.dscale, j0, j1))
          << what << " " << j0;
    if (step && fused) EXPECT_TRUE(same(whole.duT, r.duT, j0, j1)) << what << " " << j0;
  }
  EXPECT_TRUE(untouched(shifted, 0, shift) && untouched(cut, cols - 2, cols)) << what;
}

TEST(RowKernels, TheResidualPassesLastColumnsHaveTheBitsTheyHaveInAWholeVector) {
  for (bool fused : {true, false})
    for (bool affine : {true, false})
      for (bool step : {true, false}) {
        check_residual_tail_bits<float>(fused, affine, step);
        check_residual_tail_bits<double>(fused, affine, step);
      }
}

}  // namespace
}  // namespace mslr
