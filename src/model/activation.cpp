#include "mslr/model/activation.h"

#include "mslr/core/error.h"

namespace mslr {

Activation parse_activation(const std::string& name) {
  if (name == "identity" || name == "none") return Activation::kIdentity;
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "sigmoid") return Activation::kSigmoid;
  if (name == "softplus") return Activation::kSoftplus;
  if (name == "exp") return Activation::kExp;
  if (name == "prelu") return Activation::kPrelu;
  fail("unknown nonlinearity '", name, "' (expected identity, relu, tanh, sigmoid, softplus, exp or prelu)");
}

std::string to_string(Activation a) {
  switch (a) {
    case Activation::kIdentity:
      return "identity";
    case Activation::kRelu:
      return "relu";
    case Activation::kTanh:
      return "tanh";
    case Activation::kSigmoid:
      return "sigmoid";
    case Activation::kSoftplus:
      return "softplus";
    case Activation::kExp:
      return "exp";
    case Activation::kPrelu:
      return "prelu";
  }
  return "?";
}

at::Tensor apply_activation(Activation a, const at::Tensor& z, const at::Tensor& slope) {
  switch (a) {
    case Activation::kIdentity:
      return z;
    case Activation::kRelu:
      return at::relu(z);
    case Activation::kTanh:
      return at::tanh(z);
    case Activation::kSigmoid:
      return at::sigmoid(z);
    case Activation::kSoftplus:
      return at::softplus(z);
    case Activation::kExp:
      return at::exp(z);
    case Activation::kPrelu:
      MSLR_CHECK(slope.defined(), "prelu needs its slope parameter");
      return at::relu(z) - slope * at::relu(-z);
  }
  return z;
}

}  // namespace mslr
