#include "mslr/model/batched.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "mslr/core/error.h"
#include "mslr/model/kernels.h"
#include "vector_clones.h"

namespace mslr {
namespace {

// Variables per work item of the output pass, the rows of a group read side by side along them, and how far
// along a row the pass asks for its data: each row is read in runs of 16 KB that the prefetcher follows,
// while a group's block of outputs (16 x 4096) stays in L2. By chunks of 256 variables with all the rows at
// once (1 KB of each), the pass waited on y: large step's output pass 10.2 -> 7.4 ms (mslr_bench_step).
constexpr int64_t kOutputColumns = 4096, kOutputRows = 16, kOutputAhead = 128;
// Variables per work item of the modes' gradients, and the rows summed side by side along them: each group
// of rows is read in long runs (16 KB a row), as the projections read theirs, while the item's sums (K x 4096)
// stay in L2. By chunks of 256 with all the rows at once, the pass waited on x: 4.1-4.4 -> 3.5-3.6 ms on the
// large step (mslr_bench_step).
constexpr int64_t kGradientColumns = 4096, kGradientRows = 8;
// Sample rows per work item of the projections.
constexpr int64_t kProjectionRows = 16;
// The step runs over the subjects a wave at a time, forward to backward: the predictors' forward over a
// wave's subjects, their projections, output pass and modes' gradients, the predictors' backward, then the
// next wave. The predictors' activations are written to memory that every wave reuses, so the backward reads
// them back from the cache where the forward left them, not from memory (the large step's predictors 18.3 ->
// 15.2-15.8 ms, the activations of 4 subjects being 41 MB; mslr_bench_step, 1 thread). On one thread a wave
// is one subject: a small subject's rows and activations (a few hundred KB) then stay in L2 from its
// projections to its modes' gradients and backward (small step 3.7-4.2 -> 3.4-3.7 ms). On more threads a
// wave is as few consecutive subjects as read at least kWaveBytes of minibatch rows per thread, so that
// every pass has work items for every thread (per-subject waves there: small step 2.0 -> 3.1 ms, large 16.5
// -> 17.7 ms on 2 threads). A subject's arithmetic does not depend on its wave.
constexpr int64_t kWaveBytes = 16 << 20;
// Variables per block of a predictor's MLP: its activations stay in L2.
constexpr int64_t kBlockRows = 512;
constexpr double kLog2Pi = 1.8378770664093453;

// Where a mode matrix (p [d, K] or u [d, D]) comes from and where its gradient goes. The step reads every mode
// matrix transposed — [K, d] with a leading dimension, the layout in which the predictors write them — so
// that the regression kernels run their vectors along the variables.
struct ModeRef {
  enum Kind { kIdentity, kPredicted, kOwned, kFixed } kind = kIdentity;
  int run = -1;        // kPredicted: the predictor run
  int64_t row0 = 0;    // kPredicted: the subject's first row in the run
  int64_t offset = 0;  // kOwned: the parameter's offset in the subject's layout
  at::Tensor t;        // kFixed: the matrix transposed [K, d]; kOwned: the parameter's transpose, each step
  at::Tensor dt;       // kOwned: its gradient, transposed [K, d]
  double alpha = 1.0;  // the modes are alpha × their source (1/N for p-modes that are a mean over N)
};

template <class T>
struct ModesT {  // a mode matrix (or its gradient) transposed: element (k, j) at p[k · ld + j]
  T* p = nullptr;
  int64_t ld = 0;
};

struct InputPlan {
  int64_t d = 0, K = 0;  // variables, modes
  ModeRef modes;
  int h = 0;        // the transformed latent this projection is part of
  int64_t col = 0;  // its first column there
  const void* series = nullptr;
};

struct OutputPlan {
  int64_t d = 0, D = 0;  // variables, latent width
  ModeRef modes;
  Activation act = Activation::kIdentity;
  int64_t psi = 0, scale = -1, offset = -1;  // offsets in the subject's layout (-1: absent)
  const void* series = nullptr;
};

struct SubjectPlan {
  const SubjectModel* model = nullptr;
  int64_t max_batch = 0;
  std::vector<InputPlan> in;
  std::vector<OutputPlan> out;
  std::vector<at::Tensor> keep;         // the series and fixed modes the plan points into
  std::vector<at::Tensor> tran, dtran;  // per output h: [max_batch, D_h]
  std::vector<at::Tensor> dtran_part;   // per output h: [chunks, max_batch, D] partial gradients
  std::vector<at::Tensor> nll_part;     // per output h: [chunks] float64
};

// A predictor evaluated over the variables of several subjects: one segment of rows per subject.
struct PredictorRun {
  const MlpPredictor* mlp = nullptr;
  const HypercubePredictor* cube = nullptr;
  bool shared = true;  // parameters in the shared layout, else in each subject's
  int64_t n_props = 0, n_out = 0, rows = 0, n_params = 0;
  struct Segment {
    int subject;
    int64_t row0, rows, param_offset;  // param_offset: the predictor's first parameter in its layout
    int64_t block0 = 0, blocks = 0;    // its blocks, consecutive in `blocks`
  };
  struct Block {
    int segment;
    int64_t row0, rows;
    int64_t pos, n;  // its place in the feature-major buffers, in rows, and its rows padded (dense_rows)
  };
  std::vector<Segment> segments;
  std::vector<Block> blocks;
  int64_t padded_rows = 0;  // the blocks' padded rows together
  // MLP layers: offsets of W_l [in, out] and b_l [out] relative to the first parameter, and their widths.
  std::vector<int64_t> w_off, b_off, w_in, w_out;
  int64_t w_max = 0;
  // MLP: the scaled properties, feature-major per block: block b's part is [n_props, b.n] from b.pos · n_props.
  // Hypercube: `input` is the cube indices [R, K] int64.
  at::Tensor input;
  std::vector<at::Tensor> input_parts;  // while building: each segment's part of `input`, [rows, n_props]
  // MLP: each hidden layer's activations for the blocks of one wave (the step runs a wave of subjects at a
  // time, forward to backward): block b's part is [width, b.n] from (b.pos - base) · width, where base is the
  // pos of the wave's first block. The same memory serves every wave, so a wave's activations are read back
  // from the cache they were written to rather than from memory (hidden_rows: its size in padded rows).
  std::vector<at::Tensor> hidden;
  int64_t hidden_rows = 0, base = 0;
  at::Tensor out, dout;  // the modes and their gradient, feature-major [n_out, R]
  at::Tensor partial;    // MLP: gradients per block [blocks, n_params]
};

// One work item of a regression pass: a subject's input or output slot, one chunk of its variables.
struct Item {
  int subject, slot;
  int64_t chunk, j0, cols;
};

// Consecutive subjects [s0, s1) whose step runs together, and their work: [in0, in1) of the projections'
// items, [out0, out1) of the output pass's, [grad0, grad1) of the modes' gradients', and per predictor run its
// segments [seg0, seg1) and blocks [block0, block1).
struct Wave {
  int s0 = 0, s1 = 0;
  int64_t in0 = 0, in1 = 0, out0 = 0, out1 = 0, grad0 = 0, grad1 = 0;
  struct Run {
    int64_t seg0 = 0, seg1 = 0, block0 = 0, block1 = 0;
  };
  std::vector<Run> runs;
};

// ---- the output pass's latent drive -----------------------------------------------------------------------
// Compiled per x86-64 feature level (MSLR_VECTOR_CLONES); the products and the residual pass are the
// regression kernels of kernels.h.

// z[j] = Σ_k tr[k] · ut[k, j] for j < cols: one row of tran · uᵀ. With the latent width D known at compile
// time the sum over k unrolls and the loop over j vectorises with the row in registers; this replaces a BLAS
// product whose inner dimension (D) is too short for it to run well.
template <class T, int D>
MSLR_VECTOR_CLONES void latent_row(const T* __restrict tr, const T* __restrict ut, int64_t ld,
                                   T* __restrict z, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    T v = tr[0] * ut[j];
    for (int k = 1; k < D; ++k)
      v += tr[k] * ut[k * ld + j];
    z[j] = v;
  }
}

template <class T>
MSLR_VECTOR_CLONES void latent_row_any(const T* __restrict tr, const T* __restrict ut, int64_t ld, int64_t D,
                                       T* __restrict z, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j)
    z[j] = 0;
  for (int64_t k = 0; k < D; ++k)
    for (int64_t j = 0; j < cols; ++j)
      z[j] += tr[k] * ut[k * ld + j];
}

