// One subject's latent regression model (docs/DESIGN.md §1) and the modules shared by all subjects
// (docs/DESIGN.md §2).
//
//   proj_g = x_g · p_g          x_g [n, d_in_g], p_g [d_in_g, d_proj_g]
//   tran   = m(proj_1 … proj_G)
//   z_h    = tran_h · u_hᵀ      u_h [d_out_h, d_trans_h]
//   mn_h   = scale_h ⊙ s_h(z_h) + offset_h + Σ_(g,h) c_gh ⊙ x_g
//   y_h    ~ Normal(mn_h, diag(psi_h))
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mslr/core/rng.h"
#include "mslr/model/mapping.h"
#include "mslr/model/model_spec.h"
#include "mslr/model/params.h"
#include "mslr/model/predictor.h"

namespace mslr {

// The views of the parameters one forward pass reads: the subject's own and the shared ones.
struct ParamViews {
  std::vector<at::Tensor> subject;
  std::vector<at::Tensor> shared;
};

// One of the model's mode matrices: p_g of input g [d_in_g, n_modes] or u_h of output h [d_out_h, d_trans_h].
// The two sides are built, predicted, checked and read by the same code; a slot says which side it is on and
// where its values come from (docs/DESIGN.md §2).
struct ModeSlot {
  enum Side { kInput, kOutput };
  Side side = kInput;
  int index = 0;      // g or h, within its side
  std::string group;  // the data group
  std::string name;   // "p.<group>" or "u.<group>": its parameters' and its checkpoint dataset's name
  ModeSource source = ModeSource::kPredicted;
  int64_t rows = 0, cols = 0;
  const ModePredictor* predictor = nullptr;  // the shared or the subject's own; null unless predicted
  bool own_predictor = false;                // that predictor's parameters are in the subject's layout
  int owned = -1;                            // layout index of owned modes, else -1
  at::Tensor fixed;                          // fixed modes, else undefined (given ones until set_given)
  bool identity = false;                     // fixed identity p: proj = x, no product
  bool given = false;  // source kGiven: fixed modes (source kFixed here) that the subject's data gives
  const char* side_name() const { return side == kInput ? "input" : "output"; }
};

// Modes supplied per call (a conditional forward): p[g] [d_in_g, d_proj_g] and u[h] [d_out_h, d_trans_h], as
// used by the forward pass (predicted p-modes already divided by N). Only predicted groups need entries.
struct ModeSet {
  std::vector<at::Tensor> p, u;
  at::Tensor& of(const ModeSlot& slot) {
    return slot.side == ModeSlot::kInput ? p[slot.index] : u[slot.index];
  }
  const at::Tensor* find(const ModeSlot& slot) const {
    const auto& side = slot.side == ModeSlot::kInput ? p : u;
    return slot.index < static_cast<int>(side.size()) && side[slot.index].defined() ? &side[slot.index]
                                                                                    : nullptr;
  }
};

// The sizes a subject model is built for, per data group.
struct SubjectShape {
  std::map<std::string, int64_t> widths;  // group -> number of variables d
  std::map<std::string, int64_t>
      n_props;  // group -> number of properties per variable (groups that have them)
};

// The parts of the model that all subjects share: the shared predictors and the shared part of m.
class SharedModules {
 public:
  // `n_props`: number of properties of every group whose modes come from a shared predictor.
  SharedModules(ModelSpec spec, const std::map<std::string, int64_t>& n_props);

  const ModelSpec& spec() const { return spec_; }
  const ParamLayout& layout() const { return layout_; }
  // The shared predictor of input g / output h, or nullptr when its modes are not shared-predicted.
  const ModePredictor* predictor(ModeSlot::Side side, int index) const { return pred_[side][index].get(); }
  const Mapping* mapping() const { return mapping_.get(); }  // the shared part of m, or nullptr
  at::Tensor initial_values(uint64_t seed, at::ScalarType dtype) const;

 private:
  ModelSpec spec_;
  ParamLayout layout_;
  std::vector<std::unique_ptr<ModePredictor>> pred_[2];  // by side
  std::unique_ptr<Mapping> mapping_;
};

class SubjectModel {
 public:
  // Declares the subject's parameters. Throws, naming the subject and group, when `shape` lacks a group the
  // model reads or widths do not fit (identity fixed modes, direct pairs, property counts).
  SubjectModel(const SharedModules& shared, const SubjectShape& shape, std::string name = "subject");

  const std::string& name() const { return name_; }
  const ModelSpec& spec() const { return shared_.spec(); }
  const SharedModules& shared() const { return shared_; }
  const ParamLayout& layout() const { return layout_; }
  int n_inputs() const { return static_cast<int>(d_in_.size()); }
  int n_outputs() const { return static_cast<int>(d_out_.size()); }
  int64_t d_in(int g) const { return d_in_[g]; }
  int64_t d_out(int h) const { return d_out_[h]; }
  int64_t d_trans(int h) const { return d_trans_[h]; }

