// The distributed multi-subject fitter (docs/DESIGN.md §3-§4): the C++ counterpart of the seed's
// MultiSubjectRegressionFitter, with subjects spread over MPI ranks and the devices of each rank.
//
// Every rank constructs the Fitter with the same arguments (it is collective). Each rank then holds its own
// subjects' parameters, data and Adam state, and a replica of the shared parameters per device. A step runs
// forward/backward for the rank's minibatches, sums the shared gradient over devices and then over ranks with
// ONE all-reduce, and takes identical Adam steps on every replica.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"
#include "mslr/comm/placement.h"
#include "mslr/data/subject_data.h"
#include "mslr/fit/adam.h"
#include "mslr/fit/schedule.h"
#include "mslr/model/fit_state.h"
#include "mslr/model/subject_model.h"

namespace mslr {

// How a step computes its gradients: the batched step (model/batched.h: CPU, the model classes it covers) or
// autograd over each subject's forward (every model, every device). kAuto takes the batched step where it
// applies.
enum class StepKind { kAuto, kBatched, kAutograd };
StepKind parse_step_kind(const std::string& text);  // "auto", "batched", "autograd"; throws naming the value

struct FitOptions {
  int epochs = 100;
  int batches = 10;
  LrSchedule lr;
  AdamOptions adam;
  double min_var = 1e-3;
  uint64_t seed = 0;
  Split split;                // which time points are training data
  std::vector<int> subjects;  // global indices to fit; empty = all
  int gpus_per_rank = 0;      // 0 = CPU
  // GPU ranks: whole subjects on their GPU (true), in page-locked host memory with each minibatch copied on a
  // copy stream while the previous step computes (false), or the first when the device's subjects take at
  // most kDeviceDataShare of its free memory (nullopt, the default).
  std::optional<bool> data_on_device;
  // GPU ranks: LibTorch's deterministic algorithms (gpu::set_deterministic), so that a fit gives the same
  // numbers on any number of ranks there too.
  bool deterministic = true;
  // Placement: the cost of a subject beyond its samples × variables, in the same units (the step's fixed work
  // per subject: its passes and, on a GPU, its kernel launches). < 0: kSubjectCostCpu on CPU ranks,
  // kSubjectCostGpu on GPU ranks.
  double subject_fixed_cost = -1;
  at::ScalarType dtype = at::kFloat;
  StepKind step = StepKind::kAuto;
  // Kinds of parameters held at their starting values (see freeze_kind): no Adam step, and frozen shared
  // parts are not all-reduced. "shared" stands for every shared parameter.
  std::set<std::string> freeze;

  // Throws naming the option, the value and the rule.
  void validate() const;
};

// The kind --freeze calls a parameter, from its name: p-predictors, u-predictors, shared-mapping, mapping,
// owned-modes, psi, offsets, scales, slopes or direct.
std::string freeze_kind(const std::string& param_name);
// Every kind --freeze takes, comma-separated (for messages and help).
extern const char* const kFreezeKinds;

// Values a fit starts from instead of its seeded ones (mslr fit --init-from): the shared parameters when
// defined, and the parameters of the subjects listed, by global index. Adam starts afresh.
struct StartingValues {
  at::Tensor shared;
  std::map<int, at::Tensor> subjects;
};

// Figures the fitter reduces at each report (every rank receives them; rank 0 prints).
struct FitReport {
  size_t first_new = 0;           // log entries [first_new, log.size()) are new since the last report
  double seconds_per_epoch = 0;   // mean over the new entries
  std::vector<long long> memory;  // bytes in use, max over ranks, per device index (resident memory on CPU)
};

struct FitHooks {
  // Called on every rank after the log has been reduced: every `report_every` epochs and at the end.
  std::function<void(const FitLog&, const FitReport&)> on_report;
  int report_every = 1;
  // Asked on every rank after each epoch; must give the same answer on every rank.
  std::function<bool(int completed_epochs)> checkpoint_after;
  // Called on every rank with this rank's state (collective writers write it together).
  std::function<void(const FitState&)> on_checkpoint;
  // Polled on every rank at every minibatch; ranks agree through the step's all-reduce (no extra collective).
  std::function<bool()> stop_requested;
};

class Fitter {
 public:
  Fitter(const Communicator& comm, ModelSpec spec, FitOptions options, std::vector<SubjectInfo> subjects);
  ~Fitter();