template <class T>
void latent(const T* tr, const T* ut, int64_t ld, int64_t D, T* z, int64_t cols) {
  switch (D) {
#define MSLR_LATENT_CASE(n) \
  case n:                   \
    return latent_row<T, n>(tr, ut, ld, z, cols);
    MSLR_LATENT_CASE(1)
    MSLR_LATENT_CASE(2)
    MSLR_LATENT_CASE(3)
    MSLR_LATENT_CASE(4)
    MSLR_LATENT_CASE(5)
    MSLR_LATENT_CASE(6)
    MSLR_LATENT_CASE(7)
    MSLR_LATENT_CASE(8)
    MSLR_LATENT_CASE(9)
    MSLR_LATENT_CASE(10)
    MSLR_LATENT_CASE(11)
    MSLR_LATENT_CASE(12)
    MSLR_LATENT_CASE(13)
    MSLR_LATENT_CASE(14)
    MSLR_LATENT_CASE(15)
    MSLR_LATENT_CASE(16)
#undef MSLR_LATENT_CASE
    default:
      return latent_row_any<T>(tr, ut, ld, D, z, cols);
  }
}

}  // namespace

std::string batched_step_gap(const ModelSpec& spec) {
  if (spec.shared_mapping) return "a shared mapping";
  if (spec.mapping.kind == MappingSpec::kLinear) return "a linear mapping";
  if (!spec.direct_pairs.empty()) return "direct pairs";
  for (const auto& o : spec.outputs)
    if (o.nonlinearity == Activation::kPrelu) return "a prelu output";
  for (const auto& g : spec.inputs)
    if (g.modes == ModeSource::kPredicted && g.predictor.kind == PredictorSpec::kMlp &&
        g.predictor.activation == Activation::kPrelu)
      return "a prelu predictor";
  for (const auto& o : spec.outputs)
    if (o.modes == ModeSource::kPredicted && o.predictor.kind == PredictorSpec::kMlp &&
        o.predictor.activation == Activation::kPrelu)
      return "a prelu predictor";
  return "";
}

struct BatchedModel::Impl {
  virtual ~Impl() = default;
  virtual int size() const = 0;
  bool shared_held = false;                // see BatchedModel::hold_shared
  int64_t wave_bytes = 0;                  // see BatchedModel::set_wave_bytes (0: the step's choice)
  BatchedModel::Phases* phases = nullptr;  // see BatchedModel::time_phases
  virtual void run(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
                   const at::Tensor& shared_params, const std::vector<at::Tensor>* subject_grads,
                   const std::vector<at::Tensor>* shared_grads,
                   const std::vector<std::vector<at::Tensor>>* means, double* nll) = 0;
};

namespace {

using Phases = BatchedModel::Phases;

// Adds the time since the previous lap to a phase of `into`; does nothing when `into` is null.
class PhaseClock {
 public:
  explicit PhaseClock(Phases* into) : into_(into), t_(now()) {}
  void lap(double Phases::*phase) {
    if (!into_) return;
    const auto t = now();
    into_->*phase += std::chrono::duration<double>(t - t_).count();
    t_ = t;
  }

 private:
  static std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }
  Phases* into_;
  std::chrono::steady_clock::time_point t_;
};

template <class T>
class Engine final : public BatchedModel::Impl {
 public:
  Engine(const SharedModules& shared, std::vector<BatchedSubject> subjects);
  int size() const override { return static_cast<int>(plans_.size()); }
  void run(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
           const at::Tensor& shared_params, const std::vector<at::Tensor>* subject_grads,
           const std::vector<at::Tensor>* shared_grads, const std::vector<std::vector<at::Tensor>>* means,
           double* nll) override;

 private:
  // Pointers of one call.
  struct Call {
    const Minibatch* batch;
    std::vector<const T*> params;  // per subject
    std::vector<T*> grads;         // per subject (step only)
    std::vector<T*> shared_grads;  // per subject (step only)
    const T* shared = nullptr;
    const std::vector<std::vector<at::Tensor>>* means = nullptr;  // forward only
    double* nll = nullptr;
  };

  int add_to_run(const ModePredictor* pred, bool shared_pred, const ParamLayout& layout, int key, int subject,
                 const at::Tensor& props, int64_t* row0);
  // A slot's modes and their gradient (p nullptr when nothing needs it), transposed.
  ModesT<const T> modes_t(const ModeRef& r) const;
  ModesT<T> grad_t(const ModeRef& r) const;
  // Owned modes: the parameters transposed for the step, and their gradient transposed back.
  void owned_in(const Call& c);
  void owned_out(const Call& c);
  T* scratch(int64_t n);
  double* dscratch(int64_t n);
  // This thread's row pointers `which` (0 or 1): the rows of the minibatch of subject s, i0 .. i0 + n, in
  // `series` [T, d] shifted by `shift`, from variable j0.
  const T* const* sample_rows(const Minibatch& mb, int s, const void* series, int64_t d, int64_t shift,
                              int64_t i0, int64_t n, int64_t j0, int which);

  void predictors_forward(const Call& c, const Wave& w);
  void predictors_backward(const Call& c, const Wave& w);
  void mlp_forward(const Call& c, PredictorRun& r, const PredictorRun::Block& b);
  // The block's backward pass; blocks up to `last` (exclusive) are this thread's to come.
  void mlp_backward(const Call& c, PredictorRun& r, int64_t block, int64_t last);
  // The input of layer l of a block, [w_in[l], n] feature-major: the properties or a hidden layer's
  // activations.
  const T* weight_input(const PredictorRun& r, int64_t block, int64_t l) const;
  void projections(const Call& c, const Wave& w);
  template <bool kGrad>
  void outputs(const Call& c, const Wave& w);
  void mode_gradients(const Call& c, const Wave& w);
  // The waves for `threads` threads: wave_bytes each when set, else a subject per wave on one thread and
  // kWaveBytes a thread on more.
  std::vector<Wave> make_waves(int threads) const;

  const SharedModules& shared_;
  std::vector<SubjectPlan> plans_;
  std::vector<PredictorRun> runs_;
  std::map<int, int> run_of_key_;
  std::vector<Item> items_in_, items_out_, items_grad_;
  std::vector<Wave> waves_;  // for the thread count and wave_bytes of the last call
  int waves_threads_ = 0;
  int64_t waves_bytes_ = 0;
  int64_t scratch_size_ = 0, dscratch_size_ = 0, rows_size_ = 0;
  // Per thread, tensors rather than std::vector: LibTorch's allocator starts them on a cache line, where
  // std::vector's storage is 16-byte aligned and every vector the kernels read or write in it would straddle
  // two lines (the large step's output pass and predictors' backward took ~20% longer on such a buffer).
  std::vector<at::Tensor> scratch_, dscratch_;
  std::vector<std::vector<const T*>> rows_;  // per thread: row pointers for the regression kernels
};

