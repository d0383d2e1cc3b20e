// The fitter against a plain reference loop written here (separate parameter tensors, unbatched predictors,
// torch::optim::Adam, the NLL in plain ops), Adam's reset on a rate change, recovery of a known model, and
// the per-rank thread limit.
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/optim/adam.h>

#include <chrono>

#include "mslr/core/system.h"
#include "mslr/fit/fitter.h"
#include "mslr/fit/predict.h"
#include "problem.h"
#include "test_util.h"

namespace mslr {
namespace {

// The seed's fitting loop, written plainly.
struct Reference {
  const test::Problem& p;
  FitOptions o;
  SharedModules shared;
  std::vector<std::unique_ptr<SubjectModel>> models;
  std::vector<at::Tensor> shared_leaves;
  std::vector<std::vector<at::Tensor>> subject_leaves;
  std::unique_ptr<torch::optim::Adam> adam;

  Reference(const test::Problem& problem, const FitOptions& options)
      : p(problem), o(options), shared(problem.spec, {{"neurons", 3}}) {
    // One leaf tensor per parameter, cut from the same starting values the fitter draws.
    auto leaves = [](const ParamLayout& l, const at::Tensor& flat) {
      std::vector<at::Tensor> out;
      for (const auto& v : l.views(flat))
        out.push_back(v.clone().requires_grad_());
      return out;
    };
    shared_leaves = leaves(shared.layout(), shared.initial_values(o.seed, at::kDouble));
    for (const auto& info : p.infos) {
      models.push_back(std::make_unique<SubjectModel>(shared, shape_of(info), info.name));
      subject_leaves.push_back(leaves(
          models.back()->layout(), models.back()->initial_values(o.seed, hash_name(info.name), at::kDouble)));
    }
    new_adam(o.lr.at(0));
  }

  void new_adam(double lr) {
    std::vector<at::Tensor> all = shared_leaves;
    for (const auto& s : subject_leaves)
      all.insert(all.end(), s.begin(), s.end());
    adam = std::make_unique<torch::optim::Adam>(all, torch::optim::AdamOptions(lr)
                                                         .betas({o.adam.beta1, o.adam.beta2})
                                                         .eps(o.adam.eps)
                                                         .weight_decay(o.adam.weight_decay));
  }

  void set_lr_keeping_state(double lr) {
    static_cast<torch::optim::AdamOptions&>(adam->param_groups()[0].options()).lr(lr);
  }

  void epoch(int e) {
    std::vector<at::Tensor> order;
    for (const auto& info : p.infos) {
      const at::Tensor t = training_times(info, o.split);
      const auto perm =
          Rng(o.seed, {kRngMinibatch, hash_name(info.name), static_cast<uint64_t>(e)}).permutation(t.numel());
      order.push_back(t.index_select(0, at::tensor(perm, at::kLong)));
    }
    for (int b = 0; b < o.batches; ++b) {
      adam->zero_grad();
      at::Tensor objective = at::zeros({}, at::kDouble);
      for (size_t s = 0; s < models.size(); ++s) {
        const SubjectModel& m = *models[s];
        const int64_t n = order[s].numel(), bs = n / o.batches;
        const at::Tensor t = order[s].narrow(0, b * bs, bs);
        const ParamViews v{subject_leaves[s], shared_leaves};
        const auto& d = p.data[s];
        const ModeSet modes = m.predict_modes({{"neurons", d.props.at("neurons").to(at::kDouble)}}, v);
        const at::Tensor stim = d.groups.at("stim").to(at::kDouble),
                         x = d.groups.at("neurons").to(at::kDouble);
        const auto mn = m.forward({stim.index_select(0, t - 1), x.index_select(0, t - 1)}, modes, v);
        objective =
            objective + (static_cast<double>(n) / bs) * m.nll_reference({x.index_select(0, t)}, mn, v);
      }
      objective.backward();
      adam->step();
      at::NoGradGuard no_grad;
      for (size_t s = 0; s < models.size(); ++s)
        subject_leaves[s][models[s]->psi_index(0)].clamp_min_(o.min_var);
    }
  }