  // Initial values of this subject's parameters, drawn from (seed, subject key).
  at::Tensor initial_values(uint64_t seed, uint64_t subject_key, at::ScalarType dtype) const;

  // Every mode matrix: the inputs' p_g, then the outputs' u_h.
  const std::vector<ModeSlot>& mode_slots() const { return slots_; }
  const ModeSlot& p_slot(int g) const { return slots_[g]; }
  const ModeSlot& u_slot(int h) const { return slots_[n_inputs() + h]; }
  // Replaces the fixed modes (default: identity) of input or output `index`; the shape is checked.
  void set_fixed(ModeSlot::Side side, int index, const at::Tensor& modes);
  // Sets every given slot's modes from a subject's data (SubjectData::modes: by slot name "p.<group>" /
  // "u.<group>", else by group); throws naming the subject and group when one is missing or misshapen.
  void set_given(const std::map<std::string, at::Tensor>& modes);
  // Moves the fixed modes to a dtype and device.
  void to(const at::TensorOptions& options);

  // Turns a slot's predictor output [rows, cols] into the modes the forward pass uses (÷N for p when
  // p_modes_mean).
  at::Tensor from_prediction(const ModeSlot& slot, const at::Tensor& raw) const;
  // Evaluates every predicted mode from the subject's properties: props[group] [d, n_props].
  ModeSet predict_modes(const std::map<std::string, at::Tensor>& props, const ParamViews& params) const;
  // Checks that `props` holds [d, n_props] for every predicted group; throws naming group and sizes.
  void check_props(const std::map<std::string, at::Tensor>& props) const;

  // The latents of x[g] [n, d_in_g]: the projections proj[g] = x_g·p_g [n, d_proj_g] and the transformed
  // latents tran[h] [n, d_trans_h] (docs/DESIGN.md §1).
  struct Latents {
    std::vector<at::Tensor> proj, tran;
  };
  Latents latents(const std::vector<at::Tensor>& x, const ModeSet& modes, const ParamViews& params) const;
  // x[g]: [n, d_in_g] -> mn[h]: [n, d_out_h].
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& x, const ModeSet& modes,
                                  const ParamViews& params) const;
  // The NLL of y[h] [n, d_out_h] given the means, summed over output groups (fused path where it can be).
  at::Tensor nll(const std::vector<at::Tensor>& y, const std::vector<at::Tensor>& mn,
                 const ParamViews& params) const;
  // The same with plain LibTorch ops: the reference.
  at::Tensor nll_reference(const std::vector<at::Tensor>& y, const std::vector<at::Tensor>& mn,
                           const ParamViews& params) const;
  // A draw of y_h given its mean [n, d_out_h].
  at::Tensor sample(int h, const at::Tensor& mn, const ParamViews& params, Rng& rng) const;

  // Recursive generation over n_time points. An input group named in `feed` (input -> output group) is the
  // model's own output at t-1; otherwise it is read from `given` [n_time, d] where present, or else it must be
  // an output group, fed back. Fed-back outputs start (row 0) from `initial` [d] or [1, d], else from row 0
  // of `given`. Returns, per output group, the values [n_time, d] (drawn with `noise`, or
  // the means when it is null) and the noise-free means [n_time, d] (row 0 NaN: it has no predecessor).
  struct Generated {
    std::map<std::string, at::Tensor> values, means;
  };
  Generated generate(int64_t n_time, const std::map<std::string, at::Tensor>& given,
                     const std::map<std::string, at::Tensor>& initial, const ModeSet& modes,
                     const ParamViews& params, Rng* noise,
                     const std::map<std::string, std::string>& feed = {}) const;

  // Layout indices of the per-output parameters (for the psi clamp and for tests).
  int psi_index(int h) const { return psi_[h]; }

 private:
  // A slot's modes for one forward pass: owned, fixed, or supplied in `modes` (checked).
  at::Tensor mode(const ModeSlot& slot, const ModeSet& modes, const ParamViews& params) const;
  // Builds the slot of input or output `index` of width `rows`, adding its parameters to the layout.
  ModeSlot make_slot(ModeSlot::Side side, int index, int64_t rows, const SubjectShape& shape);

  const SharedModules& shared_;
  std::string name_;
  ParamLayout layout_;
  std::vector<int64_t> d_in_, d_out_, d_trans_;
  std::unique_ptr<Mapping> mapping_;                            // the subject's part of m
  std::vector<ModeSlot> slots_;                                 // inputs, then outputs
  std::vector<std::unique_ptr<ModePredictor>> own_predictors_;  // what per-subject slots point at
  std::vector<int> psi_, scale_, offset_, slope_;               // per output; -1 when absent
  std::vector<int> direct_;                                     // per direct pair
};

}  // namespace mslr
