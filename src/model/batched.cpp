#include "mslr/model/batched.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "mslr/core/error.h"
#include "mslr/model/kernels.h"
#include "vector_clones.h"

namespace mslr {
namespace {

// Variables per work item of the regression passes: a chunk of the minibatch's rows (B x 256) and its
// gradient stay in L2 (256 measured faster than 128 and 512 here).
constexpr int64_t kColumns = 256;
// Variables per block of a predictor's MLP: its activations stay in L2.
constexpr int64_t kBlockRows = 512;
constexpr double kLog2Pi = 1.8378770664093453;

// Where a mode matrix (p [d, K] or u [d, D]) comes from and where its gradient goes.
struct ModeRef {
  enum Kind { kIdentity, kPredicted, kOwned, kFixed } kind = kIdentity;
  int run = -1;        // kPredicted: the predictor run
  int64_t row0 = 0;    // kPredicted: the subject's first row in the run
  int64_t offset = 0;  // kOwned: the parameter's offset in the subject's layout
  at::Tensor fixed;    // kFixed: the matrix
  double alpha = 1.0;  // the modes are alpha × their source (1/N for p-modes that are a mean over N)
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
  std::vector<at::Tensor> proj_part;    // per input g: [chunks, max_batch, K] partial projections
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
  // MLP: the scaled properties, then each hidden layer's activations, feature-major per block: block b's part
  // is [width, b.n] from b.pos · width. Hypercube: `input` is the cube indices [R, K] int64.
  at::Tensor input;
  std::vector<at::Tensor> input_parts;  // while building: each segment's part of `input`, [rows, n_props]
  std::vector<at::Tensor> hidden;
  at::Tensor out, dout;  // [R, n_out]
  at::Tensor partial;    // MLP: gradients per block [blocks, n_params]
};

// One work item of a regression pass: a subject's input or output slot, one chunk of its variables.
struct Item {
  int subject, slot;
  int64_t chunk, j0, cols;
};

// ---- the chunk kernels -----------------------------------------------------------------------------------
// One work item each: a chunk of at most kColumns variables of one subject's group over the minibatch's rows.
// The rows are copied from the series into a scratch block that stays in L2, where small BLAS products run
// at the machine's rate; the element-wise work is one vectorised pass. These loops are compiled per x86-64
// feature level (MSLR_VECTOR_CLONES): they are most of a step's time.

// Asks for the cache lines of n values at p: the rows of a minibatch are scattered over the series, and
// without this every row starts with a full memory latency.
template <class T>
inline void prefetch(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < n * static_cast<int64_t>(sizeof(T)); b += 64)
    __builtin_prefetch(c + b);
}

template <class T>
struct Rows {  // the minibatch's rows of a [T, d] series, shifted by -1 for inputs
  const T* series;
  int64_t d;
  const int64_t* times;
  int64_t count, shift;
  const T* row(int64_t i, int64_t j0) const { return series + (times[i] + shift) * d + j0; }
};

// block[i, 0:cols] = the rows' values in columns [j0, j0 + cols); block [count, ld].
template <class T>
void copy_rows(const Rows<T>& r, int64_t j0, int64_t cols, T* block, int64_t ld) {
  for (int64_t i = 0; i < std::min<int64_t>(4, r.count); ++i)
    prefetch(r.row(i, j0), cols);
  for (int64_t i = 0; i < r.count; ++i) {
    if (i + 4 < r.count) prefetch(r.row(i + 4, j0), cols);  // a row takes less time to copy than to arrive
    std::memcpy(block + i * ld, r.row(i, j0), sizeof(T) * cols);
  }
}

// The output pass of one chunk, row by row: z = tran · uᵀ for the chunk's columns, mn = scale ⊙ s(z) +
// offset, the residual against y and Σ_i residual² per variable (into sq); then either the means (forward)
// or d(w · NLL)/dz into dz and the offsets' and scales' gradients (step).
template <class T>
struct ElementwiseArgs {
  Rows<T> y;
  int64_t j0, cols, ld;
  Activation act;
  T weight;
  const T* tran;  // [B, D]
  const T* ut;    // [D, ld] the chunk's u-modes, transposed
  int64_t D;
  T* dz;                           // [B, ld] d(w · NLL)/dz (step)
  T* z;                            // [ld] one row's latent drive tran · uᵀ
  T* o;                            // [ld] its s(z) when s is not the identity
  const T *ipsi, *scale, *offset;  // [cols]; ones / zeros when the model has no scales / offsets
  double* sq;
  T *doff, *dscale;  // [cols], accumulated
  T* means;          // forward only: [B, y.d] (the chunk's columns written), else nullptr
};

// One row of the output pass: e = scale ⊙ out + offset - y, sq += e², and either the means (mn) or the
// gradient dz = scale ⊙ w e / psi with the offsets' and scales' gradients. The arguments never alias, which
// lets the compiler vectorise the loop.
template <class T>
MSLR_VECTOR_CLONES void residual_row(const T* __restrict y, const T* __restrict out,
                                     const T* __restrict scale, const T* __restrict offset,
                                     const T* __restrict ipsi, T w, double* __restrict sq, T* __restrict doff,
                                     T* __restrict dscale, T* __restrict dz, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    const T e = (scale[j] * out[j] + offset[j]) - y[j];
    sq[j] += static_cast<double>(e) * static_cast<double>(e);
    const T g = w * e * ipsi[j];  // d(w · NLL) / d mean
    doff[j] += g;
    dscale[j] += g * out[j];
    dz[j] = g * scale[j];
  }
}

