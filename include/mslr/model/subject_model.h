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

// Modes supplied per call (a conditional forward): p[g] [d_in_g, d_proj_g] and u[h] [d_out_h, d_trans_h], as
// used by the forward pass (predicted p-modes already divided by N). Only predicted groups need entries.
struct ModeSet {
  std::vector<at::Tensor> p, u;
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
  const ModePredictor* p_predictor(int g) const { return p_pred_[g].get(); }
  const ModePredictor* u_predictor(int h) const { return u_pred_[h].get(); }
  const Mapping* mapping() const { return mapping_.get(); }  // the shared part of m, or nullptr
  at::Tensor initial_values(uint64_t seed, at::ScalarType dtype) const;

 private:
  ModelSpec spec_;
  ParamLayout layout_;
  std::vector<std::unique_ptr<ModePredictor>> p_pred_, u_pred_;
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

  // Replaces fixed modes (default: identity) of input g / output h; shapes are checked.
  void set_fixed_p(int g, const at::Tensor& modes);
  void set_fixed_u(int h, const at::Tensor& modes);
  // Moves the fixed modes to a dtype and device.
  void to(const at::TensorOptions& options);

  // The predictor of input g / output h (the shared one or the subject's own), nullptr when not predicted.
  const ModePredictor* p_predictor(int g) const;
  const ModePredictor* u_predictor(int h) const;
  // True when that predictor's parameters are in the subject's layout (per-subject predictors).
  bool p_predictor_own(int g) const { return own_p_pred_[g] != nullptr; }
  bool u_predictor_own(int h) const { return own_u_pred_[h] != nullptr; }
  // Turns a predictor's output [d, n_modes] into the mode the forward pass uses (÷N for p when p_modes_mean).
  at::Tensor p_from_prediction(int g, const at::Tensor& raw) const;
  at::Tensor u_from_prediction(int h, const at::Tensor& raw) const;
  // The modes that predictors give: "p.<group>" [d_in, n_modes] of input `index` (input) or "u.<group>"
  // [d_out, d_trans] of output `index`, inputs first. The names are those of a checkpoint's modes/.
  struct PredictedMode {
    std::string name;
    std::vector<int64_t> shape;
    bool input;
    int index;
  };
  std::vector<PredictedMode> predicted_modes() const;
  // Evaluates every predicted mode from the subject's properties: props[group] [d, n_props].
  ModeSet predict_modes(const std::map<std::string, at::Tensor>& props, const ParamViews& params) const;
  // Checks that `props` holds [d, n_props] for every predicted group; throws naming group and sizes.
  void check_props(const std::map<std::string, at::Tensor>& props) const;

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

  // Recursive generation over n_time points. Input groups are read from `given` [n_time, d] where present;
  // otherwise an input group must be an output group, and the model's own output at t-1 is fed back (row 0
  // from `initial` [d] or [1, d]). Returns, per output group, the values [n_time, d] (drawn with `noise`, or
  // the means when it is null) and the noise-free means [n_time, d] (row 0 NaN: it has no predecessor).
  struct Generated {
    std::map<std::string, at::Tensor> values, means;
  };
  Generated generate(int64_t n_time, const std::map<std::string, at::Tensor>& given,
                     const std::map<std::string, at::Tensor>& initial, const ModeSet& modes,
                     const ParamViews& params, Rng* noise) const;

  // Fixed modes of input g / output h (undefined when not fixed); p_identity(g): input g's fixed modes are
  // the identity, so that proj = x.
  const at::Tensor& p_fixed(int g) const { return p_fixed_[g]; }
  const at::Tensor& u_fixed(int h) const { return u_fixed_[h]; }
  bool p_identity(int g) const { return p_identity_[g]; }

  // Layout indices of the per-output parameters (for the psi clamp and for tests).
  int psi_index(int h) const { return psi_[h]; }

 private:
  at::Tensor p_mode(int g, const ModeSet& modes, const ParamViews& params) const;
  at::Tensor u_mode(int h, const ModeSet& modes, const ParamViews& params) const;

  const SharedModules& shared_;
  std::string name_;
  ParamLayout layout_;
  std::vector<int64_t> d_in_, d_out_, d_trans_;
  std::unique_ptr<Mapping> mapping_;  // the subject's part of m
  std::vector<std::unique_ptr<ModePredictor>> own_p_pred_, own_u_pred_;
  std::vector<int> p_owned_, u_owned_;             // layout index or -1
  std::vector<at::Tensor> p_fixed_, u_fixed_;      // defined for fixed modes
  std::vector<bool> p_identity_;                   // fixed identity p: proj = x
  std::vector<int> psi_, scale_, offset_, slope_;  // per output; -1 when absent
  std::vector<int> direct_;                        // per direct pair
};

}  // namespace mslr
