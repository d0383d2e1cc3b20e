#include "mslr/fit/fitter.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "mslr/core/error.h"
#include "mslr/core/fault.h"
#include "mslr/core/gpu.h"
#include "mslr/core/rng.h"
#include "mslr/core/system.h"
#include "mslr/model/batched.h"

namespace mslr {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

struct Fitter::Impl {
  struct Local {
    int index = -1;
    int device = 0;
    bool fitted = false;
    std::unique_ptr<SubjectModel> model;
    int64_t offset = 0;                        // into the device's subject buffer (fitted subjects)
    int slot = -1;                             // position among the device's fitted subjects
    SubjectState frozen;                       // parameters of a subject that is held but not fitted
    std::map<std::string, at::Tensor> groups;  // [T, d] on the data device (host or device)
    at::Tensor train_times;                    // [n] int64, host
    at::Tensor epoch_times;                    // [n] this epoch's order, on the data device
    int64_t batch_size = 0;
    double weight = 0.0;  // n_s / batch_s
    std::vector<at::Tensor>
        prepared;  // per mode slot: the prepared properties of predicted ones, on the device
    std::map<std::string, at::Tensor> props;  // [d, n_props] host
    std::map<std::string, at::Tensor> given;  // given modes from its data, host
    // Host data on a GPU: a minibatch's rows, per buffer set (0, 1) and per input (x, at t-1) and output (y,
    // at t), gathered into page-locked host buffers and copied to device buffers [batch_size, d].
    std::vector<at::Tensor> host_x[2], host_y[2], dev_x[2], dev_y[2];
  };
  struct Device {
    at::Device device{at::kCPU};
    at::Tensor shared_flat;  // [n_shared], the replica of the shared parameters (no autograd)
    AdamState shared_adam;
    at::Tensor subject_flat;  // leaf [sum of fitted subjects' numel], or undefined
    AdamState subject_adam;
    at::Tensor lower;                 // lower bounds: min_var at psi entries, -inf elsewhere
    std::vector<Span> subject_train;  // the parts of subject_flat that are not frozen
    bool subject_frozen_some = false;
    std::vector<int> fitted;  // positions in `local`
    at::Tensor nll_acc;       // [fitted.size()] double, sums over the epoch's minibatches
    at::Tensor shared_grad;   // [n_shared] the step's reduced shared gradient, in the replica's dtype
    // The batched step, when this device takes it: its model and the buffers it writes, made once by run().
    std::unique_ptr<BatchedModel> batched;
    at::Tensor subject_grad;  // [numel of subject_flat]
    at::Tensor shared_grads;  // [fitted, n_shared]: each fitted subject's own contribution
    std::vector<at::Tensor> param_views, grad_views, shared_grad_views;  // per fitted subject (slot)
    Minibatch minibatch;
    std::vector<double> nll;  // per slot, the step's weighted NLL
    // A GPU whose subjects' data stay in host memory: minibatches staged a step ahead on a copy stream.
    bool data_resident = true;
    std::string residency;  // how and why, for the log
    std::unique_ptr<gpu::CopyStream> copies;
    struct Staged {
      int epoch = -1, batch = -1;
    } staged[2];
    // Per slot: 1 where the step's NLL or one of the subject's gradients is not finite (this step, last
    // step).
    at::Tensor bad_now, bad_prev;
  };
  struct Pending {  // an epoch whose figures are still on the devices
    int epoch;
    double lr, elapsed;
    std::vector<at::Tensor> acc;  // per device
  };

  const Communicator& comm;
  FitOptions opt;
  std::vector<Local> local;
  std::vector<Device> dev;
  at::Tensor reduce_buf;  // [n_reduce + 2] float64 on device 0: the shared gradient of the parts not
                          // frozen, the stop flag, and the count of subjects whose numbers were not finite
  std::vector<Span> shared_train;  // the parts of the shared buffer that are not frozen
  int64_t n_reduce = 0;            // their total size
  std::vector<int> order;          // positions in `local` of the fitted subjects, in global subject order
  gpu::LateRead flag_prev;         // the previous step's reduced flags: [stop, non-finite count]
  struct Where {
    int epoch = 0, batch = 0;
  } where_prev;  // the previous step
  std::set<int> fitted_set;
  FitState st;  // epoch, batch, adam_lr, elapsed, log (parameters live in the buffers)
  std::vector<Pending> pending;
  std::vector<double> partial;  // per global subject: NLL sums of an epoch interrupted before a restore
  std::string batched_gap;      // why the batched step does not apply ("" when it does)
  bool ready = false, data_loaded = false;

  Impl(const Communicator& c, FitOptions o) : comm(c), opt(std::move(o)) {}