  at::Tensor shared_flat() const {
    std::vector<at::Tensor> f;
    for (const auto& l : shared_leaves)
      f.push_back(l.detach().reshape({-1}));
    return at::cat(f);
  }
  at::Tensor subject_flat(size_t s) const {
    std::vector<at::Tensor> f;
    for (const auto& l : subject_leaves[s])
      f.push_back(l.detach().reshape({-1}));
    return at::cat(f);
  }
};

test::Problem two_subjects() {
  test::ProblemConfig c;
  c.subjects = 2;
  c.time_points = 80;
  return test::make_problem(c);
}

FitOptions float64_options() {
  FitOptions o;
  o.epochs = 1;
  o.batches = 3;
  o.lr = LrSchedule(0.05);
  o.seed = 9;
  o.split.train_fraction = 0.8;
  o.min_var = 0.9;  // psi starts at 1 and falls below 0.9 within these steps: the clamp acts
  o.adam.weight_decay = 0.01;
  o.adam.beta1 = 0.85;
  o.dtype = at::kDouble;
  return o;
}

std::unique_ptr<Fitter> run_fit(const LocalCommunicator& comm, const test::Problem& p, const FitOptions& o) {
  auto f = std::make_unique<Fitter>(comm, p.spec, o, p.infos);
  f->initialize();
  f->load_data([&](int s) { return p.data[s]; });
  f->run({});
  return f;
}

class FitterStep : public ::testing::TestWithParam<StepKind> {};

}  // namespace

void PrintTo(StepKind k, std::ostream* os) {
  *os << (k == StepKind::kBatched ? "batched" : k == StepKind::kAutograd ? "autograd" : "auto");
}

namespace {

TEST_P(FitterStep, MatchesThePlainReferenceLoopAfterThreeSteps) {
  const test::Problem p = two_subjects();
  FitOptions o = float64_options();
  o.step = GetParam();
  LocalCommunicator one;
  const auto f = run_fit(one, p, o);
  EXPECT_EQ(f->batched(), o.step != StepKind::kAutograd);  // the test model is one the batched step covers
  Reference ref(p, o);
  ref.epoch(0);
  const FitState st = f->state();
  EXPECT_LT(test::rel_diff(st.shared_params, ref.shared_flat()), 1e-9);
  for (size_t s = 0; s < 2; ++s)
    EXPECT_LT(test::rel_diff(st.subjects[s].params, ref.subject_flat(s)), 1e-9) << s;
  // The clamp held psi at min_var somewhere, and the parameters moved.
  const auto& m = f->model(0);
  EXPECT_DOUBLE_EQ(m.layout().view(st.subjects[0].params, m.psi_index(0)).min().item<double>(), o.min_var);
  EXPECT_GT((st.shared_params - p.true_shared).abs().max().item<double>(), 0.0);
  EXPECT_GT(test::rel_diff(st.shared_params, f->shared().initial_values(o.seed, at::kDouble)), 1e-3);
}

TEST_P(FitterStep, StopsAtTheStepWhereTheFitDivergesBeforeLoggingIt) {
  const test::Problem p = two_subjects();
  FitOptions o = float64_options();
  o.dtype = at::kFloat;
  o.step = GetParam();
  o.epochs = 4;
  o.lr = LrSchedule::parse("0:0.01,1:1e30");  // the second epoch sends every parameter to overflow
  LocalCommunicator one;
  Fitter f(one, p.spec, o, p.infos);
  f.initialize();
  f.load_data([&](int s) { return p.data[s]; });
  int checkpoints = 0;
  FitHooks hooks;
  hooks.checkpoint_after = [](int) { return true; };
  hooks.on_checkpoint = [&](const FitState& st) {
    ++checkpoints;
    EXPECT_TRUE(at::isfinite(st.shared_params).all().item<bool>());
  };
  try {
    f.run(hooks);
    ADD_FAILURE() << "the fit did not diverge";
  } catch (const DivergedError& e) {
    EXPECT_NE(std::string(e.what()).find("the fit diverged at epoch 2, minibatch "), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("subject '" + p.infos[0].name + "'"), std::string::npos) << e.what();
  }
  // The first epoch was logged and checkpointed; nothing after it.
  ASSERT_EQ(f.log().size(), 1u);
  EXPECT_TRUE(std::isfinite(f.log().objective[0]));
  EXPECT_EQ(checkpoints, 1);
}

INSTANTIATE_TEST_SUITE_P(Steps, FitterStep, ::testing::Values(StepKind::kBatched, StepKind::kAutograd),
                         [](const auto& info) {
                           return info.param == StepKind::kBatched ? "batched" : "autograd";
                         });

TEST(Fitter, StepKindsAndWhatTheBatchedStepDoesNotCover) {
  EXPECT_EQ(parse_step_kind("auto"), StepKind::kAuto);
  EXPECT_EQ(parse_step_kind("batched"), StepKind::kBatched);
  EXPECT_EQ(parse_step_kind("autograd"), StepKind::kAutograd);
  EXPECT_EQ(test::error_of([] { parse_step_kind("fast"); }),
            "step must be auto, batched or autograd, got 'fast'");
  // A model the batched step does not cover: auto falls back to autograd and says why; batched refuses.
  test::Problem p = two_subjects();
  p.spec.mapping = parse_mapping("linear:6");
  FitOptions o = float64_options();
  LocalCommunicator one;
  const auto f = run_fit(one, p, o);
  EXPECT_FALSE(f->batched());
  EXPECT_NE(f->describe().find("autograd step (the batched step does not cover a linear mapping)"),
            std::string::npos)
      << f->describe();
  o.step = StepKind::kBatched;
  EXPECT_EQ(test::error_of([&] { Fitter(one, p.spec, o, p.infos); }),
            "--step batched: the batched step does not cover a linear mapping; use --step auto or autograd");
}

TEST(Fitter, TheBatchedStepGivesTheSameBitsForAnyThreadCount) {
  const test::Problem p = two_subjects();
  FitOptions o = float64_options();
  o.dtype = at::kFloat;
  o.epochs = 2;
  LocalCommunicator one;
  const int threads = at::get_num_threads();
  limit_threads(1);
  const FitState a = run_fit(one, p, o)->state();
  limit_threads(2);
  const FitState b = run_fit(one, p, o)->state();
  limit_threads(threads);
  EXPECT_TRUE(a.shared_params.equal(b.shared_params));
  for (size_t s = 0; s < a.subjects.size(); ++s)
    EXPECT_TRUE(a.subjects[s].params.equal(b.subjects[s].params)) << s;
  EXPECT_EQ(a.log.objective, b.log.objective);
}

TEST(Fitter, ResetsAdamWhenTheLearningRateChanges) {
  const test::Problem p = two_subjects();
  FitOptions o = float64_options();
  o.epochs = 2;
  o.batches = 2;
  o.lr = LrSchedule::parse("0:0.05,1:0.02");
  LocalCommunicator one;
  const at::Tensor fitted = run_fit(one, p, o)->state().shared_params;
  Reference reset(p, o), kept(p, o);
  reset.epoch(0);
  reset.new_adam(0.02);  // what the seed does: a new optimiser at the new rate
  reset.epoch(1);
  kept.epoch(0);
  kept.set_lr_keeping_state(0.02);
  kept.epoch(1);
  EXPECT_LT(test::rel_diff(fitted, reset.shared_flat()), 1e-6);
  EXPECT_GT(test::rel_diff(fitted, kept.shared_flat()), 1e-4);  // the difference the reset makes is visible
}

TEST(Fitter, LogHoldsEpochMeansThatSumToTheObjective) {
  const test::Problem p = two_subjects();
  FitOptions o = float64_options();
  o.epochs = 3;
  LocalCommunicator one;
  std::vector<size_t> reported;
  auto f = std::make_unique<Fitter>(one, p.spec, o, p.infos);
  f->initialize();
  f->load_data([&](int s) { return p.data[s]; });
  FitHooks hooks;
  hooks.report_every = 2;
  hooks.on_report = [&](const FitLog& log, const FitReport& r) {
    reported.push_back(log.size() - r.first_new);
  };
  f->run(hooks);
  const FitLog& log = f->log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(reported, (std::vector<size_t>{2, 1}));  // every 2 epochs, and at the end
  EXPECT_EQ(log.epoch, (std::vector<int>{0, 1, 2}));
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(log.objective[e], log.subject_nll[e][0] + log.subject_nll[e][1], 1e-9);
    EXPECT_GT(log.elapsed[e], 0.0);
  }
  EXPECT_LT(log.objective[2], log.objective[0]);
}

TEST(Fitter, RecoversAKnownModel) {
  test::ProblemConfig c;
  c.subjects = 3;
  c.time_points = 2000;
  c.neurons_min = 30;
  c.neurons_max = 50;
  const test::Problem p = test::make_problem(c);
  FitOptions o;
  o.epochs = 150;
  o.batches = 10;
  o.lr = LrSchedule::parse("0:0.02,100:0.005");
  o.split.train_fraction = 0.8;
  o.min_var = 1e-3;
  LocalCommunicator one;
  const auto f = run_fit(one, p, o);
  const FitState st = f->state();
  double fitted_nll = 0, true_nll = 0;
  for (int s = 0; s < c.subjects; ++s) {
    const auto& m = f->model(s);
    const at::Tensor test_times = p.infos[s].times_in(o.split.test(c.time_points));
    fitted_nll += predict_subject(m, st.subjects[s].params, st.shared_params, p.data[s], test_times, 64).nll;
    true_nll += predict_subject(m, p.true_subject[s].to(at::kFloat), p.true_shared.to(at::kFloat), p.data[s],
                                test_times, 64)
                    .nll;
  }
  std::printf("  held-out NLL: fitted %.2f, true model %.2f (%.2f%%)\n", fitted_nll, true_nll,
              100 * (fitted_nll / true_nll - 1));
  EXPECT_LT(std::abs(fitted_nll - true_nll), 0.02 * std::abs(true_nll));
}

TEST(Threads, LimitAppliesToLibTorchAndOpenBlas) {
  limit_threads(2, 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  if (openblas_threads() >= 0) EXPECT_EQ(openblas_threads(), 2);
  limit_threads(2, 5);  // OpenBLAS never gets more than the rank's threads
  if (openblas_threads() >= 0) EXPECT_EQ(openblas_threads(), 2);
  limit_threads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  if (openblas_threads() >= 0) EXPECT_EQ(openblas_threads(), 1);
  // With one thread in both pools, a large matrix product uses one core: CPU time ≈ wall time.
  const at::Tensor a = at::rand({1500, 1500});
  rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i)
    (void)a.mm(a).sum().item<float>();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  getrusage(RUSAGE_SELF, &r1);
  auto sec = [](const timeval& t) { return t.tv_sec + 1e-6 * t.tv_usec; };
  const double cpu = sec(r1.ru_utime) - sec(r0.ru_utime) + sec(r1.ru_stime) - sec(r0.ru_stime);
  std::printf("  1 thread: cpu %.3f s / wall %.3f s\n", cpu, wall);
  EXPECT_LT(cpu / wall, 1.3);
}

// Two ranks of one node given one physical GPU (the same PCI bus id, whatever their device numbers) are
// named; the same bus id on different nodes, and unknown ids, are not a clash.
TEST(RankDevices, TwoRanksOnOneGpuOfOneNodeAreNamed) {
  const std::vector<GpuSlot> fine = {{0, 0, 0, "0000:3b:00.0"},
                                     {1, 0, 1, "0000:5e:00.0"},
                                     {2, 2, 0, "0000:3b:00.0"},
                                     {3, 2, 0, ""},
                                     {4, 2, 1, ""}};
  EXPECT_EQ(shared_gpu(fine), "");
  const std::vector<GpuSlot> clash = {
      {0, 0, 0, "0000:3b:00.0"}, {1, 0, 0, "0000:5e:00.0"}, {2, 0, 1, "0000:3b:00.0"}};
  EXPECT_EQ(
      shared_gpu(clash),
      "ranks 0 and 2 of one node would share the GPU at PCI bus 0000:3b:00.0 (cuda:0 of rank 0, cuda:1 of "
      "rank 2): give each rank its own GPUs (check CUDA_VISIBLE_DEVICES, --gpus-per-rank and the "
      "launcher's GPU binding, e.g. srun --gpus-per-task)");
}

TEST(Placement, ASubjectCostsItsSamplesTimesVariablesAndAFixedPart) {
  const test::Problem p = two_subjects();
  const SubjectInfo& info = p.infos[0];
  const TimeRanges all{};
  const double plain = subject_cost(p.spec, info, all);
  double vars = 0;
  for (const auto& g : p.spec.groups())
    vars += static_cast<double>(info.widths.at(g));
  EXPECT_EQ(plain, static_cast<double>(info.times_in(all).numel()) * vars);
  EXPECT_EQ(subject_cost(p.spec, info, all, 1234.0), plain + 1234.0);
}

}  // namespace
}  // namespace mslr