template <class T>
MSLR_VECTOR_CLONES void mean_row(const T* __restrict y, const T* __restrict out, const T* __restrict scale,
                                 const T* __restrict offset, double* __restrict sq, T* __restrict mn,
                                 int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    mn[j] = scale[j] * out[j] + offset[j];
    const T e = mn[j] - y[j];
    sq[j] += static_cast<double>(e) * static_cast<double>(e);
  }
}

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

template <class T>
void output_elementwise(const ElementwiseArgs<T>& a) {
  const bool identity = a.act == Activation::kIdentity;
  for (int64_t i = 0; i < a.y.count; ++i) {
    if (i + 1 < a.y.count) prefetch(a.y.row(i + 1, a.j0), a.cols);
    const T* y = a.y.row(i, a.j0);
    latent(a.tran + i * a.D, a.ut, a.ld, a.D, a.z, a.cols);
    const T* out = a.z;
    if (!identity) {
      std::memcpy(a.o, out, sizeof(T) * a.cols);
      kernels::activate<T>(a.act, a.o, a.cols);
      out = a.o;
    }
    if (a.means) {
      mean_row(y, out, a.scale, a.offset, a.sq, a.means + i * a.y.d + a.j0, a.cols);
      continue;
    }
    T* dz = a.dz + i * a.ld;
    residual_row(y, out, a.scale, a.offset, a.ipsi, a.weight, a.sq, a.doff, a.dscale, dz, a.cols);
    if (!identity) kernels::activation_backward<T>(a.act, a.o, dz, a.cols);
  }
}

#define MSLR_INSTANTIATE(T)                                                                               \
  template void residual_row<T>(const T*, const T*, const T*, const T*, const T*, T, double*, T*, T*, T*, \
                                int64_t);                                                                 \
  template void mean_row<T>(const T*, const T*, const T*, const T*, double*, T*, int64_t);