template <class T>
Engine<T>::Engine(const SharedModules& shared, std::vector<BatchedSubject> subjects) : shared_(shared) {
  const at::ScalarType dtype = c10::CppTypeToScalarType<T>::value;
  const std::string gap = batched_step_gap(shared.spec());
  MSLR_CHECK(gap.empty(), "the batched step does not cover ", gap);
  int64_t max_batch = 1, max_modes = 1, mlp_scratch = 0;
  for (size_t si = 0; si < subjects.size(); ++si) {
    const int s = static_cast<int>(si);
    BatchedSubject& b = subjects[si];
    const SubjectModel& m = *b.model;
    MSLR_CHECK(b.max_batch >= 0, "subject '", m.name(), "': negative batch size");
    SubjectPlan p;
    p.model = &m;
    p.max_batch = std::max<int64_t>(b.max_batch, 1);
    max_batch = std::max(max_batch, p.max_batch);
    auto props = [&](const std::string& group) {
      auto it = b.props.find(group);
      MSLR_CHECK(it != b.props.end(), "subject '", m.name(), "' has no properties for group '", group,
                 "', whose modes are predicted from them");
      return it->second;
    };
    auto series = [&](const std::string& group, int64_t d) {
      auto it = b.groups.find(group);
      MSLR_CHECK(it != b.groups.end(), "subject '", m.name(), "' has no group '", group, "'");
      const at::Tensor& x = it->second;
      MSLR_CHECK(x.device().is_cpu() && x.scalar_type() == dtype && x.is_contiguous() && x.dim() == 2 &&
                     x.size(1) == d,
                 "subject '", m.name(), "', group '", group,
                 "': the batched step needs a contiguous CPU [T, ", d, "] series of the model's dtype");
      p.keep.push_back(x);
      return static_cast<const void*>(x.data_ptr());
    };
    // Where a slot's modes come from in the step (either side: the same code).
    auto mode_ref = [&](const ModeSlot& slot) {
      ModeRef r;
      switch (slot.source) {
        case ModeSource::kPredicted:
          r.kind = ModeRef::kPredicted;
          if (slot.side == ModeSlot::kInput && shared.spec().p_modes_mean)
            r.alpha = 1.0 / static_cast<double>(slot.rows);
          r.run = add_to_run(
              slot.predictor, !slot.own_predictor, slot.own_predictor ? m.layout() : shared.layout(),
              2 * slot.index + (slot.side == ModeSlot::kOutput), s, props(slot.group), &r.row0);
          break;
        case ModeSource::kOwned: {
          r.kind = ModeRef::kOwned;
          const ParamEntry& e = m.layout()[slot.owned];  // [d, K]
          r.offset = e.offset;
          r.t = at::zeros({e.shape[1], e.shape[0]}, at::TensorOptions().dtype(dtype));
          r.dt = at::zeros_like(r.t);
          break;
        }
        case ModeSource::kGiven:  // never a slot's source: given slots are fixed ones
        case ModeSource::kFixed:
          MSLR_CHECK(slot.fixed.defined(), "subject '", m.name(), "': the given modes of ", slot.side_name(),
                     " group '", slot.group, "' were not set from its data");
          if (!slot.identity) {
            r.kind = ModeRef::kFixed;
            r.t = slot.fixed.to(dtype).t().contiguous();
          }
          break;
      }
      return r;
    };
    const bool concat = shared.spec().mapping.kind == MappingSpec::kConcat;
    int64_t col = 0;
    for (int g = 0; g < m.n_inputs(); ++g) {
      const InputSpec& spec = shared.spec().inputs[g];
      InputPlan ip;
      ip.d = m.d_in(g);
      ip.K = spec.n_modes;
      ip.h = concat ? 0 : g;
      ip.col = concat ? col : 0;
      col += ip.K;
      ip.series = series(spec.group, ip.d);
      ip.modes = mode_ref(m.p_slot(g));
      p.in.push_back(ip);
    }
    const auto trans = shared.spec().trans_dims();
    for (int h = 0; h < m.n_outputs(); ++h) {
      const OutputSpec& spec = shared.spec().outputs[h];
      OutputPlan op;
      op.d = m.d_out(h);
      op.D = trans[h];
      op.act = spec.nonlinearity;
      op.series = series(spec.group, op.d);
      max_modes = std::max(max_modes, op.D);
      const ParamLayout& l = m.layout();
      op.psi = l[m.psi_index(h)].offset;
      if (spec.scales) op.scale = l[l.index_of("scale." + spec.group)].offset;
      if (spec.offsets) op.offset = l[l.index_of("offset." + spec.group)].offset;
      op.modes = mode_ref(m.u_slot(h));
      p.out.push_back(op);
    }
    const auto opts = at::TensorOptions().dtype(dtype);
    for (const auto& op : p.out) {
      const int64_t chunks = (op.d + kOutputColumns - 1) / kOutputColumns;
      p.tran.push_back(at::zeros({p.max_batch, op.D}, opts));
      p.dtran.push_back(at::zeros({p.max_batch, op.D}, opts));
      p.dtran_part.push_back(at::zeros({chunks, p.max_batch, op.D}, opts));
      p.nll_part.push_back(at::zeros({chunks}, opts.dtype(at::kDouble)));
    }
    plans_.push_back(std::move(p));
  }

  // Work items, in subject order: the projections by groups of rows (each row's projection is a sum over
  // all the group's variables), the output pass and the modes' gradients by chunks of variables.
  for (int s = 0; s < size(); ++s) {
    const SubjectPlan& p = plans_[s];
    auto add = [&](std::vector<Item>& items, int slot, int64_t d, int64_t step) {
      for (int64_t c = 0, j0 = 0; j0 < d; ++c, j0 += step)
        items.push_back({s, slot, c, j0, std::min(step, d - j0)});
    };
    for (int g = 0; g < static_cast<int>(p.in.size()); ++g) {
      const ModeRef::Kind k = p.in[g].modes.kind;
      if (k == ModeRef::kIdentity) continue;
      add(items_in_, g, p.max_batch, kProjectionRows);
      if (k == ModeRef::kPredicted || k == ModeRef::kOwned) add(items_grad_, g, p.in[g].d, kGradientColumns);
    }
    for (int h = 0; h < static_cast<int>(p.out.size()); ++h)
      add(items_out_, h, p.out[h].d, kOutputColumns);
  }

  // Predictor buffers, now that every segment is known.
  for (PredictorRun& r : runs_) {
    const auto opts = at::TensorOptions().dtype(dtype);
    const at::Tensor rows_in = at::cat(r.input_parts);  // [R, n_props] or [R, K]
    r.input_parts.clear();
    r.out = at::zeros({r.n_out, r.rows}, opts);
    r.dout = at::zeros({r.n_out, r.rows}, opts);
    // Blocks are cut from each segment alone, so a subject's blocks do not depend on the other subjects.
    for (size_t si = 0; si < r.segments.size(); ++si) {
      auto& seg = r.segments[si];
      seg.block0 = static_cast<int64_t>(r.blocks.size());
      for (int64_t r0 = 0; r0 < seg.rows; r0 += kBlockRows) {
        const int64_t rows = std::min(kBlockRows, seg.rows - r0);
        r.blocks.push_back(
            {static_cast<int>(si), seg.row0 + r0, rows, r.padded_rows, kernels::dense_rows(rows)});
        r.padded_rows += r.blocks.back().n;
      }
      seg.blocks = static_cast<int64_t>(r.blocks.size()) - seg.block0;
    }
    if (!r.mlp) {
      r.input = rows_in.contiguous();
      continue;
    }
    // Feature-major blocks of the properties, zero in the padding rows.
    r.input = at::zeros({r.padded_rows * r.n_props}, opts);
    for (const auto& b : r.blocks)
      r.input.narrow(0, b.pos * r.n_props, r.n_props * b.n)
          .view({r.n_props, b.n})
          .narrow(1, 0, b.rows)
          .copy_(rows_in.narrow(0, b.row0, b.rows).t());
    for (size_t l = 0; l < r.w_out.size(); ++l)
      r.w_max = std::max({r.w_max, r.w_in[l], r.w_out[l]});
    r.hidden.resize(r.w_out.size() - 1);  // sized by run() for its waves
    r.partial = at::zeros({static_cast<int64_t>(r.blocks.size()), r.n_params}, opts);
    mlp_scratch = std::max(mlp_scratch, 2 * kBlockRows * r.w_max);
  }
  // Per-thread scratch: the largest need of any work item.
  scratch_size_ =
      std::max({(2 * kOutputRows + 5) * kOutputColumns,  // the output pass: outputs, gradient, vectors
                mlp_scratch});                           // MLP: a block's gradients
  dscratch_size_ = kOutputColumns;
  rows_size_ = 2 * max_batch;
}

