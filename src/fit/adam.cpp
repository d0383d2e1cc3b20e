#include "mslr/fit/adam.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

#include "mslr/core/error.h"

namespace mslr {

void AdamOptions::validate() const {
  MSLR_CHECK(beta1 >= 0.0 && beta1 < 1.0, "adam-beta1 must be in [0, 1), got ", beta1);
  MSLR_CHECK(beta2 >= 0.0 && beta2 < 1.0, "adam-beta2 must be in [0, 1), got ", beta2);
  MSLR_CHECK(eps > 0.0, "adam-eps must be positive, got ", eps);
  MSLR_CHECK(weight_decay >= 0.0, "adam-weight-decay must be >= 0, got ", weight_decay);
}

AdamState AdamState::zeros_like(const at::Tensor& like) {
  return {at::zeros_like(like, at::MemoryFormat::Contiguous),
          at::zeros_like(like, at::MemoryFormat::Contiguous), 0};
}

void AdamState::reset() {
  m.zero_();
  v.zero_();
  step = 0;
}

void adam_step(at::Tensor& param, const at::Tensor& grad_in, AdamState& s, double lr,
               const AdamOptions& opt) {
  at::NoGradGuard no_grad;
  s.step += 1;
  const at::Tensor grad = opt.weight_decay != 0.0 ? grad_in.add(param, opt.weight_decay) : grad_in;
  s.m.mul_(opt.beta1).add_(grad, 1.0 - opt.beta1);
  s.v.mul_(opt.beta2).addcmul_(grad, grad, 1.0 - opt.beta2);
  const double bias1 = 1.0 - std::pow(opt.beta1, static_cast<double>(s.step));
  const double bias2 = 1.0 - std::pow(opt.beta2, static_cast<double>(s.step));
  const at::Tensor denom = (s.v.sqrt() / std::sqrt(bias2)).add_(opt.eps);
  param.addcdiv_(s.m, denom, -lr / bias1);
}

}  // namespace mslr