MSLR_INSTANTIATE(float)
MSLR_INSTANTIATE(double)
#undef MSLR_INSTANTIATE

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
  const T* mode_ptr(const Call& c, int s, const ModeRef& r) const;
  T* mode_grad_ptr(const Call& c, int s, const ModeRef& r) const;
  T* scratch(int64_t n);
  double* dscratch(int64_t n);
  // The minibatch's rows at t-1 of an input chunk, copied into this thread's scratch: [count, kColumns].
  const T* input_chunk(const Minibatch& mb, const Item& item);

  void predictors_forward(const Call& c);
  void predictors_backward(const Call& c);
  void mlp_forward(const Call& c, PredictorRun& r, const PredictorRun::Block& b);
  void mlp_backward(const Call& c, PredictorRun& r, int64_t block);
  void projections(const Call& c);
  template <bool kGrad>
  void outputs(const Call& c);
  void mode_gradients(const Call& c);

  const SharedModules& shared_;
  std::vector<SubjectPlan> plans_;
  std::vector<PredictorRun> runs_;
  std::map<int, int> run_of_key_;
  std::vector<Item> items_in_, items_out_, items_grad_;
  int64_t scratch_size_ = 0, dscratch_size_ = 0;
  std::vector<std::vector<T>> scratch_;        // per thread
  std::vector<std::vector<double>> dscratch_;  // per thread
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
        case ModeSource::kOwned:
          r.kind = ModeRef::kOwned;
          r.offset = m.layout()[slot.owned].offset;
          break;
        case ModeSource::kGiven:  // never a slot's source: given slots are fixed ones
        case ModeSource::kFixed:
          MSLR_CHECK(slot.fixed.defined(), "subject '", m.name(), "': the given modes of ", slot.side_name(),
                     " group '", slot.group, "' were not set from its data");
          if (!slot.identity) {
            r.kind = ModeRef::kFixed;
            r.fixed = slot.fixed.to(dtype).contiguous();
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
    for (const auto& r : p.in)
      if (r.modes.fixed.defined()) p.keep.push_back(r.modes.fixed);
    for (const auto& r : p.out)
      if (r.modes.fixed.defined()) p.keep.push_back(r.modes.fixed);
    const auto opts = at::TensorOptions().dtype(dtype);
    for (const auto& op : p.out) {
      const int64_t chunks = (op.d + kColumns - 1) / kColumns;
      p.tran.push_back(at::zeros({p.max_batch, op.D}, opts));
      p.dtran.push_back(at::zeros({p.max_batch, op.D}, opts));
      p.dtran_part.push_back(at::zeros({chunks, p.max_batch, op.D}, opts));
      p.nll_part.push_back(at::zeros({chunks}, opts.dtype(at::kDouble)));
    }
    for (const auto& ip : p.in) {
      const int64_t chunks = (ip.d + kColumns - 1) / kColumns;
      p.proj_part.push_back(
          ip.modes.kind == ModeRef::kIdentity ? at::Tensor() : at::zeros({chunks, p.max_batch, ip.K}, opts));
    }
    plans_.push_back(std::move(p));
  }

  // Work items: every chunk of every slot of every subject, in subject order.
  for (int s = 0; s < size(); ++s) {
    const SubjectPlan& p = plans_[s];
    auto add = [&](std::vector<Item>& items, int slot, int64_t d) {
      for (int64_t c = 0, j0 = 0; j0 < d; ++c, j0 += kColumns)
        items.push_back({s, slot, c, j0, std::min(kColumns, d - j0)});
    };
    for (int g = 0; g < static_cast<int>(p.in.size()); ++g) {
      const ModeRef::Kind k = p.in[g].modes.kind;
      if (k == ModeRef::kIdentity) continue;
      add(items_in_, g, p.in[g].d);
      if (k == ModeRef::kPredicted || k == ModeRef::kOwned) add(items_grad_, g, p.in[g].d);
    }
    for (int h = 0; h < static_cast<int>(p.out.size()); ++h)
      add(items_out_, h, p.out[h].d);
  }

  // Predictor buffers, now that every segment is known.
  for (PredictorRun& r : runs_) {
    const auto opts = at::TensorOptions().dtype(dtype);
    const at::Tensor rows_in = at::cat(r.input_parts);  // [R, n_props] or [R, K]
    r.input_parts.clear();
    r.out = at::zeros({r.rows, r.n_out}, opts);
    r.dout = at::zeros({r.rows, r.n_out}, opts);
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
    for (size_t l = 0; l + 1 < r.w_out.size(); ++l)
      r.hidden.push_back(at::zeros({r.padded_rows * r.w_out[l]}, opts));
    r.partial = at::zeros({static_cast<int64_t>(r.blocks.size()), r.n_params}, opts);
    mlp_scratch = std::max(mlp_scratch, 2 * kBlockRows * r.w_max);
  }
  // Per-thread scratch: the largest need of any work item.
  const int64_t cw = kColumns;
  scratch_size_ =
      std::max({(max_batch + max_modes + 8) * cw,  // a chunk's dz, u and the output pass's vectors
                mlp_scratch});  // MLP: a block's gradients, and the gradient of its weights
  dscratch_size_ = cw;
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
const T* Engine<T>::mode_ptr(const Call& c, int s, const ModeRef& r) const {
  switch (r.kind) {
    case ModeRef::kPredicted: {
      const PredictorRun& run = runs_[r.run];
      return run.out.template data_ptr<T>() + r.row0 * run.n_out;
    }
    case ModeRef::kOwned:
      return c.params[s] + r.offset;
    case ModeRef::kFixed:
      return r.fixed.template data_ptr<T>();
    case ModeRef::kIdentity:
      break;
  }
  return nullptr;
}