template <class T>
int Engine<T>::add_to_run(const ModePredictor* pred, bool shared_pred, const ParamLayout& layout, int key,
                          int subject, const at::Tensor& props, int64_t* row0) {
  auto found = run_of_key_.find(key);
  if (found == run_of_key_.end()) {
    PredictorRun r;
    r.mlp = dynamic_cast<const MlpPredictor*>(pred);
    r.cube = dynamic_cast<const HypercubePredictor*>(pred);
    MSLR_CHECK(r.mlp || r.cube, "the batched step knows MLP and hypercube predictors only");
    r.shared = shared_pred;
    r.n_props = pred->n_props();
    r.n_out = pred->n_out();
    const int first = r.mlp ? r.mlp->weights()[0] : r.cube->values_index();
    const int64_t base = layout[first].offset;
    if (r.mlp) {
      // The layers' parameters are declared consecutively: W_0, b_0, W_1, b_1, ...
      int64_t expect = base;
      for (size_t l = 0; l < r.mlp->weights().size(); ++l) {
        const ParamEntry& w = layout[r.mlp->weights()[l]];
        const ParamEntry& bias = layout[r.mlp->biases()[l]];
        MSLR_CHECK(w.offset == expect && bias.offset == w.offset + w.numel && bias.numel == w.shape[1],
                   "the batched step needs an MLP's parameters declared consecutively");
        r.w_off.push_back(w.offset - base);
        r.b_off.push_back(bias.offset - base);
        r.w_in.push_back(w.shape[0]);
        r.w_out.push_back(w.shape[1]);
        expect = bias.offset + bias.numel;
      }
      r.n_params = expect - base;
    } else {
      r.n_params = layout[first].numel;
    }
    found = run_of_key_.emplace(key, static_cast<int>(runs_.size())).first;
    runs_.push_back(std::move(r));
  }
  PredictorRun& r = runs_[found->second];
  const at::ScalarType dtype = c10::CppTypeToScalarType<T>::value;
  const int first = r.mlp ? dynamic_cast<const MlpPredictor&>(*pred).weights()[0]
                          : dynamic_cast<const HypercubePredictor&>(*pred).values_index();
  const int64_t n = props.size(0);
  // The prepared input of this segment, appended to the run's.
  at::Tensor prepared = pred->prepare(props.to(at::kDouble)).to(r.mlp ? dtype : at::kLong);
  prepared = prepared.contiguous();
  r.input_parts.push_back(prepared);
  *row0 = r.rows;
  r.segments.push_back({subject, r.rows, n, layout[first].offset});
  r.rows += n;
  return found->second;
}

template <class T>
ModesT<const T> Engine<T>::modes_t(const ModeRef& r) const {
  switch (r.kind) {
    case ModeRef::kPredicted: {
      const PredictorRun& run = runs_[r.run];
      return {run.out.template data_ptr<T>() + r.row0, run.rows};
    }
    case ModeRef::kOwned:
    case ModeRef::kFixed:
      return {r.t.template data_ptr<T>(), r.t.size(1)};
    case ModeRef::kIdentity:
      break;
  }
  return {};
}

template <class T>
ModesT<T> Engine<T>::grad_t(const ModeRef& r) const {
  switch (r.kind) {
    case ModeRef::kPredicted: {
      const PredictorRun& run = runs_[r.run];
      if (run.shared && shared_held) return {};  // only the held predictor would read it
      return {run.dout.template data_ptr<T>() + r.row0, run.rows};
    }
    case ModeRef::kOwned:
      return {r.dt.template data_ptr<T>(), r.dt.size(1)};
    default:
      return {};
  }
}

template <class T>
void Engine<T>::owned_in(const Call& c) {
  at::parallel_for(0, size(), 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      SubjectPlan& p = plans_[s];
      auto in = [&](ModeRef& r) {
        if (r.kind != ModeRef::kOwned) return;
        const int64_t K = r.t.size(0), d = r.t.size(1);
        const T* m = c.params[s] + r.offset;  // [d, K]
        T* t = r.t.template data_ptr<T>();
        for (int64_t j = 0; j < d; ++j)
          for (int64_t k = 0; k < K; ++k)
            t[k * d + j] = m[j * K + k];
      };
      for (auto& ip : p.in)
        in(ip.modes);
      for (auto& op : p.out)
        in(op.modes);
    }
  });
}

template <class T>
void Engine<T>::owned_out(const Call& c) {
  at::parallel_for(0, size(), 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      SubjectPlan& p = plans_[s];
      auto out = [&](const ModeRef& r) {
        if (r.kind != ModeRef::kOwned) return;
        const int64_t K = r.dt.size(0), d = r.dt.size(1);
        const T* t = r.dt.template data_ptr<T>();
        T* g = c.grads[s] + r.offset;  // [d, K]
        for (int64_t j = 0; j < d; ++j)
          for (int64_t k = 0; k < K; ++k)
            g[j * K + k] = t[k * d + j];
      };
      for (const auto& ip : p.in)
        out(ip.modes);
      for (const auto& op : p.out)
        out(op.modes);
    }
  });
}

template <class T>
const T* const* Engine<T>::sample_rows(const Minibatch& mb, int s, const void* series, int64_t d,
                                       int64_t shift, int64_t i0, int64_t n, int64_t j0, int which) {
  const int t = at::get_thread_num();
  MSLR_CHECK(n <= rows_size_ / 2 && t < static_cast<int>(rows_.size()), "batched step: row pointers too few");
  const T** rows = rows_[t].data() + which * (rows_size_ / 2);
  const T* x = static_cast<const T*>(series);
  const int64_t* times = mb.times[s];
  for (int64_t i = 0; i < n; ++i)
    rows[i] = x + (times[i0 + i] + shift) * d + j0;
  return rows;
}