  // The buffers of every device: the shared replica and the concatenation of its fitted subjects' parameters.
  // `params[i]` / `saved[i]` belong to local[i]; saved entries may be null (fresh start).
  void build_subject_buffers(const std::vector<at::Tensor>& params,
                             const std::vector<const SubjectState*>& saved);
  void make_reduce_buffer(const ParamLayout& shared_layout);
  void make_batched_step();
  void batched_step(Device& ds, int b);
  // Host data on a GPU: the rows of minibatch b copied into buffer set b % 2 on the copy stream (stage), and
  // the current stream made to wait for them (the inputs and outputs of subject i, from the set).
  void make_staging();
  void stage(Device& ds, int b);
  void start_epoch(int epoch);
  // One optimisation step. Returns the flags of the previous step, agreed by every rank: stop, diverged.
  struct Flags {
    bool stop = false, diverged = false;
  };
  Flags step(int b, double lr, bool stop_flag);
  // True when the last step's gradients were not finite somewhere (reads its flag: a sync on a GPU).
  bool last_step_diverged();
  // Names the subject(s) of the previous step whose numbers were not finite and throws DivergedError (every
  // rank calls it together: one extra collective, on this path only).
  [[noreturn]] void throw_diverged(const std::vector<SubjectInfo>& infos);
  void reset_adam();
  // Moves the epochs' figures from the devices into the log (one reduction for all of them).
  void flush(size_t n_subjects, FitReport* report);
  std::vector<long long> memory_in_use() const;
};

const char* const kFreezeKinds =
    "shared,p-predictors,u-predictors,shared-mapping,mapping,owned-modes,psi,offsets,scales,slopes,direct";

std::string freeze_kind(const std::string& name) {
  auto starts = [&](const char* prefix) { return name.rfind(prefix, 0) == 0; };
  if (starts("pred.p.")) return "p-predictors";
  if (starts("pred.u.")) return "u-predictors";
  if (starts("shared_map.")) return "shared-mapping";
  if (starts("map.")) return "mapping";
  if (starts("p.") || starts("u.")) return "owned-modes";
  if (starts("psi.")) return "psi";
  if (starts("offset.")) return "offsets";
  if (starts("scale.")) return "scales";
  if (starts("slope.")) return "slopes";
  if (starts("direct.")) return "direct";
  return name;
}

namespace {

// The parts of a layout's flat buffer (placed at `base`) whose parameters are not frozen, neighbours merged.
std::vector<Span> trainable(const ParamLayout& layout, const std::set<std::string>& freeze, bool shared,
                            int64_t base, std::vector<Span> spans = {}) {
  if (shared && freeze.count("shared")) return spans;
  for (const auto& e : layout.entries()) {
    if (freeze.count(freeze_kind(e.name))) continue;
    const int64_t n = e.numel;
    if (!spans.empty() && spans.back().offset + spans.back().numel == base + e.offset)
      spans.back().numel += n;
    else
      spans.push_back({base + e.offset, n});
  }
  return spans;
}

int64_t total(const std::vector<Span>& spans) {
  int64_t n = 0;
  for (const auto& s : spans)
    n += s.numel;
  return n;
}

}  // namespace

void FitOptions::validate() const {
  for (const auto& kind : freeze)
    MSLR_CHECK(("," + std::string(kFreezeKinds) + ",").find("," + kind + ",") != std::string::npos,
               "freeze: '", kind, "' is not a kind of parameter (", kFreezeKinds, ")");
  MSLR_CHECK(epochs >= 0, "epochs must be >= 0, got ", epochs);
  MSLR_CHECK(batches >= 1, "batches must be >= 1, got ", batches);
  MSLR_CHECK(min_var > 0.0, "min-var must be positive, got ", min_var);
  split.validate();
  MSLR_CHECK(gpus_per_rank >= 0, "gpus-per-rank must be >= 0, got ", gpus_per_rank);
  MSLR_CHECK(dtype == at::kFloat || dtype == at::kDouble, "dtype must be float32 or float64");
  adam.validate();
}

StepKind parse_step_kind(const std::string& text) {
  if (text == "auto") return StepKind::kAuto;
  if (text == "batched") return StepKind::kBatched;
  if (text == "autograd") return StepKind::kAutograd;
  fail("step must be auto, batched or autograd, got '", text, "'");
}

at::Tensor training_times(const SubjectInfo& info, const Split& split) {
  return info.times_in(split.train(info));
}

SubjectShape shape_of(const SubjectInfo& info) {
  return {info.widths, info.n_props};
}

std::vector<at::Device> rank_devices(const Communicator& comm, int gpus_per_rank) {
  if (gpus_per_rank <= 0) return {at::Device(at::kCPU)};
  std::vector<at::Device> d;
  // Agreed before the collective below: a node short of GPUs fails every rank, not only its own.
  run_collectively(comm, [&] {
    MSLR_CHECK(gpu::torch_has_cuda(), "--gpus-per-rank ", gpus_per_rank,
               ": this mslr was built against a LibTorch without CUDA (see README, Building)");
    const int have = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    const int need = gpus_per_rank * comm.local_size();
    // A launcher that binds GPUs to ranks (srun --gpus-per-task) shows each rank only its own: use them all.
    // Otherwise the ranks of a node share its GPUs, numbered from the node-local rank.
    const bool bound = have == gpus_per_rank && comm.local_size() > 1;
    MSLR_CHECK(bound || have >= need, "--gpus-per-rank ", gpus_per_rank, " with ", comm.local_size(),
               " rank(s) on this node needs ", need, " GPU(s), but ", have, " are visible",
               have == 0 ? " (is CUDA_VISIBLE_DEVICES set?)" : "");
    for (int i = 0; i < gpus_per_rank; ++i)
      d.emplace_back(at::kCUDA,
                     static_cast<at::DeviceIndex>((bound ? 0 : comm.local_rank() * gpus_per_rank) + i));
  });
  // Every rank's GPUs by node and PCI bus id, gathered by one sum ([rank, device] rows of node, index and the
  // id's 16 bytes), so that every rank finds the same clash: a device index names a GPU only among those its
  // process sees (CUDA_VISIBLE_DEVICES, a launcher's binding), the bus id names it on the node.
  at::Tensor table = at::zeros({comm.size(), gpus_per_rank, 4}, at::kLong);
  for (int i = 0; i < gpus_per_rank; ++i) {
    int64_t* row = table[comm.rank()][i].data_ptr<int64_t>();
    row[0] = comm.node();
    row[1] = d[i].index();
    const std::string bus = gpu::pci_bus_id(d[i].index()).substr(0, 16);
    std::memcpy(row + 2, bus.data(), bus.size());
  }
  comm.all_reduce_sum(table);
  std::vector<GpuSlot> slots;
  for (int r = 0; r < comm.size(); ++r)
    for (int i = 0; i < gpus_per_rank; ++i) {
      const int64_t* row = table[r][i].data_ptr<int64_t>();
      char bus[17] = {};
      std::memcpy(bus, row + 2, 16);
      slots.push_back({r, static_cast<int>(row[0]), static_cast<int>(row[1]), bus});
    }
  const std::string clash = shared_gpu(slots);
  MSLR_CHECK(clash.empty(), clash);
  return d;
}

std::string shared_gpu(const std::vector<GpuSlot>& slots) {
  for (size_t a = 0; a < slots.size(); ++a)
    for (size_t b = a + 1; b < slots.size(); ++b) {
      const GpuSlot &x = slots[a], &y = slots[b];
      if (x.bus.empty() || x.node != y.node || x.bus != y.bus) continue;
      return cat("ranks ", x.rank, " and ", y.rank, " of one node would share the GPU at PCI bus ", x.bus,
                 " (cuda:", x.device, " of rank ", x.rank, ", cuda:", y.device, " of rank ", y.rank,
                 "): give each rank its own GPUs (check CUDA_VISIBLE_DEVICES, --gpus-per-rank and the "
                 "launcher's GPU binding, e.g. srun --gpus-per-task)");
    }
  return "";
}

double subject_cost(const ModelSpec& spec, const SubjectInfo& info, const TimeRanges& range, double fixed) {
  double vars = 0;
  for (const auto& g : spec.groups())
    if (auto it = info.widths.find(g); it != info.widths.end()) vars += static_cast<double>(it->second);
  return static_cast<double>(info.times_in(range).numel()) * std::max(vars, 1.0) + fixed;
}

Fitter::Fitter(const Communicator& comm, ModelSpec spec, FitOptions options,
               std::vector<SubjectInfo> subjects)
    : impl_(std::make_unique<Impl>(comm, std::move(options))), infos_(std::move(subjects)) {
  Impl& m = *impl_;
  const FitOptions& opt = m.opt;
  std::vector<at::Device> devices;
  // Everything below is checked on every rank from the same arguments, before the first collective, so every
  // rank fails with the same message.
  run_collectively(comm, [&] {
    opt.validate();
    spec.validate();
    MSLR_CHECK(!infos_.empty(), "there are no subjects to fit");
    const std::vector<int> fit = opt.subjects.empty() ? [&] {
      std::vector<int> all(infos_.size());
      std::iota(all.begin(), all.end(), 0);
      return all;
    }() : opt.subjects;
    for (int s : fit) {
      MSLR_CHECK(s >= 0 && s < static_cast<int>(infos_.size()), "subject index ", s,
                 " is out of range: the data has ", infos_.size(), " subjects (0..", infos_.size() - 1, ")");
      MSLR_CHECK(m.fitted_set.insert(s).second, "subject index ", s, " is listed twice");
    }
    for (int s : fit) {
      const int64_t n = training_times(infos_[s], opt.split).numel();
      MSLR_CHECK(n >= opt.batches, "subject '", infos_[s].name, "' has ", n,
                 " training samples, fewer than the ", opt.batches,
                 " minibatches asked for (lower --batches or give it more training data)");
    }
    shared_ = std::make_unique<SharedModules>(spec, property_counts(infos_));
    // Before any CUDA tensor or cuBLAS handle exists.
    if (opt.gpus_per_rank > 0) gpu::set_deterministic(opt.deterministic);
    devices = rank_devices(comm, opt.gpus_per_rank);
    m.batched_gap = opt.step == StepKind::kAutograd ? "--step autograd" : batched_step_gap(spec);
    if (m.batched_gap.empty() && opt.gpus_per_rank > 0)
      m.batched_gap = "a GPU device (the batched step runs on CPUs)";
    MSLR_CHECK(opt.step != StepKind::kBatched || m.batched_gap.empty(),
               "--step batched: the batched step does not cover ", m.batched_gap,
               "; use --step auto or autograd");
    std::vector<double> cost;
    const double fixed = opt.subject_fixed_cost >= 0 ? opt.subject_fixed_cost
                         : opt.gpus_per_rank > 0     ? kSubjectCostGpu
                                                     : kSubjectCostCpu;
    for (const auto& info : infos_)
      // A subject left out of the fit need not have a split of its own.
      cost.push_back(subject_cost(
          spec, info, opt.split.from_data && !info.has_split ? TimeRanges{} : opt.split.train(info), fixed));
    placement_ = place_subjects(cost, comm.size(), static_cast<int>(devices.size()));
    for (int s : local_subjects()) {
      Impl::Local l;
      l.index = s;
      l.device = placement_.device[s];
      l.fitted = m.fitted_set.count(s) > 0;
      l.model = std::make_unique<SubjectModel>(*shared_, shape_of(infos_[s]), infos_[s].name);
      l.model->to(at::TensorOptions().dtype(opt.dtype).device(devices[l.device]));
      m.local.push_back(std::move(l));
    }
  });
  m.st.log.fitted.assign(m.fitted_set.begin(), m.fitted_set.end());
  for (const at::Device& d : devices) {
    Impl::Device ds;
    ds.device = d;
    m.dev.push_back(std::move(ds));
  }
  m.partial.assign(infos_.size(), 0.0);
}

Fitter::~Fitter() = default;

std::vector<int> Fitter::local_subjects() const {
  return placement_.subjects_of(impl_->comm.rank());
}

std::vector<at::Device> Fitter::devices() const {
  std::vector<at::Device> d;
  for (const auto& ds : impl_->dev)
    d.push_back(ds.device);
  return d;
}

const SubjectModel& Fitter::model(int subject) const {
  for (const auto& l : impl_->local)
    if (l.index == subject) return *l.model;
  fail("subject ", subject, " is not on rank ", impl_->comm.rank());
}

std::string Fitter::describe() const {
  const auto& o = impl_->opt;
  std::string frozen;
  for (const auto& kind : o.freeze)
    frozen += (frozen.empty() ? "; frozen: " : ",") + kind;
  if (!frozen.empty())
    frozen += cat(" (the step all-reduces ", total(trainable(shared_->layout(), o.freeze, true, 0)), " of ",
                  shared_->layout().numel(), " shared values)");
  std::string devs;
  for (const auto& d : impl_->dev)
    devs += (devs.empty() ? "" : ",") + d.device.str();
  std::string residency = o.gpus_per_rank == 0 ? "in host memory" : "";
  for (const auto& ds : impl_->dev)
    if (!ds.residency.empty()) residency += (residency.empty() ? "" : ", ") + ds.residency;
  return cat("devices per rank: ", devs, "; data ", residency.empty() ? "not loaded" : residency, "; ",
             o.gpus_per_rank > 0 ? (o.deterministic ? "deterministic; " : "not deterministic; ") : "",
             o.dtype == at::kDouble ? "float64" : "float32", "; ",
             impl_->batched_gap.empty()
                 ? std::string("batched step")
                 : "autograd step (the batched step does not cover " + impl_->batched_gap + ")",
             "; ", impl_->fitted_set.size(), " of ", infos_.size(), " subjects fitted", frozen);
}

bool Fitter::batched() const {
  return impl_->batched_gap.empty();
}

void Fitter::initialize(const StartingValues& from) {
  Impl& m = *impl_;
  MSLR_CHECK(!m.ready, "the fitter was already initialised");
  MSLR_CHECK(!from.shared.defined() || from.shared.numel() == shared_->layout().numel(),
             "the starting shared parameters have ", from.shared.defined() ? from.shared.numel() : 0,
             " values, this model has ", shared_->layout().numel());
  const at::Tensor shared0 =
      from.shared.defined() ? from.shared.to(m.opt.dtype) : shared_->initial_values(m.opt.seed, m.opt.dtype);
  std::vector<at::Tensor> params;
  for (auto& l : m.local) {
    const auto given = from.subjects.find(l.index);
    MSLR_CHECK(given == from.subjects.end() || given->second.numel() == l.model->layout().numel(),
               "subject '", l.model->name(), "': the starting parameters have ", given->second.numel(),
               " values, this model has ", l.model->layout().numel());
    at::Tensor p = given != from.subjects.end()
                       ? given->second.to(m.opt.dtype)
                       : l.model->initial_values(m.opt.seed, hash_name(l.model->name()), m.opt.dtype);
    if (!l.fitted)
      l.frozen = {l.index, l.model->name(), false, p, at::zeros_like(p), at::zeros_like(p), 0, 0.0};
    params.push_back(p);
  }
  for (auto& ds : m.dev) {
    ds.shared_flat = shared0.to(ds.device).contiguous();
    ds.shared_adam = AdamState::zeros_like(ds.shared_flat);
  }
  m.build_subject_buffers(params, std::vector<const SubjectState*>(m.local.size(), nullptr));
  m.st.epoch = 0;
  m.st.batch = 0;
  m.st.adam_lr = m.opt.lr.at(0);
  m.ready = true;
}

void Fitter::restore(const FitState& state) {
  Impl& m = *impl_;
  MSLR_CHECK(!m.ready, "the fitter was already initialised");
  run_collectively(m.comm, [&] {
    MSLR_CHECK(state.shared_params.defined() && state.shared_params.numel() == shared_->layout().numel(),
               "the saved shared parameters have ",
               state.shared_params.defined() ? state.shared_params.numel() : 0, " values, this model has ",
               shared_->layout().numel());
    MSLR_CHECK(state.log.fitted == m.st.log.fitted,
               "the saved fit fitted a different set of subjects than this one");
    MSLR_CHECK(state.epoch <= m.opt.epochs, "the saved fit is at epoch ", state.epoch, ", beyond --epochs ",
               m.opt.epochs);
    for (auto& l : m.local) {
      const SubjectState* s = state.find(l.index);
      MSLR_CHECK(s != nullptr, "the saved state has no parameters for subject '", l.model->name(), "'");
      MSLR_CHECK(s->name == l.model->name(), "saved subject ", l.index, " is '", s->name, "', the data has '",
                 l.model->name(), "'");
      MSLR_CHECK(s->params.numel() == l.model->layout().numel(), "subject '", s->name,
                 "': the saved parameters have ", s->params.numel(), " values, this model has ",
                 l.model->layout().numel());
      MSLR_CHECK(!l.fitted || s->adam_step == state.shared_step, "subject '", s->name, "' has taken ",
                 s->adam_step, " Adam steps, the shared parameters ", state.shared_step);
    }
  });
  std::vector<at::Tensor> params;
  std::vector<const SubjectState*> states;
  for (auto& l : m.local) {
    const SubjectState* s = state.find(l.index);
    if (!l.fitted) l.frozen = *s;
    params.push_back(s->params.to(m.opt.dtype));
    states.push_back(s);
    m.partial[l.index] = s->partial_nll;
  }
  for (auto& ds : m.dev) {
    const auto opts = at::TensorOptions().dtype(m.opt.dtype).device(ds.device);
    ds.shared_flat = state.shared_params.to(opts).contiguous();
    ds.shared_adam = AdamState::zeros_like(ds.shared_flat);
    ds.shared_adam.m.copy_(state.shared_m);
    ds.shared_adam.v.copy_(state.shared_v);
    ds.shared_adam.step = state.shared_step;
  }
  m.build_subject_buffers(params, states);
  for (auto& ds : m.dev)
    ds.subject_adam.step = state.shared_step;
  m.st.epoch = state.epoch;
  m.st.batch = state.batch;
  m.st.adam_lr = state.adam_lr;
  m.st.elapsed = state.elapsed;
  m.st.log = state.log;
  m.ready = true;
}

void Fitter::load_data(const std::function<SubjectData(int)>& load) {
  Impl& m = *impl_;
  MSLR_CHECK(m.ready, "initialize() or restore() before load_data()");
  run_collectively(m.comm, [&] {
    // Where each GPU's subjects keep their data, from their sizes (known from the descriptions) and the
    // device's free memory: decided before anything is loaded.
    for (size_t d = 0; d < m.dev.size(); ++d) {
      auto& ds = m.dev[d];
      if (ds.device.is_cpu()) {
        ds.residency = "in host memory";
        continue;
      }
      int64_t bytes = 0;
      for (const auto& l : m.local)
        if (l.fitted && l.device == static_cast<int>(d))
          for (const auto& g : l.model->spec().groups())
            bytes += infos_[l.index].n_time * infos_[l.index].widths.at(g) *
                     static_cast<int64_t>(c10::elementSize(m.opt.dtype));
      const int64_t free_b = cuda_memory_free(ds.device.index());
      const bool fits =
          free_b < 0 || static_cast<double>(bytes) <= kDeviceDataShare * static_cast<double>(free_b);
      const std::string sizes =
          cat(human_bytes(static_cast<double>(bytes)), " of data, ",
              free_b < 0 ? std::string("?") : human_bytes(static_cast<double>(free_b)), " free");
      if (m.opt.data_on_device.value_or(fits)) {
        MSLR_CHECK(free_b < 0 || bytes < free_b, ds.device.str(), ": its subjects' data (", sizes,
                   ") does not fit; use --data-on-device=false (or auto) to keep it in host memory");
        ds.data_resident = true;
        ds.residency = cat("on ", ds.device.str(), " (", sizes, m.opt.data_on_device ? "" : ": auto", ")");
      } else {
        ds.data_resident = false;
        ds.residency =
            cat("in page-locked host memory for ", ds.device.str(), ", each minibatch copied a step ahead (",
                sizes, m.opt.data_on_device ? "" : ": more than the share auto allows", ")");
      }
    }
    for (auto& l : m.local) {
      if (!l.fitted) continue;
      SubjectData data = load(l.index);
      const SubjectInfo& info = infos_[l.index];
      data.validate();
      const Impl::Device& ds = m.dev[l.device];
      const at::Device device = ds.device;
      for (const auto& g : l.model->spec().groups()) {
        at::Tensor x = data.group(g).to(m.opt.dtype).contiguous();
        MSLR_CHECK(x.size(1) == info.widths.at(g), "subject '", info.name, "', group '", g, "' has ",
                   x.size(1), " variables, its description said ", info.widths.at(g));
        // Host data for a GPU is page-locked where it lies (no second copy, no rounding up).
        l.groups[g] = ds.data_resident ? x.to(device) : gpu::pin_in_place(x);
      }
      l.model->check_props(data.props);
      l.model->set_given(data.modes);
      l.model->to(at::TensorOptions().dtype(m.opt.dtype).device(device));
      l.given = data.modes;
      l.train_times = training_times(info, m.opt.split);
      const int64_t n = l.train_times.numel();
      l.batch_size = n / m.opt.batches;
      l.weight = static_cast<double>(n) / static_cast<double>(l.batch_size);
      l.props = data.props;
    }
  });
  // Prepare the predictors' inputs once, on their devices (scaled properties, or cube indices).
  for (auto& ds : m.dev) {
    const auto opts = at::TensorOptions().dtype(m.opt.dtype).device(ds.device);
    for (int i : ds.fitted) {
      auto& l = m.local[i];
      l.prepared.clear();
      for (const ModeSlot& slot : l.model->mode_slots())
        l.prepared.push_back(slot.predictor ? slot.predictor->prepare(l.props.at(slot.group).to(opts))
                                            : at::Tensor());
    }
  }
  m.data_loaded = true;
}

void Fitter::Impl::build_subject_buffers(const std::vector<at::Tensor>& params,
                                         const std::vector<const SubjectState*>& saved) {
  for (size_t d = 0; d < dev.size(); ++d) {
    auto& ds = dev[d];
    std::vector<at::Tensor> parts, lower, ms, vs;
    ds.fitted.clear();
    ds.subject_train.clear();
    int64_t offset = 0;
    for (size_t i = 0; i < local.size(); ++i) {
      auto& l = local[i];
      if (!l.fitted || l.device != static_cast<int>(d)) continue;
      const ParamLayout& layout = l.model->layout();
      l.offset = offset;
      l.slot = static_cast<int>(ds.fitted.size());
      ds.fitted.push_back(static_cast<int>(i));
      ds.subject_train = trainable(layout, opt.freeze, false, offset, std::move(ds.subject_train));
      offset += layout.numel();
      parts.push_back(params[i]);
      at::Tensor lb = at::full({layout.numel()}, -std::numeric_limits<double>::infinity(), at::kDouble);
      for (int h = 0; h < l.model->n_outputs(); ++h)
        layout.view(lb, l.model->psi_index(h)).fill_(opt.min_var);
      lower.push_back(lb);
      if (saved[i]) {
        ms.push_back(saved[i]->adam_m);
        vs.push_back(saved[i]->adam_v);
      }
    }
    const auto opts = at::TensorOptions().dtype(opt.dtype).device(ds.device);
    ds.subject_flat = at::Tensor();
    if (!parts.empty()) {
      ds.subject_flat = at::cat(parts).to(opts).contiguous().requires_grad_();
      ds.lower = at::cat(lower).to(opts);
      ds.subject_adam = AdamState::zeros_like(ds.subject_flat.detach());
      if (!ms.empty()) {
        ds.subject_adam.m.copy_(at::cat(ms));
        ds.subject_adam.v.copy_(at::cat(vs));
      }
    }
    ds.nll_acc = at::zeros({static_cast<int64_t>(ds.fitted.size())}, opts.dtype(at::kDouble));
    ds.subject_frozen_some = total(ds.subject_train) != offset;
  }
}

void Fitter::Impl::make_reduce_buffer(const ParamLayout& shared_layout) {
  // Shared gradients are summed in float64 over subjects in global index order, then over ranks: the sum does
  // not depend on where subjects live, so a fit gives the same parameters for any number of ranks or devices
  // (to float64 rounding, which the conversion back to float32 almost always removes). The stop flag and the
  // non-finite count ride in the last two elements, so a step needs exactly one collective.
  // Frozen shared parts are left out of it: nothing is sent for them.
  shared_train = trainable(shared_layout, opt.freeze, true, 0);
  n_reduce = total(shared_train);
  reduce_buf = at::zeros({n_reduce + 2}, at::TensorOptions().dtype(at::kDouble).device(dev[0].device));
  std::vector<int> fitted;
  for (const auto& ds : dev)
    fitted.insert(fitted.end(), ds.fitted.begin(), ds.fitted.end());
  std::sort(fitted.begin(), fitted.end(), [&](int a, int b) { return local[a].index < local[b].index; });
  order = fitted;
  for (auto& ds : dev) {
    ds.shared_grad = at::zeros_like(ds.shared_flat);
    ds.bad_now = at::zeros({static_cast<int64_t>(ds.fitted.size())}, ds.nll_acc.options());
    ds.bad_prev = at::zeros_like(ds.bad_now);
  }
}

namespace {

// True when every value of a contiguous CPU tensor is finite: one pass that tests the exponent bits, an OR
// that the compiler vectorises (a float sum would not be, without reordering it).
bool all_finite(const at::Tensor& t) {
  uint64_t bad = 0;
  if (t.scalar_type() == at::kFloat) {
    const uint32_t* p = static_cast<const uint32_t*>(t.data_ptr());
    for (int64_t i = 0; i < t.numel(); ++i)
      bad |= (p[i] & 0x7f800000u) == 0x7f800000u;
  } else {
    MSLR_CHECK(t.scalar_type() == at::kDouble, "all_finite: float32 or float64 only");
    const uint64_t* p = static_cast<const uint64_t*>(t.data_ptr());
    for (int64_t i = 0; i < t.numel(); ++i)
      bad |= (p[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
  }
  return bad == 0;
}

// sum += g, for a float64 sum and a gradient of the model's dtype; on the CPU without a converted copy.
void add_to_sum(at::Tensor& sum, const at::Tensor& g) {
  if (!sum.device().is_cpu() || !g.is_contiguous()) {
    sum.add_(g.to(sum.options()));
    return;
  }
  double* s = sum.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "add_to_sum", [&] {
    const scalar_t* q = g.data_ptr<scalar_t>();
    for (int64_t i = 0; i < g.numel(); ++i)
      s[i] += static_cast<double>(q[i]);
  });
}

}  // namespace

void Fitter::Impl::make_batched_step() {
  if (!batched_gap.empty()) return;
  for (auto& ds : dev) {
    if (ds.fitted.empty() || ds.batched) continue;
    std::vector<BatchedSubject> subjects;
    const int64_t n_shared = ds.shared_flat.numel();
    const at::Tensor flat = ds.subject_flat.detach();
    ds.subject_grad = at::zeros_like(flat);
    ds.shared_grads = at::zeros({static_cast<int64_t>(ds.fitted.size()), n_shared}, flat.options());
    ds.param_views.clear();
    ds.grad_views.clear();
    ds.shared_grad_views.clear();
    ds.minibatch = Minibatch();
    for (int i : ds.fitted) {
      const auto& l = local[i];
      const int64_t n = l.model->layout().numel();
      subjects.push_back({l.model.get(), l.groups, l.props, l.batch_size});
      ds.param_views.push_back(flat.narrow(0, l.offset, n));
      ds.grad_views.push_back(ds.subject_grad.narrow(0, l.offset, n));
      ds.shared_grad_views.push_back(ds.shared_grads[l.slot]);
      ds.minibatch.times.push_back(nullptr);
      ds.minibatch.count.push_back(l.batch_size);
      ds.minibatch.weight.push_back(l.weight);
    }
    ds.nll.assign(ds.fitted.size(), 0.0);
    ds.batched =
        std::make_unique<BatchedModel>(local[ds.fitted[0]].model->shared(), std::move(subjects), opt.dtype);
    ds.batched->hold_shared(n_reduce == 0);  // make_reduce_buffer() came first
  }
}

void Fitter::Impl::batched_step(Device& ds, int b) {
  for (size_t k = 0; k < ds.fitted.size(); ++k) {
    const auto& l = local[ds.fitted[k]];
    ds.minibatch.times[k] = l.epoch_times.data_ptr<int64_t>() + static_cast<int64_t>(b) * l.batch_size;
  }
  ds.batched->step(ds.minibatch, ds.param_views, ds.shared_flat, ds.grad_views, ds.shared_grad_views,
                   ds.nll.data());
  double* acc = ds.nll_acc.data_ptr<double>();
  double* bad = ds.bad_now.data_ptr<double>();
  for (size_t k = 0; k < ds.fitted.size(); ++k) {
    acc[k] += ds.nll[k];
    const bool finite =
        std::isfinite(ds.nll[k]) && all_finite(ds.grad_views[k]) && all_finite(ds.shared_grad_views[k]);
    bad[k] = finite ? 0.0 : 1.0;
  }
}

void Fitter::Impl::make_staging() {
  for (auto& ds : dev) {
    if (ds.data_resident || ds.fitted.empty()) continue;
    ds.copies = std::make_unique<gpu::CopyStream>(ds.device);
    for (int i : ds.fitted) {
      auto& l = local[i];
      const auto& spec = l.model->spec();
      const auto host = at::TensorOptions().dtype(opt.dtype).pinned_memory(true);
      const auto on = at::TensorOptions().dtype(opt.dtype).device(ds.device);
      for (int k = 0; k < 2; ++k) {
        for (const auto& g : spec.inputs) {
          const int64_t d = l.groups.at(g.group).size(1);
          l.host_x[k].push_back(at::empty({l.batch_size, d}, host));
          l.dev_x[k].push_back(at::empty({l.batch_size, d}, on));
        }
        for (const auto& h : spec.outputs) {
          const int64_t d = l.groups.at(h.group).size(1);
          l.host_y[k].push_back(at::empty({l.batch_size, d}, host));
          l.dev_y[k].push_back(at::empty({l.batch_size, d}, on));
        }
      }
    }
  }
}

void Fitter::Impl::stage(Device& ds, int b) {
  const int k = b % 2;
  if (ds.staged[k].epoch == st.epoch && ds.staged[k].batch == b) return;
  ds.copies->wait_host(k);
  ds.copies->begin(k);
  for (int i : ds.fitted) {
    auto& l = local[i];
    const auto& spec = l.model->spec();
    const at::Tensor t = l.epoch_times.narrow(0, static_cast<int64_t>(b) * l.batch_size, l.batch_size);
    const at::Tensor t_prev = t - 1;
    for (size_t g = 0; g < spec.inputs.size(); ++g) {
      at::index_select_out(l.host_x[k][g], l.groups.at(spec.inputs[g].group), 0, t_prev);
      ds.copies->copy(l.dev_x[k][g], l.host_x[k][g]);
    }
    for (size_t h = 0; h < spec.outputs.size(); ++h) {
      at::index_select_out(l.host_y[k][h], l.groups.at(spec.outputs[h].group), 0, t);
      ds.copies->copy(l.dev_y[k][h], l.host_y[k][h]);
    }
  }
  ds.copies->end(k);
  ds.staged[k] = {st.epoch, b};
}

void Fitter::Impl::reset_adam() {
  for (auto& ds : dev) {
    ds.shared_adam.reset();
    if (ds.subject_flat.defined()) ds.subject_adam.reset();
  }
}

void Fitter::Impl::start_epoch(int epoch) {
  // The minibatch order of subject s in epoch e depends on (seed, s, e) alone: the same on any number of
  // ranks, and the same in a resumed fit.
  for (auto& ds : dev)
    for (int i : ds.fitted) {
      auto& l = local[i];
      const auto perm =
          Rng(opt.seed, {kRngMinibatch, hash_name(l.model->name()), static_cast<uint64_t>(epoch)})
              .permutation(l.train_times.numel());
      const at::Tensor t = l.train_times.index_select(0, at::tensor(perm, at::kLong));
      l.epoch_times = t.to(l.groups.begin()->second.device());
    }
}

Fitter::Impl::Flags Fitter::Impl::step(int b, double lr, bool stop_flag) {
  fault_point("step", comm.rank());
  {
    at::NoGradGuard no_grad;
    reduce_buf.zero_();
    for (auto& ds : dev)
      if (!ds.batched && ds.subject_flat.defined() && ds.subject_flat.grad().defined())
        ds.subject_flat.mutable_grad().zero_();
    if (stop_flag) reduce_buf.narrow(0, n_reduce, 1).fill_(1.0);
  }
  // Every subject reads the shared parameters through a leaf of its own (an alias of the replica, no copy),
  // so that its contribution to the shared gradient arrives separately.
  std::vector<at::Tensor> shared_leaf(local.size());
  std::vector<at::Tensor> roots;
  for (auto& ds : dev) {
    if (ds.fitted.empty()) continue;
    if (ds.batched) {
      batched_step(ds, b);
      continue;
    }
    if (ds.copies) {  // this minibatch's rows, staged by the previous step (or now, at an epoch's start)
      stage(ds, b);
      ds.copies->use(b % 2);
    }
    std::vector<at::Tensor> weighted;  // (n_s / b_s) · NLL_s(minibatch), per subject
    for (int i : ds.fitted) {
      const auto& l = local[i];
      const SubjectModel& model = *l.model;
      shared_leaf[i] = ds.shared_flat.detach().requires_grad_(n_reduce > 0);  // no gradient when all frozen
      const ParamViews v{model.layout().views(ds.subject_flat.narrow(0, l.offset, model.layout().numel())),
                         model.shared().layout().views(shared_leaf[i])};
      ModeSet modes;
      modes.p.resize(model.n_inputs());
      modes.u.resize(model.n_outputs());
      for (size_t k = 0; k < model.mode_slots().size(); ++k) {
        const ModeSlot& slot = model.mode_slots()[k];
        if (slot.predictor)
          modes.of(slot) = model.from_prediction(
              slot,
              slot.predictor->forward_prepared(l.prepared[k], slot.own_predictor ? v.subject : v.shared));
      }
      std::vector<at::Tensor> x, y;  // x[g]: [b_s, d_in_g] at t-1; y[h]: [b_s, d_out_h] at t
      if (ds.copies) {
        x = l.dev_x[b % 2];
        y = l.dev_y[b % 2];
      } else {
        const at::Tensor times =
            l.epoch_times.narrow(0, static_cast<int64_t>(b) * l.batch_size, l.batch_size);
        for (const auto& g : model.spec().inputs)
          x.push_back(gather_rows(l.groups.at(g.group), times, -1));
        for (const auto& h : model.spec().outputs)
          y.push_back(gather_rows(l.groups.at(h.group), times, 0));
      }
      weighted.push_back(model.nll(y, model.forward(x, modes, v), v) * l.weight);
    }
    const at::Tensor all = at::stack(weighted);  // [fitted on device]
    roots.push_back(all.sum());
    at::NoGradGuard no_grad;
    ds.nll_acc.add_(all.detach().to(at::kDouble));
    ds.bad_now.copy_(at::logical_not(at::isfinite(all.detach())));
  }
  if (!roots.empty()) torch::autograd::backward(roots);
  {
    // Autograd devices: a subject whose own or shared gradient is not finite is marked too (device ops, no
    // host read).
    at::NoGradGuard no_grad;
    for (auto& ds : dev) {
      if (ds.batched) continue;
      for (int i : ds.fitted) {
        const auto& l = local[i];
        at::Tensor bad = ds.bad_now.narrow(0, l.slot, 1);
        if (ds.subject_flat.grad().defined())
          bad.add_(at::logical_not(
                       at::isfinite(ds.subject_flat.grad().narrow(0, l.offset, l.model->layout().numel())))
                       .any()
                       .to(bad.options()));
        if (shared_leaf[i].grad().defined())
          bad.add_(at::logical_not(at::isfinite(shared_leaf[i].grad())).any().to(bad.options()));
      }
    }
  }
  for (auto& ds : dev)
    if (ds.bad_now.numel()) reduce_buf.narrow(0, n_reduce + 1, 1).add_(ds.bad_now.sum());

  at::NoGradGuard no_grad;
  // The parts not frozen, packed one after the other.
  auto pack = [&](const at::Tensor& grad) {
    int64_t at = 0;
    for (const Span& p : shared_train) {
      at::Tensor into = reduce_buf.narrow(0, at, p.numel);
      add_to_sum(into, grad.narrow(0, p.offset, p.numel));
      at += p.numel;
    }
  };
  for (int i : order) {
    const Device& ds = dev[local[i].device];
    if (ds.batched)
      pack(ds.shared_grad_views[local[i].slot]);
    else if (shared_leaf[i].grad().defined())
      pack(shared_leaf[i].grad());
  }
  // The one collective of the step: the shared gradients, summed (never averaged), the stop flag and the
  // count of non-finite subjects.
  comm.all_reduce_sum(reduce_buf);
  // The flags are read one step late: on a GPU the values of the previous step are ready by now, so reading
  // them does not stall the queue; every rank reads the same values at the same step. A diverged step is
  // caught here before anything is logged or saved (run() also checks the last step of every epoch).
  // On a GPU the previous step's flags were copied to page-locked memory behind an event of their own:
  // reading them waits for that copy only, never for the step just enqueued (gpu::LateRead), so the host
  // keeps a step ahead of the device.
  Flags flags;
  if (flag_prev.recorded()) {
    const double* f = flag_prev.read().data_ptr<double>();
    flags.stop = f[0] > 0.0;
    flags.diverged = !(f[1] == 0.0);
  }
  if (flags.diverged) return flags;
  flag_prev.record(reduce_buf.narrow(0, n_reduce, 2));
  for (auto& ds : dev)
    ds.bad_prev.copy_(ds.bad_now);
  where_prev = {st.epoch, b};

  const bool shared_frozen_some = n_reduce != dev[0].shared_flat.numel();
  for (auto& ds : dev) {
    at::Tensor p = ds.shared_flat;
    int64_t at = 0;
    for (const Span& part : shared_train) {
      ds.shared_grad.narrow(0, part.offset, part.numel).copy_(reduce_buf.narrow(0, at, part.numel));
      at += part.numel;
    }
    // Also when everything shared is frozen: the step count stays that of the subjects (a checkpoint says so).
    adam_step(p, ds.shared_grad, ds.shared_adam, lr, opt.adam, shared_frozen_some ? &shared_train : nullptr);
    const at::Tensor grad = ds.batched                  ? ds.subject_grad
                            : ds.subject_flat.defined() ? ds.subject_flat.grad()
                                                        : at::Tensor();
    if (grad.defined()) {
      at::Tensor q = ds.subject_flat.detach();
      adam_step(q, grad, ds.subject_adam, lr, opt.adam, ds.subject_frozen_some ? &ds.subject_train : nullptr);
      at::maximum_out(q, q, ds.lower);  // psi >= min_var after every step
    }
    // The next minibatch of this epoch travels while the device computes this step.
    if (ds.copies && b + 1 < opt.batches) stage(ds, b + 1);
  }
  return flags;
}

bool Fitter::Impl::last_step_diverged() {
  return flag_prev.recorded() && !(flag_prev.read().data_ptr<double>()[1] == 0.0);
}

void Fitter::Impl::throw_diverged(const std::vector<SubjectInfo>& infos) {
  at::Tensor bad = at::zeros({static_cast<int64_t>(infos.size())}, at::kDouble);
  for (const auto& ds : dev) {
    const at::Tensor b = ds.bad_prev.cpu();
    for (size_t k = 0; k < ds.fitted.size(); ++k)
      bad[local[ds.fitted[k]].index] = b[k].item<double>() > 0.0 ? 1.0 : 0.0;
  }
  comm.all_reduce_sum(bad);
  std::vector<int> which;
  for (int64_t s = 0; s < bad.numel(); ++s)
    if (bad[s].item<double>() > 0.0) which.push_back(static_cast<int>(s));
  const std::string first = which.empty() ? std::string("?") : "'" + infos[which[0]].name + "'";
  throw DivergedError(
      cat("the fit diverged at epoch ", where_prev.epoch + 1, ", minibatch ", where_prev.batch + 1,
          ": subject ", first, which.size() > 1 ? cat(" and ", which.size() - 1, " other(s)") : std::string(),
          " had a non-finite NLL or gradient; nothing of this epoch was logged or saved (lower --lr, "
          "or resume from the last checkpoint with a lower rate)"));
}

std::vector<long long> Fitter::Impl::memory_in_use() const {
  std::vector<long long> mem;
  for (const auto& ds : dev)
    mem.push_back(ds.device.is_cuda() ? cuda_memory_used(ds.device.index()) : resident_bytes());
  at::Tensor t = at::tensor(std::vector<int64_t>(mem.begin(), mem.end()), at::kLong);
  comm.all_reduce_max(t);
  for (size_t i = 0; i < mem.size(); ++i)
    mem[i] = t[i].item<int64_t>();
  return mem;
}

void Fitter::Impl::flush(size_t n_subjects, FitReport* report) {
  if (pending.empty()) return;
  // One host tensor [epochs, subjects] with this rank's values and zeros elsewhere; the sum over ranks fills
  // it.
  at::Tensor table =
      at::zeros({static_cast<int64_t>(pending.size()), static_cast<int64_t>(n_subjects)}, at::kDouble);
  for (size_t e = 0; e < pending.size(); ++e)
    for (size_t d = 0; d < dev.size(); ++d) {
      const at::Tensor acc = pending[e].acc[d].cpu();
      for (size_t k = 0; k < dev[d].fitted.size(); ++k)
        table[e][local[dev[d].fitted[k]].index] = acc[k].item<double>() / static_cast<double>(opt.batches);
    }
  comm.all_reduce_sum(table);
  for (size_t e = 0; e < pending.size(); ++e) {
    std::vector<double> row;
    double objective = 0.0;
    for (int s : st.log.fitted) {
      row.push_back(table[e][s].item<double>());
      objective += row.back();  // in subject order: the same on every rank and for any number of ranks
    }
    st.log.epoch.push_back(pending[e].epoch);
    st.log.lr.push_back(pending[e].lr);
    st.log.elapsed.push_back(pending[e].elapsed);
    st.log.objective.push_back(objective);
    st.log.subject_nll.push_back(row);
  }
  pending.clear();
  if (report) {
    const size_t n_new = st.log.size() - report->first_new;
    const double before = report->first_new > 0 ? st.log.elapsed[report->first_new - 1] : 0.0;
    report->seconds_per_epoch = n_new ? (st.log.elapsed.back() - before) / static_cast<double>(n_new) : 0.0;
    report->memory = memory_in_use();
  }
}

bool Fitter::run(const FitHooks& hooks) {
  Impl& m = *impl_;
  MSLR_CHECK(m.ready && m.data_loaded, "initialize()/restore() and load_data() before run()");
  m.make_reduce_buffer(shared_->layout());
  m.make_batched_step();  // after the reduce buffer: it says whether anything shared is fitted
  m.make_staging();
  const auto t0 = Clock::now();
  const double elapsed0 = m.st.elapsed;
  size_t reported = m.st.log.size();
  auto report = [&] {
    FitReport r;
    r.first_new = reported;
    m.flush(infos_.size(), &r);
    if (hooks.on_report && m.st.log.size() > reported) hooks.on_report(m.st.log, r);
    reported = m.st.log.size();
  };
  // Partial sums of an epoch interrupted by a stop go back on the devices' accumulators.
  for (auto& ds : m.dev)
    for (size_t k = 0; k < ds.fitted.size(); ++k)
      ds.nll_acc[k].fill_(m.partial[m.local[ds.fitted[k]].index]);

  bool stopped = false;
  int since_report = 0;
  while (m.st.epoch < m.opt.epochs && !stopped) {
    const int e = m.st.epoch;
    const double lr = m.opt.lr.at(e);
    if (lr != m.st.adam_lr) {  // a new rate starts a new Adam, as the seed does
      m.reset_adam();
      m.st.adam_lr = lr;
    }
    m.start_epoch(e);
    while (m.st.batch < m.opt.batches) {
      const Impl::Flags flags = m.step(m.st.batch, lr, hooks.stop_requested && hooks.stop_requested());
      if (flags.diverged) m.throw_diverged(infos_);
      ++m.st.batch;
      if (flags.stop) {
        stopped = true;
        break;
      }
    }
    // The last step's flags have not been read yet: nothing is logged or saved before they are.
    if (m.last_step_diverged()) m.throw_diverged(infos_);
    if (m.st.batch == m.opt.batches) {
      m.st.elapsed = elapsed0 + seconds_since(t0);
      std::vector<at::Tensor> acc;
      for (auto& ds : m.dev) {
        acc.push_back(ds.nll_acc.clone());
        ds.nll_acc.zero_();
      }
      m.pending.push_back({e, lr, m.st.elapsed, acc});
      m.st.epoch = e + 1;
      m.st.batch = 0;
      ++since_report;
    }
    const bool last = m.st.epoch == m.opt.epochs;
    const bool checkpoint =
        stopped || (m.st.batch == 0 && hooks.checkpoint_after && hooks.checkpoint_after(m.st.epoch));
    if (last || stopped || checkpoint || since_report >= std::max(1, hooks.report_every)) {
      report();
      since_report = 0;
    }
    if (checkpoint && hooks.on_checkpoint) {
      m.st.elapsed = elapsed0 + seconds_since(t0);
      hooks.on_checkpoint(state());
    }
  }
  m.st.elapsed = elapsed0 + seconds_since(t0);
  report();
  return stopped;
}

FitState Fitter::state() const {
  const Impl& m = *impl_;
  FitState s;
  s.epoch = m.st.epoch;
  s.batch = m.st.batch;
  s.adam_lr = m.st.adam_lr;
  s.elapsed = m.st.elapsed;
  s.log = m.st.log;
  const auto& d0 = m.dev[0];
  s.shared_params = d0.shared_flat.detach().cpu().clone();
  s.shared_m = d0.shared_adam.m.cpu().clone();
  s.shared_v = d0.shared_adam.v.cpu().clone();
  s.shared_step = d0.shared_adam.step;
  for (const auto& l : m.local) {
    if (!l.fitted) {
      s.subjects.push_back(l.frozen);
      continue;
    }
    const auto& ds = m.dev[l.device];
    const int64_t n = l.model->layout().numel();
    SubjectState ss;
    ss.index = l.index;
    ss.name = l.model->name();
    ss.fitted = true;
    ss.params = ds.subject_flat.detach().narrow(0, l.offset, n).cpu().clone();
    ss.adam_m = ds.subject_adam.m.narrow(0, l.offset, n).cpu().clone();
    ss.adam_v = ds.subject_adam.v.narrow(0, l.offset, n).cpu().clone();
    ss.adam_step = ds.subject_adam.step;
    ss.partial_nll = s.batch > 0 ? ds.nll_acc[l.slot].item<double>() : 0.0;
    s.subjects.push_back(ss);
  }
  return s;
}

const FitLog& Fitter::log() const {
  return impl_->st.log;
}

std::map<std::string, at::Tensor> Fitter::data_modes(int subject) const {
  const Impl& m = *impl_;
  for (const auto& l : m.local) {
    if (l.index != subject || !l.fitted) continue;
    const auto& ds = m.dev[l.device];
    const SubjectModel& model = *l.model;
    at::NoGradGuard no_grad;
    const ParamViews v{
        model.layout().views(ds.subject_flat.detach().narrow(0, l.offset, model.layout().numel())),
        shared_->layout().views(ds.shared_flat.detach())};
    const auto opts = at::TensorOptions().dtype(m.opt.dtype).device(ds.device);
    std::map<std::string, at::Tensor> props;
    for (const auto& [g, p] : l.props)
      props[g] = p.to(opts);
    const ModeSet modes = model.predict_modes(props, v);
    std::map<std::string, at::Tensor> out;
    for (const ModeSlot& slot : model.mode_slots())
      if (slot.predictor)
        out[slot.name] = modes.find(slot)->cpu();
      else if (slot.given)
        out[slot.name] = slot.fixed.cpu();
    return out;
  }
  fail("subject ", subject, " is not fitted on rank ", m.comm.rank());
}

SubjectData Fitter::held_data(int subject) const {
  for (const auto& l : impl_->local) {
    if (l.index != subject || !l.fitted) continue;
    SubjectData d;
    d.name = l.model->name();
    for (const auto& [g, x] : l.groups)
      d.groups[g] = x.cpu();
    d.props = l.props;
    d.modes = l.given;
    d.segments = infos_[subject].segments;
    return d;
  }
  fail("subject ", subject, " is not fitted on rank ", impl_->comm.rank());
}

}  // namespace mslr
