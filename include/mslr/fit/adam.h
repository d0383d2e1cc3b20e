// Adam on whole flat parameter buffers: the same arithmetic as torch.optim.Adam (L2 weight decay added to the
// gradient, bias-corrected moments), in a handful of element-wise ops over a contiguous buffer instead of a
// loop over parameter tensors.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace mslr {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;

  void validate() const;  // throws naming the option and the rule
};

struct AdamState {
  at::Tensor m, v;   // first and second moments, shaped like the buffer
  int64_t step = 0;  // steps taken since the last reset

  // Zero moments shaped like `like` (on its device, of its dtype).
  static AdamState zeros_like(const at::Tensor& like);
  void reset();
};

// A part [offset, offset + numel) of a flat buffer.
struct Span {
  int64_t offset = 0, numel = 0;
};

// One Adam step: param -= lr · m̂ / (sqrt(v̂) + eps). `param` is updated in place (no autograd). With `only`,
// just those parts of the buffers are read and written (the rest is frozen: its moments stay zero).
void adam_step(at::Tensor& param, const at::Tensor& grad, AdamState& state, double lr, const AdamOptions& opt,
               const std::vector<Span>* only = nullptr);

}  // namespace mslr