template <class T>
T* Engine<T>::scratch(int64_t n) {
  const int t = at::get_thread_num();
  MSLR_CHECK(n <= scratch_size_ && t < static_cast<int>(scratch_.size()), "batched step: scratch too small");
  return scratch_[t].template data_ptr<T>();
}

template <class T>
double* Engine<T>::dscratch(int64_t n) {
  const int t = at::get_thread_num();
  MSLR_CHECK(n <= dscratch_size_ && t < static_cast<int>(dscratch_.size()),
             "batched step: scratch too small");
  return dscratch_[t].template data_ptr<double>();
}

// ---- predictors ------------------------------------------------------------------------------------------

// A block's layers, feature-major: h_l [w_out[l], n] = act(W_lᵀ · h_{l-1} + b_l), each product one call of the
// dense kernels (kernels.h) straight on the parameters. The last layer writes the modes [n_out, R] in place,
// or, for a block with padding rows (a segment's last), into scratch from which its rows are copied.
template <class T>
void Engine<T>::mlp_forward(const Call& c, PredictorRun& r, const PredictorRun::Block& b) {
  const auto& seg = r.segments[b.segment];
  const T* params = (r.shared ? c.shared : c.params[seg.subject]) + seg.param_offset;
  const T* in = r.input.template data_ptr<T>() + b.pos * r.n_props;
  const size_t layers = r.w_off.size();
  for (size_t l = 0; l < layers; ++l) {
    const int64_t wi = r.w_in[l], wo = r.w_out[l];
    const bool last = l + 1 == layers, in_place = last && b.rows == b.n;
    T* modes = r.out.template data_ptr<T>() + b.row0;  // [n_out, R]
    T* out = in_place ? modes
             : last   ? scratch(wo * b.n)
                      : r.hidden[l].template data_ptr<T>() + (b.pos - r.base) * wo;  // [wo, ld_out]
    const int64_t ld_out = in_place ? r.rows : b.n;
    // A float32 tanh layer's activation is applied to the tiles in registers, not by a pass of its own.
    const bool fused = !last && std::is_same<T, float>::value && r.mlp->activation() == Activation::kTanh;
    kernels::DenseEpilogue<T> e;
    if (fused) e.kind = kernels::DenseEpilogue<T>::kTanh;
    kernels::dense_forward<T>(b.n, wi, wo, params + r.w_off[l], wo, 1, params + r.b_off[l], in, b.n, out,
                              ld_out, e);
    if (last) {
      if (!in_place)
        for (int64_t j = 0; j < wo; ++j)
          std::copy_n(out + j * b.n, b.rows, modes + j * r.rows);
      break;
    }
    if (!fused) kernels::activate<T>(r.mlp->activation(), out, wo * b.n);
    in = out;
  }
}

template <class T>
const T* Engine<T>::weight_input(const PredictorRun& r, int64_t block, int64_t l) const {
  const int64_t pos = r.blocks[block].pos;
  return l == 0 ? r.input.template data_ptr<T>() + pos * r.n_props
                : r.hidden[l - 1].template data_ptr<T>() + (pos - r.base) * r.w_in[l];
}

// The block's backward pass, feature-major: per layer from the last, [dW_l; db_l] from the layer's input and
// the gradient at its output, then the gradient at its input dh = W_l · dz through the activation below.
template <class T>
void Engine<T>::mlp_backward(const Call& c, PredictorRun& r, int64_t block, int64_t last) {
  const auto& b = r.blocks[block];
  const auto& seg = r.segments[b.segment];
  const T* params = (r.shared ? c.shared : c.params[seg.subject]) + seg.param_offset;
  T* grad = r.partial.template data_ptr<T>() + block * r.n_params;
  T* buf[2] = {scratch(2 * kBlockRows * r.w_max), nullptr};  // two [w_max, n], used in turn
  buf[1] = buf[0] + kBlockRows * r.w_max;
  // dz [w_out[l], ld_dz]: the gradient at layer l's output; first the modes' gradient [n_out, R], read in
  // place, or, for a block with padding rows, copied with zeros in those rows.
  T* dz = r.dout.template data_ptr<T>() + b.row0;
  int64_t ld_dz = r.rows;
  if (b.rows < b.n) {
    for (int64_t j = 0; j < r.n_out; ++j) {
      T* d = buf[0] + j * b.n;
      std::copy_n(dz + j * r.rows, b.rows, d);
      std::fill(d + b.rows, d + b.n, T(0));
    }
    dz = buf[0];
    ld_dz = b.n;
  }
  const int64_t L = static_cast<int64_t>(r.w_off.size());
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t wi = r.w_in[l], wo = r.w_out[l];
    const T* in = weight_input(r, block, l);  // [wi, n]
    // While it computes, the weight gradient asks for the input of the weight gradient two kernels on (of
    // this block or of the next one this thread takes): the activations are read back from memory, and
    // without this each kernel would start by waiting for its input.
    const int64_t ahead_l = l >= 2 ? l - 2 : L + l - 2, ahead_block = l >= 2 ? block : block + 1;
    const T* ahead = ahead_l >= 0 && ahead_block < last ? weight_input(r, ahead_block, ahead_l) : nullptr;
    const int64_t ahead_bytes =
        ahead ? static_cast<int64_t>(sizeof(T)) * r.w_in[ahead_l] * r.blocks[ahead_block].n : 0;
    kernels::dense_weight_grad<T>(b.n, wi, wo, in, b.n, dz, ld_dz, grad + r.w_off[l], grad + r.b_off[l],
                                  ahead, ahead_bytes);
    if (l == 0) break;
    T* dh = dz == buf[0] ? buf[1] : buf[0];  // [wi, n]: the gradient at the layer's input
    // dh [wi, n] = W_l [wi, wo] · dz [wo, n]: the forward kernel with A(k, j) = W_l[j, k]; through a tanh
    // below, its derivative 1 - h² is applied to the tiles in registers.
    const bool through_tanh = r.mlp->activation() == Activation::kTanh;
    kernels::DenseEpilogue<T> e;
    if (through_tanh) e = {kernels::DenseEpilogue<T>::kTanhBackward, in};
    kernels::dense_forward<T>(b.n, wo, wi, params + r.w_off[l], 1, wo, nullptr, dz, ld_dz, dh, b.n, e);
    if (!through_tanh) kernels::activation_backward<T>(r.mlp->activation(), in, dh, wi * b.n);
    dz = dh;
    ld_dz = b.n;
  }
}

template <class T>
void Engine<T>::predictors_forward(const Call& c, const Wave& w) {
  for (size_t ri = 0; ri < runs_.size(); ++ri) {
    PredictorRun& r = runs_[ri];
    const Wave::Run& wr = w.runs[ri];
    if (wr.block0 < wr.block1) r.base = r.blocks[wr.block0].pos;
    at::parallel_for(wr.block0, wr.block1, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t bi = b0; bi < b1; ++bi) {
        const auto& b = r.blocks[bi];
        if (r.mlp) {
          mlp_forward(c, r, b);
          continue;
        }
        // Hypercube: the sum of the values of the K cubes that contain each point.
        const auto& seg = r.segments[b.segment];
        const T* values = (r.shared ? c.shared : c.params[seg.subject]) + seg.param_offset;
        const int64_t K = r.input.size(1), n_out = r.n_out;
        const int64_t* idx = r.input.template data_ptr<int64_t>() + b.row0 * K;
        T* out = r.out.template data_ptr<T>() + b.row0;  // [n_out, R]
        for (int64_t i = 0; i < b.rows; ++i)
          for (int64_t j = 0; j < n_out; ++j) {
            T o = 0;
            for (int64_t k = 0; k < K; ++k)
              o += values[idx[i * K + k] * n_out + j];
            out[j * r.rows + i] = o;
          }
      }
    });
  }
}