template <class T>
T* Engine<T>::mode_grad_ptr(const Call& c, int s, const ModeRef& r) const {
  switch (r.kind) {
    case ModeRef::kPredicted: {
      const PredictorRun& run = runs_[r.run];
      if (run.shared && shared_held) return nullptr;  // only the held predictor would read it
      return run.dout.template data_ptr<T>() + r.row0 * run.n_out;
    }
    case ModeRef::kOwned:
      return c.grads[s] + r.offset;
    default:
      return nullptr;
  }
}

template <class T>
T* Engine<T>::scratch(int64_t n) {
  const int t = at::get_thread_num();
  MSLR_CHECK(n <= scratch_size_ && t < static_cast<int>(scratch_.size()), "batched step: scratch too small");
  return scratch_[t].data();
}

template <class T>
const T* Engine<T>::input_chunk(const Minibatch& mb, const Item& item) {
  const InputPlan& ip = plans_[item.subject].in[item.slot];
  const Rows<T> x{static_cast<const T*>(ip.series), ip.d, mb.times[item.subject], mb.count[item.subject], -1};
  T* block = scratch(x.count * kColumns);
  copy_rows(x, item.j0, item.cols, block, kColumns);
  return block;
}

template <class T>
double* Engine<T>::dscratch(int64_t n) {
  const int t = at::get_thread_num();
  MSLR_CHECK(n <= dscratch_size_ && t < static_cast<int>(dscratch_.size()),
             "batched step: scratch too small");
  return dscratch_[t].data();
}

// ---- predictors ------------------------------------------------------------------------------------------

// A block's layers, feature-major: h_l [w_out[l], n] = act(W_lᵀ · h_{l-1} + b_l), each product one call of the
// dense kernels (kernels.h) straight on the parameters; the last layer's output goes through scratch into
// the modes, row-major [rows, n_out].
template <class T>
void Engine<T>::mlp_forward(const Call& c, PredictorRun& r, const PredictorRun::Block& b) {
  const auto& seg = r.segments[b.segment];
  const T* params = (r.shared ? c.shared : c.params[seg.subject]) + seg.param_offset;
  const T* in = r.input.template data_ptr<T>() + b.pos * r.n_props;
  const size_t layers = r.w_off.size();
  for (size_t l = 0; l < layers; ++l) {
    const int64_t wi = r.w_in[l], wo = r.w_out[l];
    const bool last = l + 1 == layers;
    T* out = last ? scratch(wo * b.n) : r.hidden[l].template data_ptr<T>() + b.pos * wo;  // [wo, n]
    kernels::dense_forward<T>(b.n, wi, wo, params + r.w_off[l], wo, 1, params + r.b_off[l], in, b.n, out,
                              b.n);
    if (last) {
      T* modes = r.out.template data_ptr<T>() + b.row0 * wo;
      for (int64_t i = 0; i < b.rows; ++i)
        for (int64_t j = 0; j < wo; ++j)
          modes[i * wo + j] = out[j * b.n + i];
      break;
    }
    kernels::activate<T>(r.mlp->activation(), out, wo * b.n);
    in = out;
  }
}

