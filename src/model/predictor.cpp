#include "mslr/model/predictor.h"

#include <cmath>

#include "mslr/core/error.h"

namespace mslr {
namespace {

// One value per property, or a single value broadcast to all.
template <class T>
std::vector<T> per_property(const std::vector<T>& v, int64_t n_props, const char* what) {
  if (static_cast<int64_t>(v.size()) == n_props) return v;
  MSLR_CHECK(v.size() == 1, "predictor option ", what, " has ", v.size(), " values for ", n_props,
             " properties (give 1 or ", n_props, ")");
  return std::vector<T>(n_props, v[0]);
}

template <class T>
std::string join(const std::vector<T>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? "," : "") + cat(v[i]);
  return s;
}

}  // namespace

MlpPredictor::MlpPredictor(const PredictorSpec& spec, int64_t n_props, int64_t n_out, ParamLayout& layout,
                           const std::string& prefix)
    : ModePredictor(n_props, n_out), act_(spec.activation) {
  auto lo = per_property(spec.range_lo, n_props, "range-lo");
  auto hi = per_property(spec.range_hi, n_props, "range-hi");
  for (int64_t i = 0; i < n_props; ++i) {
    MSLR_CHECK(hi[i] > lo[i], "predictor range of property ", i, " is empty: [", lo[i], ", ", hi[i], "]");
    center_.push_back(0.5 * (lo[i] + hi[i]));
    inv_half_.push_back(2.0 / (hi[i] - lo[i]));
  }
  int64_t in = n_props;
  for (size_t l = 0; l <= spec.hidden.size(); ++l) {
    const bool last = l == spec.hidden.size();
    const int64_t out = last ? n_out : spec.hidden[l];
    MSLR_CHECK(out > 0, "predictor hidden width must be positive, got ", out);
    // LeCun-normal hidden layers keep pre-activations O(1); the last layer gives outputs of std init_std.
    const double std = (last ? spec.init_std : 1.0) / std::sqrt(static_cast<double>(in));
    weights_.push_back(layout.add(prefix + ".w" + std::to_string(l), {in, out}, Init::normal(std)));
    biases_.push_back(layout.add(prefix + ".b" + std::to_string(l), {out}, Init::constant(0.0)));
    in = out;
  }
}

at::Tensor MlpPredictor::prepare(const at::Tensor& props) const {
  MSLR_CHECK(props.dim() == 2 && props.size(1) == n_props_, "MLP predictor expects properties [N, ", n_props_,
             "], got ", shape_str(props.sizes()));
  const auto opts = props.options();
  return (props - at::tensor(center_, at::kDouble).to(opts)) * at::tensor(inv_half_, at::kDouble).to(opts);
}

at::Tensor MlpPredictor::forward_prepared(const at::Tensor& scaled,
                                          const std::vector<at::Tensor>& params) const {
  at::Tensor h = scaled;  // [N, n_props] in [-1, 1]
  for (size_t l = 0; l < weights_.size(); ++l) {
    h = at::addmm(params[biases_[l]], h, params[weights_[l]]);
    if (l + 1 < weights_.size()) h = apply_activation(act_, h);
  }
  return h;  // [N, n_out]
}

void PredictorSpec::validate() const {
  auto all_positive = [](const std::vector<int64_t>& v, const char* name) {
    MSLR_CHECK(!v.empty(), name, " is empty");
    for (int64_t x : v)
      MSLR_CHECK(x >= 1, name, " must be >= 1, got ", x);
  };
  // Every setting, also those of the other kind of predictor: a bad value is a mistake either way.
  all_positive(hidden, "hidden");
  all_positive(divisions, "divisions");
  all_positive(cube_side, "cube-side");
  MSLR_CHECK(!range_lo.empty() && range_lo.size() == range_hi.size(),
             "range-lo and range-hi need the same, "
             "non-zero number of values, got ",
             range_lo.size(), " and ", range_hi.size());
  for (size_t i = 0; i < range_lo.size(); ++i)
    MSLR_CHECK(std::isfinite(range_lo[i]) && std::isfinite(range_hi[i]) && range_lo[i] < range_hi[i],
               "property ", i, ": range-lo ", range_lo[i], " must be below range-hi ", range_hi[i]);
  MSLR_CHECK(std::isfinite(init_std) && init_std > 0, "init-std must be a positive number, got ", init_std);
  MSLR_CHECK(activation != Activation::kPrelu,
             "activation prelu needs a learned slope, which an MLP's hidden layers do not have (use relu, tanh, "
             "sigmoid, softplus, exp or identity)");
}

std::string PredictorSpec::describe() const {
  std::string s = kind == kMlp ? cat("mlp hidden=", join(hidden), " activation=", to_string(activation))
                               : cat("hypercube divisions=", join(divisions), " cube-side=", join(cube_side));
  return s + cat(" range=[", join(range_lo), "]..[", join(range_hi), "]", per_subject ? " per-subject" : "");
}