template <class T>
void Engine<T>::predictors_backward(const Call& c, const Wave& w) {
  for (size_t ri = 0; ri < runs_.size(); ++ri) {
    PredictorRun& r = runs_[ri];
    const Wave::Run& wr = w.runs[ri];
    if (r.shared && shared_held) continue;
    if (wr.block0 < wr.block1) r.base = r.blocks[wr.block0].pos;
    if (r.mlp)
      at::parallel_for(wr.block0, wr.block1, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t bi = b0; bi < b1; ++bi)
          mlp_backward(c, r, bi, b1);
      });
    // Per segment: its blocks' gradients added in block order (MLP), or its points' gradients scattered into
    // the cube values in row order (hypercube), into the subject's own gradient.
    at::parallel_for(wr.seg0, wr.seg1, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t si = s0; si < s1; ++si) {
        const auto& seg = r.segments[si];
        T* dest = (r.shared ? c.shared_grads[seg.subject] : c.grads[seg.subject]) + seg.param_offset;
        if (r.mlp) {
          const T* g = r.partial.template data_ptr<T>() + seg.block0 * r.n_params;
          std::copy_n(g, r.n_params, dest);
          for (int64_t bi = 1; bi < seg.blocks; ++bi)
            for (int64_t j = 0; j < r.n_params; ++j)
              dest[j] += g[bi * r.n_params + j];
          continue;
        }
        const int64_t K = r.input.size(1), n_out = r.n_out;
        const int64_t* idx = r.input.template data_ptr<int64_t>() + seg.row0 * K;
        const T* dout = r.dout.template data_ptr<T>() + seg.row0;  // [n_out, R]
        for (int64_t i = 0; i < seg.rows; ++i)
          for (int64_t k = 0; k < K; ++k) {
            T* v = dest + idx[i * K + k] * n_out;
            for (int64_t j = 0; j < n_out; ++j)
              v[j] += dout[j * r.rows + i];
          }
      }
    });
  }
}

// ---- the regression passes -------------------------------------------------------------------------------

template <class T>
void Engine<T>::projections(const Call& c, const Wave& w) {
  const Minibatch& mb = *c.batch;
  // proj_g = alpha · x_g · p_g, into its columns of the transformed latents: by groups of rows, each row's
  // dot products with the modes read from the recording where the row lies.
  at::parallel_for(w.in0, w.in1, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const Item& item = items_in_[it];
      const int s = item.subject;
      SubjectPlan& p = plans_[s];
      const InputPlan& ip = p.in[item.slot];
      const int64_t rows = std::min(item.cols, mb.count[s] - item.j0);
      if (rows <= 0) continue;
      const int64_t D = p.out[ip.h].D;
      const ModesT<const T> pt = modes_t(ip.modes);
      kernels::row_dots<T>(rows, ip.d, sample_rows(mb, s, ip.series, ip.d, -1, item.j0, rows, 0, 0), ip.K,
                           pt.p, pt.ld, static_cast<T>(ip.modes.alpha),
                           p.tran[ip.h].template data_ptr<T>() + item.j0 * D + ip.col, D);
    }
  });
  // Inputs with identity modes are their own projections.
  at::parallel_for(w.s0, w.s1, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      SubjectPlan& p = plans_[s];
      const int64_t B = mb.count[s];
      const int64_t* times = mb.times[s];
      for (const InputPlan& ip : p.in) {
        if (ip.modes.kind != ModeRef::kIdentity) continue;
        const int64_t D = p.out[ip.h].D;
        T* tran = p.tran[ip.h].template data_ptr<T>() + ip.col;
        const T* series = static_cast<const T*>(ip.series);
        for (int64_t i = 0; i < B; ++i)
          std::memcpy(tran + i * D, series + (times[i] - 1) * ip.d, sizeof(T) * ip.d);
      }
    }
  });
}

