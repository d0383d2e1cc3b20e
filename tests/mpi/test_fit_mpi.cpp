// Multi-rank behaviour of the fitter: the same parameters for any number of ranks, bitwise identical shared
// parameters on every rank, and errors that reach every rank. Run by CTest with 1, 2 and 3 ranks.
#include <gtest/gtest.h>

#include "mpi_env.h"
#include "mslr/core/error.h"
#include "mslr/core/gpu.h"
#include "problem.h"

namespace mslr::test {
namespace {

// Communicators that break the all-reduce on purpose, to show that the tests below catch it.
class Decorated : public Communicator {
 public:
  explicit Decorated(const Communicator& real) : real_(real) {}
  int rank() const override { return real_.rank(); }
  int size() const override { return real_.size(); }
  int local_rank() const override { return real_.local_rank(); }
  int local_size() const override { return real_.local_size(); }
  int node() const override { return real_.node(); }
  std::string backend() const override { return "test"; }
  void all_reduce_max(at::Tensor& t) const override { real_.all_reduce_max(t); }
  void broadcast(at::Tensor& t, int root) const override { real_.broadcast(t, root); }
  at::Tensor gather(const at::Tensor& t, int root) const override { return real_.gather(t, root); }
  void barrier() const override { real_.barrier(); }

