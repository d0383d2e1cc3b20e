#include "mslr/fit/adam.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
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

namespace {

// The update of one contiguous part, with the bias corrections of this step.
void adam_update(at::Tensor param, const at::Tensor& grad_in, at::Tensor m_t, at::Tensor v_t, double bias1,
                 double bias2, double lr, const AdamOptions& opt) {
  const bool fused = param.device().is_cpu() && param.is_contiguous() && grad_in.is_contiguous() &&
                     m_t.is_contiguous() && v_t.is_contiguous() &&
                     grad_in.scalar_type() == param.scalar_type() &&
                     (param.scalar_type() == at::kFloat || param.scalar_type() == at::kDouble);
  if (fused) {
    // One pass over the buffers and no temporaries; element-wise, so the result does not depend on the
    // number of threads.
    AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "adam_step", [&] {
      scalar_t* p = param.data_ptr<scalar_t>();
      const scalar_t* g = grad_in.data_ptr<scalar_t>();
      scalar_t* m = m_t.data_ptr<scalar_t>();
      scalar_t* v = v_t.data_ptr<scalar_t>();
      const scalar_t b1 = opt.beta1, b2 = opt.beta2, wd = opt.weight_decay, eps = opt.eps;
      const scalar_t step = lr / bias1, root2 = std::sqrt(bias2);
      at::parallel_for(0, param.numel(), 1 << 14, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const scalar_t gi = g[i] + wd * p[i];
          m[i] = b1 * m[i] + (1 - b1) * gi;
          v[i] = b2 * v[i] + (1 - b2) * gi * gi;
          p[i] -= step * m[i] / (std::sqrt(v[i]) / root2 + eps);
        }
      });
    });
    return;
  }
  const at::Tensor grad = opt.weight_decay != 0.0 ? grad_in.add(param, opt.weight_decay) : grad_in;
  m_t.mul_(opt.beta1).add_(grad, 1.0 - opt.beta1);
  v_t.mul_(opt.beta2).addcmul_(grad, grad, 1.0 - opt.beta2);
  const at::Tensor denom = (v_t.sqrt() / std::sqrt(bias2)).add_(opt.eps);
  param.addcdiv_(m_t, denom, -lr / bias1);
}

}  // namespace

void adam_step(at::Tensor& param, const at::Tensor& grad, AdamState& s, double lr, const AdamOptions& opt,
               const std::vector<Span>* only) {
  at::NoGradGuard no_grad;
  s.step += 1;
  const double bias1 = 1.0 - std::pow(opt.beta1, static_cast<double>(s.step));
  const double bias2 = 1.0 - std::pow(opt.beta2, static_cast<double>(s.step));
  if (!only) {
    adam_update(param, grad, s.m, s.v, bias1, bias2, lr, opt);
    return;
  }
  for (const Span& p : *only)
    adam_update(param.narrow(0, p.offset, p.numel), grad.narrow(0, p.offset, p.numel),
                s.m.narrow(0, p.offset, p.numel), s.v.narrow(0, p.offset, p.numel), bias1, bias2, lr, opt);
}

}  // namespace mslr