template <class T>
template <bool kGrad>
void Engine<T>::outputs(const Call& c, const Wave& w) {
  const Minibatch& mb = *c.batch;
  // Per chunk of an output group's variables, group of rows by group of rows (each group's rows read side by
  // side along the whole chunk, the sums over rows continued from the last group's): z = tran · uᵀ row by row
  // into a block that stays in L2, the activation, the residual pass (the NLL's sums and d(w · NLL)/dz, or the
  // means), then the group's d tran (this chunk's part) and du from the block.
  at::parallel_for(w.out0, w.out1, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const Item& item = items_out_[it];
      const int s = item.subject;
      SubjectPlan& p = plans_[s];
      const OutputPlan& op = p.out[item.slot];
      const int64_t D = op.D, cols = item.cols, j0 = item.j0, B = mb.count[s];
      const bool identity = op.act == Activation::kIdentity;
      const T* params = c.params[s];
      const ModesT<const T> ut = modes_t(op.modes);
      const T* u = ut.p + j0;  // [D, cols] the chunk's u-modes, transposed, leading dimension ut.ld
      const T* tran = p.tran[item.slot].template data_ptr<T>();
      constexpr int64_t R = kOutputRows, C = kOutputColumns;
      T* o = scratch((2 * R + 5) * C);   // [R, C] a group's outputs s(z)
      T* dz = identity ? o : o + R * C;  // [R, C] their gradient (in place for the identity)
      T* vec = o + 2 * R * C;
      T *ipsi = vec, *scale = vec + C, *offset = vec + 2 * C;
      T *doff = vec + 3 * C, *dscale = vec + 4 * C;
      const T* psi = params + op.psi + j0;
      for (int64_t j = 0; j < cols; ++j) {
        ipsi[j] = T(1) / psi[j];
        scale[j] = op.scale >= 0 ? params[op.scale + j0 + j] : T(1);
        offset[j] = op.offset >= 0 ? params[op.offset + j0 + j] : T(0);
      }
      // Identity outputs: the residual pass computes the latent drive itself (and du), so the block of
      // outputs is never stored. Otherwise the outputs s(z) first, row by row, into the block.
      const bool fused = identity && D <= kernels::kFusedModes;
      const ModesT<T> dut = kGrad ? grad_t(op.modes) : ModesT<T>{};
      double* sq = dscratch(cols);
      T* dtran_part = p.dtran_part[item.slot].template data_ptr<T>() + item.chunk * p.max_batch * D;
      const T* const* y_all = sample_rows(mb, s, op.series, op.d, 0, 0, B, j0, 0);
      for (int64_t g0 = 0; g0 == 0 || g0 < B; g0 += R) {  // once at least: no rows still set the sums
        const int64_t m = std::min(R, B - g0);
        const T* const* y = y_all + g0;
        if (g0 + R < B)
          kernels::prefetch_heads<T>(std::min(R, B - g0 - R), std::min(kOutputAhead, cols), y + R);
        if (!fused)
          for (int64_t i = 0; i < m; ++i) {
            latent(tran + (g0 + i) * D, u, ut.ld, D, o + i * C, cols);
            if (!identity) kernels::activate<T>(op.act, o + i * C, cols);
          }
        kernels::ResidualArgs<T> a;
        a.resume = g0 > 0;
        a.ahead = kOutputAhead;
        if (fused) {
          a.tran = tran + g0 * D;
          a.D = D;
          a.uT = u;
          a.ld_u = ut.ld;
          if (dut.p) {
            a.duT = dut.p + j0;
            a.ld_du = dut.ld;
          }
        }
        a.m = m;
        a.cols = cols;
        a.o = o;
        a.ld_o = C;
        a.y = y;
        if (op.scale >= 0 || op.offset >= 0) {  // else the pass takes scale 1 and offset 0 for granted
          a.scale = scale;
          a.offset = offset;
        }
        a.ipsi = ipsi;
        a.weight = static_cast<T>(mb.weight[s]);
        a.sq = sq;
        if (kGrad) {
          a.dz = dz;
          a.ld_dz = C;
          a.doff = doff;
          a.dscale = dscale;
        } else {
          a.mean = (*c.means)[s][item.slot].template data_ptr<T>() + g0 * op.d + j0;
          a.ld_mean = op.d;
        }
        kernels::residual_pass<T>(a);
        if (!kGrad) continue;
        if (!identity)
          for (int64_t i = 0; i < m; ++i)
            kernels::activation_backward<T>(op.act, o + i * C, dz + i * C, cols);
        const T** dz_rows = rows_[at::get_thread_num()].data() + rows_size_ / 2;
        for (int64_t i = 0; i < m; ++i)
          dz_rows[i] = dz + i * C;
        // This chunk's part of d tran = dz · u, and du = dzᵀ · tran (transposed: duᵀ = tranᵀ · dz), continued.
        kernels::row_dots<T>(m, cols, dz_rows, D, u, ut.ld, T(1), dtran_part + g0 * D, D);
        if (dut.p && !fused) {
          if (g0 == 0)
            for (int64_t k = 0; k < D; ++k)
              std::fill_n(dut.p + j0 + k * dut.ld, cols, T(0));
          kernels::row_sums_into<T>(m, cols, dz_rows, D, tran + g0 * D, D, dut.p + j0, dut.ld);
        }
      }
      if (kGrad) {
        T* grads = c.grads[s];
        for (int64_t j = 0; j < cols; ++j) {
          const double ps = static_cast<double>(psi[j]);
          grads[op.psi + j0 + j] =
              static_cast<T>(0.5 * mb.weight[s] * (static_cast<double>(B) - sq[j] / ps) / ps);
          if (op.offset >= 0) grads[op.offset + j0 + j] = doff[j];
          if (op.scale >= 0) grads[op.scale + j0 + j] = dscale[j];
        }
      }
      double nll = 0.0;  // this chunk's part of the NLL, in float64
      for (int64_t j = 0; j < cols; ++j) {
        const double ps = static_cast<double>(psi[j]);
        nll += static_cast<double>(B) * std::log(ps) + sq[j] / ps;
      }
      p.nll_part[item.slot].template data_ptr<double>()[item.chunk] = 0.5 * nll;
    }
  });
  // Per subject: the NLL and the gradient of the transformed latents, summed over chunks in chunk order.
  at::parallel_for(w.s0, w.s1, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      SubjectPlan& p = plans_[s];
      const int64_t B = mb.count[s];
      double total = 0.0;
      for (size_t h = 0; h < p.out.size(); ++h) {
        const OutputPlan& op = p.out[h];
        double v = 0.5 * static_cast<double>(B * op.d) * kLog2Pi;
        const double* part = p.nll_part[h].template data_ptr<double>();
        for (int64_t ch = 0; ch < p.nll_part[h].size(0); ++ch)
          v += part[ch];
        total += v;
        if (!kGrad) continue;
        const int64_t D = op.D, chunks = p.dtran_part[h].size(0);
        const T* dpart = p.dtran_part[h].template data_ptr<T>();
        T* dtran = p.dtran[h].template data_ptr<T>();
        // Chunk by chunk over the whole [B, D] block (each value's sum still in chunk order, from zero).
        std::fill_n(dtran, B * D, T(0));
        for (int64_t ch = 0; ch < chunks; ++ch) {
          const T* part = dpart + ch * p.max_batch * D;
          for (int64_t q = 0; q < B * D; ++q)
            dtran[q] += part[q];
        }
      }
      c.nll[s] = mb.weight[s] * total;
    }
  });
}

template <class T>
void Engine<T>::mode_gradients(const Call& c, const Wave& w) {
  const Minibatch& mb = *c.batch;
  // d p_g = alpha · x_gᵀ · d proj_g, transposed (d p_gᵀ = alpha · d proj_gᵀ · x_g), chunk by chunk of x_g's
  // variables, each a sum over the minibatch's rows read where they lie (no reduction across chunks), taken
  // group of rows by group of rows in row order (the bits of one sum over all the rows) and scaled by alpha at
  // the end.
  at::parallel_for(w.grad0, w.grad1, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const Item& item = items_grad_[it];
      const int s = item.subject;
      const SubjectPlan& p = plans_[s];
      const InputPlan& ip = p.in[item.slot];
      const ModesT<T> dpt = grad_t(ip.modes);
      if (!dpt.p) continue;
      const int64_t D = p.out[ip.h].D, B = mb.count[s];
      const T* const* x = sample_rows(mb, s, ip.series, ip.d, -1, 0, B, item.j0, 0);
      const T* dproj = p.dtran[ip.h].template data_ptr<T>() + ip.col;
      T* out = dpt.p + item.j0;
      for (int64_t k = 0; k < ip.K; ++k)
        std::fill_n(out + k * dpt.ld, item.cols, T(0));
      for (int64_t i = 0; i < B; i += kGradientRows) {
        if (i + kGradientRows < B)
          kernels::prefetch_heads<T>(std::min(kGradientRows, B - i - kGradientRows),
                                     std::min(kernels::kRowsAhead, item.cols), x + i + kGradientRows);
        kernels::row_sums_into<T>(std::min(kGradientRows, B - i), item.cols, x + i, ip.K, dproj + i * D, D,
                                  out, dpt.ld);
      }
      const T alpha = static_cast<T>(ip.modes.alpha);
      if (alpha != T(1))
        for (int64_t k = 0; k < ip.K; ++k)
          for (int64_t j = 0; j < item.cols; ++j)
            out[k * dpt.ld + j] *= alpha;
    }
  });
}

template <class T>
std::vector<Wave> Engine<T>::make_waves(int threads) const {
  std::vector<Wave> waves;
  auto count = [](const std::vector<Item>& items, int s0, int s1) {
    return std::count_if(items.begin(), items.end(),
                         [&](const Item& i) { return i.subject >= s0 && i.subject < s1; });
  };
  Wave w;
  int64_t bytes = 0;
  for (int s = 0; s < size(); ++s) {
    const SubjectPlan& p = plans_[s];
    for (const InputPlan& ip : p.in)
      bytes += p.max_batch * ip.d * static_cast<int64_t>(sizeof(T));
    for (const OutputPlan& op : p.out)
      bytes += p.max_batch * op.d * static_cast<int64_t>(sizeof(T));
    w.s1 = s + 1;
    const int64_t per_thread = wave_bytes > 0 ? wave_bytes : threads == 1 ? 1 : kWaveBytes;
    if (bytes >= per_thread * threads || w.s1 == size()) {
      w.in1 = w.in0 + count(items_in_, w.s0, w.s1);
      w.out1 = w.out0 + count(items_out_, w.s0, w.s1);
      w.grad1 = w.grad0 + count(items_grad_, w.s0, w.s1);
      // Each run's segments are in subject order (the constructor adds them so).
      for (size_t ri = 0; ri < runs_.size(); ++ri) {
        const PredictorRun& r = runs_[ri];
        Wave::Run wr;
        wr.seg0 = waves.empty() ? 0 : waves.back().runs[ri].seg1;
        wr.seg1 = wr.seg0;
        while (wr.seg1 < static_cast<int64_t>(r.segments.size()) && r.segments[wr.seg1].subject < w.s1)
          ++wr.seg1;
        wr.block0 = wr.seg0 < wr.seg1 ? r.segments[wr.seg0].block0 : 0;
        wr.block1 = wr.seg0 < wr.seg1 ? r.segments[wr.seg1 - 1].block0 + r.segments[wr.seg1 - 1].blocks : 0;
        w.runs.push_back(wr);
      }
      waves.push_back(w);
      w = Wave{w.s1, w.s1, w.in1, w.in1, w.out1, w.out1, w.grad1, w.grad1, {}};
      bytes = 0;
    }
  }
  return waves;
}

