// The Gaussian negative log-likelihood of docs/DESIGN.md §1 for one output group:
//   0.5·n·d·log(2π) + 0.5·n·Σ_j log psi_j + 0.5·Σ_i Σ_j (y_ij − mn_ij)² / psi_j
#pragma once

#include <ATen/ATen.h>

namespace mslr {

// Plain LibTorch ops: the slow reference that the fused version is tested against. y, mn: [n, d]; psi: [d].
at::Tensor gaussian_nll_reference(const at::Tensor& y, const at::Tensor& mn, const at::Tensor& psi);

// The same value and gradients (with respect to mn and psi) computed in one threaded pass over the data, with
// no temporaries of size [n, d]. Used for CPU tensors; other devices use the reference ops.
at::Tensor gaussian_nll(const at::Tensor& y, const at::Tensor& mn, const at::Tensor& psi);

}  // namespace mslr