// The block's backward pass, feature-major: per layer from the last, [dW_l; db_l] from the layer's input and
// the gradient at its output, then the gradient at its input dh = W_l · dz through the activation below.
template <class T>
void Engine<T>::mlp_backward(const Call& c, PredictorRun& r, int64_t block) {
  const auto& b = r.blocks[block];
  const auto& seg = r.segments[b.segment];
  const T* params = (r.shared ? c.shared : c.params[seg.subject]) + seg.param_offset;
  T* grad = r.partial.template data_ptr<T>() + block * r.n_params;
  T* dz = scratch(2 * kBlockRows * r.w_max);  // [w_out[l], n]: the gradient at layer l's output
  T* dh = dz + kBlockRows * r.w_max;          // [w_in[l], n]: at its input
  const int64_t L = static_cast<int64_t>(r.w_off.size());
  {  // the modes' gradient, feature-major, zero in the padding rows
    const T* dout = r.dout.template data_ptr<T>() + b.row0 * r.n_out;
    for (int64_t j = 0; j < r.n_out; ++j) {
      T* d = dz + j * b.n;
      for (int64_t i = 0; i < b.rows; ++i)
        d[i] = dout[i * r.n_out + j];
      std::fill(d + b.rows, d + b.n, T(0));
    }
  }
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t wi = r.w_in[l], wo = r.w_out[l];
    const T* in = l == 0 ? r.input.template data_ptr<T>() + b.pos * r.n_props
                         : r.hidden[l - 1].template data_ptr<T>() + b.pos * wi;  // [wi, n]
    kernels::dense_weight_grad<T>(b.n, wi, wo, in, b.n, dz, b.n, grad + r.w_off[l], grad + r.b_off[l]);
    if (l == 0) break;
    // dh [wi, n] = W_l [wi, wo] · dz [wo, n]: the forward kernel with A(k, j) = W_l[j, k].
    kernels::dense_forward<T>(b.n, wo, wi, params + r.w_off[l], 1, wo, nullptr, dz, b.n, dh, b.n);
    kernels::activation_backward<T>(r.mlp->activation(), in, dh, wi * b.n);
    std::swap(dz, dh);
  }
}

template <class T>
void Engine<T>::predictors_forward(const Call& c) {
  for (PredictorRun& r : runs_) {
    at::parallel_for(0, static_cast<int64_t>(r.blocks.size()), 1, [&](int64_t b0, int64_t b1) {
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
        T* out = r.out.template data_ptr<T>() + b.row0 * n_out;
        for (int64_t i = 0; i < b.rows; ++i) {
          T* o = out + i * n_out;
          for (int64_t j = 0; j < n_out; ++j)
            o[j] = 0;
          for (int64_t k = 0; k < K; ++k) {
            const T* v = values + idx[i * K + k] * n_out;
            for (int64_t j = 0; j < n_out; ++j)
              o[j] += v[j];
          }
        }
      }
    });
  }
}

template <class T>
void Engine<T>::predictors_backward(const Call& c) {
  for (PredictorRun& r : runs_) {
    if (r.shared && shared_held) continue;
    if (r.mlp)
      at::parallel_for(0, static_cast<int64_t>(r.blocks.size()), 1, [&](int64_t b0, int64_t b1) {
        for (int64_t bi = b0; bi < b1; ++bi)
          mlp_backward(c, r, bi);
      });
    // Per segment: its blocks' gradients added in block order (MLP), or its points' gradients scattered into
    // the cube values in row order (hypercube), into the subject's own gradient.
    at::parallel_for(0, static_cast<int64_t>(r.segments.size()), 1, [&](int64_t s0, int64_t s1) {
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
        const T* dout = r.dout.template data_ptr<T>() + seg.row0 * n_out;
        for (int64_t i = 0; i < seg.rows; ++i)
          for (int64_t k = 0; k < K; ++k) {
            T* v = dest + idx[i * K + k] * n_out;
            for (int64_t j = 0; j < n_out; ++j)
              v[j] += dout[i * n_out + j];
          }
      }
    });
  }
}

// ---- the regression passes -------------------------------------------------------------------------------

