// Mode predictors (docs/DESIGN.md §2): small networks that map each variable's properties (e.g. a neuron's
// 3-D position) to its row of mode loadings. A predictor is normally shared by all subjects; that is what
// lets a fitted model give modes for a subject never seen in training.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "mslr/model/activation.h"
#include "mslr/model/params.h"

namespace mslr {

struct PredictorSpec {
  enum Kind { kMlp, kHypercube } kind = kMlp;
  // Bounded property range, per property (or one value for all). The MLP maps it affinely onto [-1, 1]; the
  // hypercube tiles it. Properties outside the range fall into the boundary cubes.
  std::vector<double> range_lo = {0.0};
  std::vector<double> range_hi = {1.0};
  // MLP: hidden layer widths and their activation.
  std::vector<int64_t> hidden = {32, 32};
  Activation activation = Activation::kTanh;
  // Hypercube: the range of each property is cut into `divisions` cells; a cube spans `cube_side` cells, and
  // cubes start at every cell, so each point lies in exactly prod(cube_side) cubes.
  std::vector<int64_t> divisions = {10};
  std::vector<int64_t> cube_side = {2};
  // Std of the starting output loadings (the MLP's last layer is scaled so that outputs have about this std).
  double init_std = 1.0;
  // Each subject its own copy (the seed's subj_specific_preds): per-subject parameters, never all-reduced.
  bool per_subject = false;

  std::string describe() const;
  // Throws naming the first setting out of its range (hidden widths, divisions and cube sides >= 1, a
  // non-empty finite range with lo < hi, a positive finite init-std).
  void validate() const;
};

class ModePredictor {
 public:
  virtual ~ModePredictor() = default;
  int64_t n_props() const { return n_props_; }
  int64_t n_out() const { return n_out_; }
  // props [N, n_props] -> loadings [N, n_out]. `params` are the views of the layout the predictor was
  // declared in (shared or one subject's).
  at::Tensor forward(const at::Tensor& props, const std::vector<at::Tensor>& params) const {
    return forward_prepared(prepare(props), params);
  }
  // Properties do not change during a fit: prepare() turns them into what forward_prepared() reads (scaled
  // properties, or cube indices) once, on their device, so that a step does no index arithmetic or host work.
  virtual at::Tensor prepare(const at::Tensor& props) const = 0;
  virtual at::Tensor forward_prepared(const at::Tensor& prepared,
                                      const std::vector<at::Tensor>& params) const = 0;

 protected:
  ModePredictor(int64_t n_props, int64_t n_out) : n_props_(n_props), n_out_(n_out) {}
  int64_t n_props_, n_out_;
};

// Declares the predictor's parameters in `layout` under names starting with `prefix`.
std::unique_ptr<ModePredictor> make_predictor(const PredictorSpec& spec, int64_t n_props, int64_t n_out,
                                              ParamLayout& layout, const std::string& prefix);

// The MLP predictor: properties mapped affinely from their range onto [-1, 1], then hidden layers
// h = act(h · W_l + b_l) and a linear last layer. Its parameters are declared consecutively in one layout
// (W_0, b_0, W_1, b_1, ...), W_l [in, out], b_l [out].
class MlpPredictor : public ModePredictor {
 public:
  MlpPredictor(const PredictorSpec& spec, int64_t n_props, int64_t n_out, ParamLayout& layout,
               const std::string& prefix);
  // props [N, n_props] -> scaled properties [N, n_props] in [-1, 1] over the range.
  at::Tensor prepare(const at::Tensor& props) const override;
  at::Tensor forward_prepared(const at::Tensor& scaled, const std::vector<at::Tensor>& params) const override;
  Activation activation() const { return act_; }
  // Layout indices of W_l and b_l, l = 0 .. layers-1.
  const std::vector<int>& weights() const { return weights_; }
  const std::vector<int>& biases() const { return biases_; }

 private:
  Activation act_;
  std::vector<double> center_, inv_half_;
  std::vector<int> weights_, biases_;
};

// The tiled hypercube predictor, exposed for tests.
class HypercubePredictor : public ModePredictor {
 public:
  HypercubePredictor(const PredictorSpec& spec, int64_t n_props, int64_t n_out, ParamLayout& layout,
                     const std::string& prefix);
  at::Tensor prepare(const at::Tensor& props) const override { return cube_indices(props); }
  at::Tensor forward_prepared(const at::Tensor& idx, const std::vector<at::Tensor>& params) const override;
  // For each point, the flat indices of the prod(cube_side) cubes that contain it: [N, K] int64, on the
  // device of `props`.
  at::Tensor cube_indices(const at::Tensor& props) const;
  // Slow reference: tests every cube's bounds against every point.
  at::Tensor forward_reference(const at::Tensor& props, const std::vector<at::Tensor>& params) const;
  int64_t n_cubes() const { return n_cubes_; }
  int64_t per_point() const { return per_point_; }  // cubes containing each point (K)
  int values_index() const { return values_; }      // layout index of the cube values [n_cubes, n_out]

 private:
  std::vector<double> lo_, step_;
  std::vector<int64_t> div_, side_, stride_;  // per property; stride_ over cube indices
  int64_t n_cubes_ = 1, per_point_ = 1;
  at::Tensor offsets_;  // [K] flat index offsets of the cubes around a point's first cube
  int values_;          // layout index of the cube values [n_cubes, n_out]
};

}  // namespace mslr