  const Placement& placement() const { return placement_; }
  const std::vector<SubjectInfo>& subjects() const { return infos_; }
  // Global indices of this rank's subjects, ascending.
  std::vector<int> local_subjects() const;
  const SharedModules& shared() const { return *shared_; }
  const SubjectModel& model(int subject) const;  // a local subject's model
  std::vector<at::Device> devices() const;
  std::string describe() const;  // devices, data residency, dtype, step: for the rank-0 log
  // True when every device of this rank takes the batched step (known after construction).
  bool batched() const;

  // Starts from the initial values drawn from options.seed, or from a saved state (this rank's subjects must
  // be in it). Exactly one of these before run().
  void initialize(const StartingValues& from = {});
  void restore(const FitState& state);
  // Loads the data of this rank's fitted subjects; `load(i)` is called for each of them, on this rank only.
  void load_data(const std::function<SubjectData(int)>& load);

  // Runs until options.epochs epochs are complete or a stop is agreed. Returns true when it stopped early.
  // Throws DivergedError on every rank, at the same step, when a minibatch's NLL or gradient is not finite on
  // any rank; it is checked before every report and checkpoint, so nothing non-finite is logged or saved.
  bool run(const FitHooks& hooks);

  // This rank's state now (host copies).
  FitState state() const;
  // For a local fitted subject: the modes its model uses that come from its data, "p.<group>" [d_in, k] and
  // "u.<group>" [d_out, k] (predicted from its properties, or given), and the data it holds (host tensors).
  // For checkpoints.
  std::map<std::string, at::Tensor> data_modes(int subject) const;
  SubjectData held_data(int subject) const;
  const FitLog& log() const;

 private:
  struct Impl;
  // Declared first so that it is destroyed last: the subject models and the batched step in impl_ refer to
  // it.
  std::unique_ptr<SharedModules> shared_;
  std::unique_ptr<Impl> impl_;
  Placement placement_;
  std::vector<SubjectInfo> infos_;
};

// The share of a GPU's free memory that data_on_device = nullopt lets the subjects' data take (the rest is
// for the model, its activations and LibTorch's caching allocator).
constexpr double kDeviceDataShare = 0.75;

// The fixed part of a subject's placement cost, in sample × variable units. CPU: measured with
// `mslr_bench_step --fixed-cost 1` (a step of 64 tiny subjects against one of a large one: ~16 µs per subject
// and step beyond its samples × variables at ~5.5 ns each, 2.8e3-3.3e3 units, on the development machine).
// GPU: an estimate, not yet measured: ~100 kernel launches per subject and step of ~5 µs each against ~1e-11 s
// per sample × variable at a GPU's memory bandwidth.
constexpr double kSubjectCostCpu = 3.0e3;
constexpr double kSubjectCostGpu = 5.0e7;

// Placement cost of a subject: its sample pairs in `range` × the variables of all the groups the model reads,
// plus `fixed`.
double subject_cost(const ModelSpec& spec, const SubjectInfo& info, const TimeRanges& range,
                    double fixed = 0);

// The times of a subject's training samples.
at::Tensor training_times(const SubjectInfo& info, const Split& split);

// The devices of this rank: `gpus_per_rank` CUDA devices numbered from the node-local rank, or the CPU when
// 0. Collective. Throws (the same message on every rank) when a node has fewer GPUs than its ranks ask for,
// or when two ranks of a node (or two devices of one rank) would be given one physical GPU.
std::vector<at::Device> rank_devices(const Communicator& comm, int gpus_per_rank);

// One GPU a rank would use: the rank, its node (Communicator::node), the device's index and its PCI bus id.
struct GpuSlot {
  int rank = 0, node = 0, device = 0;
  std::string bus;
};
// "" when no two slots are one physical GPU (one node, one bus id; an unknown bus id "" is never a
// match); otherwise a message naming both and what to check.
std::string shared_gpu(const std::vector<GpuSlot>& slots);

// The shape a subject model is built for, from a subject's description.
SubjectShape shape_of(const SubjectInfo& info);

}  // namespace mslr