template <class T>
void Engine<T>::projections(const Call& c) {
  const Minibatch& mb = *c.batch;
  // proj_g = x_g · p_g per chunk of x_g's variables: partial sums per chunk, added in chunk order below.
  at::parallel_for(0, static_cast<int64_t>(items_in_.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const Item& item = items_in_[it];
      const SubjectPlan& p = plans_[item.subject];
      const InputPlan& ip = p.in[item.slot];
      const T* block = input_chunk(mb, item);
      T* out = p.proj_part[item.slot].template data_ptr<T>() + item.chunk * p.max_batch * ip.K;
      kernels::gemm<T>(false, false, mb.count[item.subject], ip.K, item.cols, static_cast<T>(ip.modes.alpha),
                       block, kColumns, mode_ptr(c, item.subject, ip.modes) + item.j0 * ip.K, ip.K, T(0), out,
                       ip.K);
    }
  });
  // The transformed latents: concatenated (or identical) projections.
  at::parallel_for(0, size(), 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      SubjectPlan& p = plans_[s];
      const int64_t B = mb.count[s];
      const int64_t* times = mb.times[s];
      for (size_t g = 0; g < p.in.size(); ++g) {
        const InputPlan& ip = p.in[g];
        const int64_t D = p.out[ip.h].D;
        T* tran = p.tran[ip.h].template data_ptr<T>() + ip.col;
        if (ip.modes.kind == ModeRef::kIdentity) {
          const T* series = static_cast<const T*>(ip.series);
          for (int64_t i = 0; i < B; ++i)
            std::memcpy(tran + i * D, series + (times[i] - 1) * ip.d, sizeof(T) * ip.d);
          continue;
        }
        const int64_t chunks = p.proj_part[g].size(0), K = ip.K;
        const T* part = p.proj_part[g].template data_ptr<T>();
        for (int64_t i = 0; i < B; ++i)
          for (int64_t k = 0; k < K; ++k) {
            T v = 0;
            for (int64_t ch = 0; ch < chunks; ++ch)
              v += part[(ch * p.max_batch + i) * K + k];
            tran[i * D + k] = v;
          }
      }
    }
  });
}