 protected:
  const Communicator& real_;
};

class AveragingComm : public Decorated {  // averages instead of summing
 public:
  using Decorated::Decorated;
  void all_reduce_sum(at::Tensor& t) const override {
    real_.all_reduce_sum(t);
    if (t.is_floating_point()) t.div_(size());
  }
};

class CountingComm : public Decorated {  // counts the collectives the fitter makes
 public:
  using Decorated::Decorated;
  void all_reduce_sum(at::Tensor& t) const override {
    ++sums;
    real_.all_reduce_sum(t);
  }
  void all_reduce_max(at::Tensor& t) const override {
    ++maxes;
    real_.all_reduce_max(t);
  }
  mutable int sums = 0, maxes = 0;
};

class SkippingComm : public Decorated {  // rank 1 keeps its own gradient instead of the sum
 public:
  using Decorated::Decorated;
  void all_reduce_sum(at::Tensor& t) const override {
    const at::Tensor mine = t.clone();
    real_.all_reduce_sum(t);
    if (rank() == 1) t.copy_(mine);
  }
};

ProblemConfig small() {
  ProblemConfig c;
  c.subjects = 5;
  c.time_points = 160;
  return c;
}

FitOptions options() {
  FitOptions o;
  o.epochs = 3;
  o.batches = 4;
  o.lr = LrSchedule::parse("0:0.02,2:0.01");
  o.seed = 5;
  o.split.train_fraction = 0.8;
  return o;
}

struct Result {
  at::Tensor shared;
  std::vector<at::Tensor> subjects;
  FitLog log;
};

Result fit(const Communicator& comm, const Problem& p, const FitOptions& o, const FitHooks& hooks = {}) {
  Fitter f(comm, p.spec, o, p.infos);
  f.initialize();
  f.load_data([&](int s) { return p.data[s]; });
  f.run(hooks);
  return {f.state().shared_params.to(at::kDouble), all_subject_params(comm, f, p), f.log()};
}

double rel(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

// The largest relative difference, over every shared and per-subject buffer, between a fit through `comm` and
// the same fit in a world of one rank (computed on rank 0 and broadcast).
double difference_from_one_rank(const Communicator& comm, const Problem& p) {
  const Result dist = fit(comm, p, options());
  at::Tensor worst = at::zeros({1}, at::kDouble);
  if (world().rank() == 0) {
    LocalCommunicator one;
    const Result ref = fit(one, p, options());
    double w = rel(dist.shared, ref.shared);
    for (size_t s = 0; s < ref.subjects.size(); ++s)
      w = std::max(w, rel(dist.subjects[s], ref.subjects[s]));
    // The logged figures agree as well.
    for (size_t e = 0; e < ref.log.size(); ++e)
      w = std::max(w, std::abs(dist.log.objective[e] / ref.log.objective[e] - 1));
    worst.fill_(w);
  }
  world().broadcast(worst, 0);
  return worst.item<double>();
}

TEST(FitMpi, SameParametersForAnyNumberOfRanks) {
  const Problem p = make_problem(small());
  const double d = difference_from_one_rank(world(), p);
  if (world().rank() == 0)
    std::printf("  %d rank(s): largest relative difference from 1 rank %.3g\n", world().size(), d);
  // Bitwise: each subject's contribution is computed independently of where it lives and added in global
  // subject order (same threads per rank).
  EXPECT_EQ(d, 0.0);
}

TEST(FitMpi, InvarianceTestCatchesAveragedOrSkippedReductions) {
  if (world().size() < 2) GTEST_SKIP() << "needs 2 or more ranks";
  const Problem p = make_problem(small());
  EXPECT_GT(difference_from_one_rank(AveragingComm(world()), p), 1e-3);
  EXPECT_GT(difference_from_one_rank(SkippingComm(world()), p), 1e-3);
}

TEST(FitMpi, OneAllReducePerStepAndOneLogReductionPerReport) {
  const Problem p = make_problem(small());
  const FitOptions o = options();  // 3 epochs x 4 minibatches
  CountingComm comm(world());
  Fitter f(comm, p.spec, o, p.infos);
  f.initialize();
  f.load_data([&](int s) { return p.data[s]; });
  const int before_sums = comm.sums, before_maxes = comm.maxes;
  FitHooks hooks;
  hooks.report_every = 2;  // reports after epochs 2 and 3 (the end)
  f.run(hooks);
  // 12 steps, each ONE all-reduce (the shared gradient and the stop flag together), plus one reduction of the
  // per-subject NLLs per report (not per subject, not per step) and one max of the memory figures per report.
  EXPECT_EQ(comm.sums - before_sums, 12 + 2);
  EXPECT_EQ(comm.maxes - before_maxes, 2);
}

// Counts, over ranks and epochs, the epochs after which this rank's shared parameters differ in any bit from
// rank 0's.
int64_t epochs_with_diverged_shared(const Communicator& comm, const Problem& p) {
  int64_t diverged = 0;
  FitHooks hooks;
  hooks.checkpoint_after = [](int) { return true; };
  hooks.on_checkpoint = [&](const FitState& s) {
    at::Tensor root = s.shared_params.clone();
    world().broadcast(root, 0);
    diverged += at::equal(root, s.shared_params) ? 0 : 1;
  };
  fit(comm, p, options(), hooks);
  return world().sum(diverged);
}

TEST(FitMpi, SharedParametersBitwiseIdenticalOnEveryRankAfterEveryEpoch) {
  const Problem p = make_problem(small());
  EXPECT_EQ(epochs_with_diverged_shared(world(), p), 0);
  if (world().size() >= 2) EXPECT_GT(epochs_with_diverged_shared(SkippingComm(world()), p), 0);
}

// Runs f on every rank, expects an Error on every rank, and returns this rank's message.
std::string error_on_every_rank(const std::function<void()>& f) {
  std::string msg;
  try {
    f();
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_EQ(world().sum(msg.empty() ? 0 : 1), world().size()) << "some rank did not fail";
  return msg;
}

// The same message on every rank (bad input every rank can see), returned.
std::string same_error_on_every_rank(const std::function<void()>& f) {
  const std::string msg = error_on_every_rank(f);
  const std::string root = world().broadcast_string(msg, 0);
  EXPECT_EQ(world().sum(msg == root ? 1 : 0), world().size()) << "rank " << world().rank() << ": " << msg;
  return msg;
}

TEST(FitMpi, BadInputFailsOnEveryRankWithOneMessage) {
  const Problem p = make_problem(small());
  FitOptions o = options();
  o.batches = 1000;
  EXPECT_EQ(same_error_on_every_rank([&] { Fitter(world(), p.spec, o, p.infos); }),
            "subject 'subject0' has 127 training samples, fewer than the 1000 minibatches asked for (lower "
            "--batches "
            "or give it more training data)");
  o = options();
  o.subjects = {1, 9};
  EXPECT_EQ(same_error_on_every_rank([&] { Fitter(world(), p.spec, o, p.infos); }),
            "subject index 9 is out of range: the data has 5 subjects (0..4)");
  EXPECT_EQ(same_error_on_every_rank([&] { Fitter(world(), p.spec, options(), {}); }),
            "there are no subjects to fit");
  o = options();
  o.gpus_per_rank = 1;
  // Without GPUs here: refused for the LibTorch, or for the devices a CUDA LibTorch finds.
  EXPECT_NE(same_error_on_every_rank([&] { Fitter(world(), p.spec, o, p.infos); })
                .find(gpu::torch_has_cuda() ? "--gpus-per-rank 1 with "
                                            : "--gpus-per-rank 1: this mslr was built against a LibTorch "
                                              "without CUDA"),
            std::string::npos);
}

TEST(FitMpi, TheRanksOfOneNodeShareItsNumber) {
  // mpirun starts the ranks of these tests on one node: each is its node's number, the world rank of the
  // node's first rank.
  EXPECT_EQ(world().node(), 0);
  EXPECT_EQ(world().sum(world().node() == world().rank() - world().local_rank() ? 1 : 0), world().size());
}

TEST(FitMpi, AnErrorOnOneRankReachesAll) {
  const Problem p = make_problem(small());
  Fitter f(world(), p.spec, options(), p.infos);
  f.initialize();
  const int owner = f.placement().rank[2];
  const std::string msg = error_on_every_rank([&] {
    f.load_data([&](int s) -> SubjectData {
      if (s == 2) fail("cannot read subject2");
      return p.data[s];
    });
  });
  // The owner says what went wrong; every other rank says where.
  EXPECT_EQ(msg,
            world().rank() == owner ? "cannot read subject2" : cat("rank ", owner, ": cannot read subject2"));
}

}  // namespace
}  // namespace mslr::test