HypercubePredictor::HypercubePredictor(const PredictorSpec& spec, int64_t n_props, int64_t n_out,
                                       ParamLayout& layout, const std::string& prefix)
    : ModePredictor(n_props, n_out) {
  auto lo = per_property(spec.range_lo, n_props, "range-lo");
  auto hi = per_property(spec.range_hi, n_props, "range-hi");
  div_ = per_property(spec.divisions, n_props, "divisions");
  side_ = per_property(spec.cube_side, n_props, "cube-side");
  stride_.assign(n_props, 1);
  for (int64_t d = n_props - 1; d >= 0; --d) {
    MSLR_CHECK(hi[d] > lo[d], "predictor range of property ", d, " is empty: [", lo[d], ", ", hi[d], "]");
    MSLR_CHECK(div_[d] >= 1 && side_[d] >= 1, "hypercube divisions and cube-side must be >= 1, got ", div_[d],
               " and ", side_[d], " for property ", d);
    lo_.insert(lo_.begin(), lo[d]);
    step_.insert(step_.begin(), (hi[d] - lo[d]) / static_cast<double>(div_[d]));
    stride_[d] = n_cubes_;
    // Cubes start at cells -(side-1) .. div-1, so every cell is covered by exactly `side` cubes per property.
    n_cubes_ *= div_[d] + side_[d] - 1;
    per_point_ *= side_[d];
  }
  // Offsets of all cubes containing a point relative to the lowest-indexed one: every combination of
  // o_d in [0, side_d).
  std::vector<int64_t> offsets(1, 0);
  for (int64_t d = 0; d < n_props; ++d) {
    std::vector<int64_t> next;
    for (int64_t base : offsets)
      for (int64_t o = 0; o < side_[d]; ++o)
        next.push_back(base + o * stride_[d]);
    offsets.swap(next);
  }
  offsets_ = at::tensor(offsets, at::kLong);
  // Start so that the sum over the cubes containing a point has std init_std.
  values_ = layout.add(prefix + ".values", {n_cubes_, n_out},
                       Init::normal(spec.init_std / std::sqrt(static_cast<double>(per_point_))));
}

at::Tensor HypercubePredictor::cube_indices(const at::Tensor& props) const {
  MSLR_CHECK(props.dim() == 2 && props.size(1) == n_props_, "hypercube predictor expects properties [N, ",
             n_props_, "], got ", shape_str(props.sizes()));
  const at::Tensor p = props.to(at::kDouble).cpu().contiguous();
  const int64_t n = p.size(0);
  at::Tensor first = at::zeros({n}, at::kLong);
  const double* pp = p.data_ptr<double>();
  int64_t* fp = first.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t idx = 0;
    for (int64_t d = 0; d < n_props_; ++d) {
      int64_t cell = static_cast<int64_t>(std::floor((pp[i * n_props_ + d] - lo_[d]) / step_[d]));
      cell = std::min(std::max(cell, int64_t{0}), div_[d] - 1);
      // The lowest cube containing `cell` starts at cell - (side - 1), i.e. has index `cell` in this
      // property.
      idx += cell * stride_[d];
    }
    fp[i] = idx;
  }
  return (first.unsqueeze(1) + offsets_.unsqueeze(0)).to(props.device());  // [N, K]
}

at::Tensor HypercubePredictor::forward_prepared(const at::Tensor& idx,
                                                const std::vector<at::Tensor>& params) const {
  const at::Tensor& values = params[values_];  // [n_cubes, n_out]
  const int64_t n = idx.size(0);
  return values.index_select(0, idx.view({-1})).view({n, per_point_, n_out_}).sum(1);  // [N, n_out]
}

at::Tensor HypercubePredictor::forward_reference(const at::Tensor& props,
                                                 const std::vector<at::Tensor>& params) const {
  const at::Tensor& values = params[values_];
  const at::Tensor p = props.to(at::kDouble).cpu();
  const int64_t n = p.size(0);
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor acc = at::zeros({n_out_}, values.options());
    for (int64_t c = 0; c < n_cubes_; ++c) {
      bool inside = true;
      int64_t rem = c;
      for (int64_t d = 0; d < n_props_ && inside; ++d) {
        const int64_t count = div_[d] + side_[d] - 1;
        // Cube index k in property d starts at cell k - (side - 1).
        const int64_t k = (rem / stride_[d]) % count;
        const double start = lo_[d] + static_cast<double>(k - (side_[d] - 1)) * step_[d];
        const double end = start + static_cast<double>(side_[d]) * step_[d];
        // Clamp the point into the range so that outside points fall into the boundary cells.
        double x = p[i][d].item<double>();
        x = std::min(std::max(x, lo_[d]), lo_[d] + step_[d] * (static_cast<double>(div_[d]) - 1e-9));
        inside = x >= start && x < end;
      }
      if (inside) acc = acc + values[c];
    }
    rows.push_back(acc);
  }
  return at::stack(rows);
}

std::unique_ptr<ModePredictor> make_predictor(const PredictorSpec& spec, int64_t n_props, int64_t n_out,
                                              ParamLayout& layout, const std::string& prefix) {
  MSLR_CHECK(n_props >= 1, "predictor '", prefix, "' needs at least one property per variable");
  if (spec.kind == PredictorSpec::kMlp)
    return std::make_unique<MlpPredictor>(spec, n_props, n_out, layout, prefix);
  return std::make_unique<HypercubePredictor>(spec, n_props, n_out, layout, prefix);
}

}  // namespace mslr