template <class T>
template <bool kGrad>
void Engine<T>::outputs(const Call& c) {
  const Minibatch& mb = *c.batch;
  at::parallel_for(0, static_cast<int64_t>(items_out_.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const Item& item = items_out_[it];
      const int s = item.subject;
      SubjectPlan& p = plans_[s];
      const OutputPlan& op = p.out[item.slot];
      const int64_t D = op.D, cols = item.cols, j0 = item.j0, B = mb.count[s];
      const T* params = c.params[s];
      const T* u = mode_ptr(c, s, op.modes) + j0 * D;  // [cols, D] the chunk's u-modes
      const T* tran = p.tran[item.slot].template data_ptr<T>();
      T* dz = scratch((B + D + 8) * kColumns);  // dz [B, kColumns], u transposed, then per-variable vectors
      T* ut = dz + B * kColumns;
      T* vec = ut + D * kColumns;
      for (int64_t k = 0; k < D; ++k)
        for (int64_t j = 0; j < cols; ++j)
          ut[k * kColumns + j] = u[j * D + k];
      ElementwiseArgs<T> args;
      args.y = {static_cast<const T*>(op.series), op.d, mb.times[s], B, 0};
      args.j0 = j0;
      args.cols = cols;
      args.ld = kColumns;
      args.act = op.act;
      args.weight = static_cast<T>(mb.weight[s]);
      args.tran = tran;
      args.ut = ut;
      args.D = D;
      args.dz = dz;
      args.z = vec;
      args.o = vec + kColumns;
      T* ipsi = args.o + kColumns;
      T* scale = ipsi + kColumns;
      T* offset = scale + kColumns;
      args.doff = offset + kColumns;
      args.dscale = args.doff + kColumns;
      const T* psi = params + op.psi + j0;
      for (int64_t j = 0; j < cols; ++j) {
        ipsi[j] = T(1) / psi[j];
        scale[j] = op.scale >= 0 ? params[op.scale + j0 + j] : T(1);
        offset[j] = op.offset >= 0 ? params[op.offset + j0 + j] : T(0);
        args.doff[j] = args.dscale[j] = 0;
      }
      args.ipsi = ipsi;
      args.scale = scale;
      args.offset = offset;
      args.sq = dscratch(cols);
      std::fill_n(args.sq, cols, 0.0);
      args.means = kGrad ? nullptr : (*c.means)[s][item.slot].template data_ptr<T>();
      // The residual pass (with z = tran · uᵀ row by row), then d tran = dz · u and du = dzᵀ · tran.
      output_elementwise(args);
      if (kGrad) {
        T* grads = c.grads[s];
        T* dtran = p.dtran_part[item.slot].template data_ptr<T>() + item.chunk * p.max_batch * D;
        kernels::gemm<T>(false, false, B, D, cols, T(1), dz, kColumns, u, D, T(0), dtran, D);
        if (T* du = mode_grad_ptr(c, s, op.modes))
          kernels::gemm<T>(true, false, cols, D, B, T(1), dz, kColumns, tran, D, T(0), du + j0 * D, D);
        for (int64_t j = 0; j < cols; ++j) {
          const double ps = static_cast<double>(psi[j]);
          grads[op.psi + j0 + j] =
              static_cast<T>(0.5 * mb.weight[s] * (static_cast<double>(B) - args.sq[j] / ps) / ps);
          if (op.offset >= 0) grads[op.offset + j0 + j] = args.doff[j];
          if (op.scale >= 0) grads[op.scale + j0 + j] = args.dscale[j];
        }
      }
      double nll = 0.0;  // this chunk's part of the NLL, in float64
      for (int64_t j = 0; j < cols; ++j) {
        const double ps = static_cast<double>(psi[j]);
        nll += static_cast<double>(B) * std::log(ps) + args.sq[j] / ps;
      }
      p.nll_part[item.slot].template data_ptr<double>()[item.chunk] = 0.5 * nll;
    }
  });
  // Per subject: the NLL and the gradient of the transformed latents, summed over chunks in chunk order.
  at::parallel_for(0, size(), 1, [&](int64_t s0, int64_t s1) {
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
        for (int64_t i = 0; i < B; ++i)
          for (int64_t k = 0; k < D; ++k) {
            T v2 = 0;
            for (int64_t ch = 0; ch < chunks; ++ch)
              v2 += dpart[(ch * p.max_batch + i) * D + k];
            dtran[i * D + k] = v2;
          }
      }
      c.nll[s] = mb.weight[s] * total;
    }
  });
}

template <class T>
void Engine<T>::mode_gradients(const Call& c) {
  const Minibatch& mb = *c.batch;
  // d p_g = alpha · x_gᵀ · d proj_g, chunk by chunk of x_g's variables (no reduction across chunks).
  at::parallel_for(0, static_cast<int64_t>(items_grad_.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const Item& item = items_grad_[it];
      const SubjectPlan& p = plans_[item.subject];
      const InputPlan& ip = p.in[item.slot];
      T* dp = mode_grad_ptr(c, item.subject, ip.modes);
      if (!dp) continue;
      const T* block = input_chunk(mb, item);
      const int64_t ld = p.out[ip.h].D;
      kernels::gemm<T>(true, false, item.cols, ip.K, mb.count[item.subject], static_cast<T>(ip.modes.alpha),
                       block, kColumns, p.dtran[ip.h].template data_ptr<T>() + ip.col, ld, T(0),
                       dp + item.j0 * ip.K, ip.K);
    }
  });
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
    scratch_.resize(threads, std::vector<T>(scratch_size_));
    dscratch_.resize(threads, std::vector<double>(dscratch_size_));
  }
  PhaseClock clock(phases);
  predictors_forward(c);
  clock.lap(&Phases::predictors_forward);
  projections(c);
  clock.lap(&Phases::projections);
  if (!subject_grads) {
    outputs<false>(c);
    clock.lap(&Phases::outputs);
    return;
  }
  outputs<true>(c);
  clock.lap(&Phases::outputs);
  mode_gradients(c);
  clock.lap(&Phases::mode_gradients);
  predictors_backward(c);
  clock.lap(&Phases::predictors_backward);
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