template <class T>
void Engine<T>::run(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
                    const at::Tensor& shared_params, const std::vector<at::Tensor>* subject_grads,
                    const std::vector<at::Tensor>* shared_grads,
                    const std::vector<std::vector<at::Tensor>>* means, double* nll) {
  const int n = size();
  const at::ScalarType dtype = c10::CppTypeToScalarType<T>::value;
  MSLR_CHECK(static_cast<int>(batch.times.size()) == n && static_cast<int>(batch.count.size()) == n &&
                 static_cast<int>(batch.weight.size()) == n && static_cast<int>(subject_params.size()) == n,
             "batched step: expected ", n, " subjects' minibatches and parameters");
  auto check = [&](const at::Tensor& t, int64_t numel, const char* what) {
    MSLR_CHECK(t.defined() && t.device().is_cpu() && t.scalar_type() == dtype && t.is_contiguous() &&
                   t.numel() == numel,
               "batched step: ", what, " must be a contiguous CPU tensor of ", numel,
               " values of the model's dtype");
  };
  Call c;
  c.batch = &batch;
  c.means = means;
  c.nll = nll;
  check(shared_params, shared_.layout().numel(), "the shared parameters");
  c.shared = shared_params.data_ptr<T>();
  for (int s = 0; s < n; ++s) {
    MSLR_CHECK(batch.count[s] >= 0 && batch.count[s] <= plans_[s].max_batch, "batched step: subject '",
               plans_[s].model->name(), "' has ", batch.count[s], " samples, more than ",
               plans_[s].max_batch);
    const int64_t numel = plans_[s].model->layout().numel();
    check(subject_params[s], numel, "a subject's parameters");
    c.params.push_back(subject_params[s].data_ptr<T>());
    if (subject_grads) {
      check((*subject_grads)[s], numel, "a subject's gradient");
      check((*shared_grads)[s], shared_.layout().numel(), "a subject's shared gradient");
      c.grads.push_back((*subject_grads)[s].data_ptr<T>());
      c.shared_grads.push_back((*shared_grads)[s].data_ptr<T>());
      std::fill_n(c.grads.back(), numel, T(0));
      std::fill_n(c.shared_grads.back(), shared_.layout().numel(), T(0));
    }
    if (means)
      for (size_t h = 0; h < plans_[s].out.size(); ++h)
        check((*means)[s][h], batch.count[s] * plans_[s].out[h].d, "a subject's means");
  }
  const int threads = at::get_num_threads();
  if (static_cast<int>(scratch_.size()) < threads) {  // only when the thread count grows
    for (int t = static_cast<int>(scratch_.size()); t < threads; ++t) {
      scratch_.push_back(at::zeros({scratch_size_}, at::TensorOptions().dtype(dtype)));
      dscratch_.push_back(at::zeros({dscratch_size_}, at::TensorOptions().dtype(at::kDouble)));
    }
    rows_.resize(threads, std::vector<const T*>(rows_size_));
  }
  if (waves_.empty() || waves_threads_ != threads || waves_bytes_ != wave_bytes) {
    waves_ = make_waves(threads);
    waves_threads_ = threads;
    waves_bytes_ = wave_bytes;
    // The MLPs' activations: room for the blocks of the largest wave.
    for (size_t ri = 0; ri < runs_.size(); ++ri) {
      PredictorRun& r = runs_[ri];
      if (!r.mlp) continue;
      int64_t rows = 0;
      for (const Wave& w : waves_) {
        const Wave::Run& wr = w.runs[ri];
        if (wr.block0 < wr.block1)
          rows = std::max(rows,
                          r.blocks[wr.block1 - 1].pos + r.blocks[wr.block1 - 1].n - r.blocks[wr.block0].pos);
      }
      if (rows <= r.hidden_rows) continue;
      for (size_t l = 0; l < r.hidden.size(); ++l)
        r.hidden[l] = at::zeros({rows * r.w_out[l]}, at::TensorOptions().dtype(dtype));
      r.hidden_rows = rows;
    }
  }
  PhaseClock clock(phases);
  owned_in(c);
  for (const Wave& w : waves_) {
    predictors_forward(c, w);
    clock.lap(&Phases::predictors_forward);
    projections(c, w);
    clock.lap(&Phases::projections);
    if (subject_grads) {
      outputs<true>(c, w);
      clock.lap(&Phases::outputs);
      mode_gradients(c, w);
    } else {
      outputs<false>(c, w);
    }
    clock.lap(subject_grads ? &Phases::mode_gradients : &Phases::outputs);
    if (!subject_grads) continue;
    predictors_backward(c, w);
    clock.lap(&Phases::predictors_backward);
  }
  if (subject_grads) owned_out(c);
}

}  // namespace

BatchedModel::BatchedModel(const SharedModules& shared, std::vector<BatchedSubject> subjects,
                           at::ScalarType dtype) {
  if (dtype == at::kFloat)
    impl_ = std::make_unique<Engine<float>>(shared, std::move(subjects));
  else if (dtype == at::kDouble)
    impl_ = std::make_unique<Engine<double>>(shared, std::move(subjects));
  else
    fail("the batched step runs in float32 or float64");
}

BatchedModel::~BatchedModel() = default;

void BatchedModel::hold_shared(bool held) {
  impl_->shared_held = held;
}

void BatchedModel::set_wave_bytes(int64_t bytes) {
  MSLR_CHECK(bytes > 0, "the batched step's waves need a positive size, got ", bytes);
  impl_->wave_bytes = bytes;
}

void BatchedModel::time_phases(Phases* into) {
  impl_->phases = into;
}

int BatchedModel::size() const {
  return impl_->size();
}

void BatchedModel::step(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
                        const at::Tensor& shared_params, const std::vector<at::Tensor>& subject_grads,
                        const std::vector<at::Tensor>& shared_grads, double* nll) {
  MSLR_CHECK(subject_grads.size() == subject_params.size() && shared_grads.size() == subject_params.size(),
             "batched step: one gradient buffer per subject");
  impl_->run(batch, subject_params, shared_params, &subject_grads, &shared_grads, nullptr, nll);
}

void BatchedModel::forward(const Minibatch& batch, const std::vector<at::Tensor>& subject_params,
                           const at::Tensor& shared_params, const std::vector<std::vector<at::Tensor>>& means,
                           double* nll) {
  MSLR_CHECK(means.size() == subject_params.size(), "batched forward: one set of means per subject");
  impl_->run(batch, subject_params, shared_params, nullptr, nullptr, &means, nll);
}

}  // namespace mslr
