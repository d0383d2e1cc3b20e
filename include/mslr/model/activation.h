// Element-wise functions used by the mode predictors (hidden layers) and as output nonlinearities s_h.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace mslr {

enum class Activation {
  kIdentity,
  kRelu,
  kTanh,
  kSigmoid,
  kSoftplus,
  kExp,
  kPrelu,  // max(z, 0) + a * min(z, 0), with a learned slope a per variable (output nonlinearities only)
};

// "identity", "relu", "tanh", "sigmoid", "softplus", "exp", "prelu"; throws naming the bad value.
Activation parse_activation(const std::string& name);
std::string to_string(Activation a);

// Applies `a` element-wise; `slope` is the PReLU slope (broadcast over rows), ignored otherwise.
at::Tensor apply_activation(Activation a, const at::Tensor& z, const at::Tensor& slope = {});

}  // namespace mslr
