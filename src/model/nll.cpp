#include "mslr/model/nll.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "mslr/core/error.h"
#include "mslr/model/params.h"

namespace mslr {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;
// Rows per block: the sums are formed per block and then added in block order, so the result does not depend
// on the number of threads.
constexpr int64_t kRowsPerBlock = 128;

void check_shapes(const at::Tensor& y, const at::Tensor& mn, const at::Tensor& psi) {
  MSLR_CHECK(y.dim() == 2 && y.sizes() == mn.sizes(), "NLL: data ", shape_str(y.sizes()), " and mean ",
             shape_str(mn.sizes()), " differ in shape");
  MSLR_CHECK(psi.dim() == 1 && psi.size(0) == y.size(1), "NLL: psi ", shape_str(psi.sizes()),
             " does not match ", y.size(1), " variables");
}

// Column sums of (y - mn)² in double, [d].
template <class T>
std::vector<double> squared_residual_sums(const T* y, const T* mn, int64_t n, int64_t d) {
  const int64_t n_blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> partial(static_cast<size_t>(n_blocks * d), 0.0);
  at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double* acc = partial.data() + b * d;
      const int64_t i1 = std::min(n, (b + 1) * kRowsPerBlock);
      for (int64_t i = b * kRowsPerBlock; i < i1; ++i) {
        const T* yi = y + i * d;
        const T* mi = mn + i * d;
        for (int64_t j = 0; j < d; ++j) {
          const double r = static_cast<double>(yi[j]) - static_cast<double>(mi[j]);
          acc[j] += r * r;
        }
      }
    }
  });
  std::vector<double> sums(static_cast<size_t>(d), 0.0);
  for (int64_t b = 0; b < n_blocks; ++b)
    for (int64_t j = 0; j < d; ++j)
      sums[j] += partial[b * d + j];
  return sums;
}

// grad_mn = g · (mn − y) / psi, written in one pass.
template <class T>
void residual_gradient(const T* y, const T* mn, const T* psi, double g, T* out, int64_t n, int64_t d) {
  std::vector<T> scale(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j)
    scale[j] = static_cast<T>(g / static_cast<double>(psi[j]));
  at::parallel_for(0, n, kRowsPerBlock, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* yi = y + i * d;
      const T* mi = mn + i * d;
      T* oi = out + i * d;
      for (int64_t j = 0; j < d; ++j)
        oi[j] = (mi[j] - yi[j]) * scale[j];
    }
  });
}

class FusedGaussianNll : public torch::autograd::Function<FusedGaussianNll> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& y_in,
                            const at::Tensor& mn_in, const at::Tensor& psi_in) {
    const at::Tensor y = y_in.contiguous(), mn = mn_in.contiguous(), psi = psi_in.contiguous();
    const int64_t n = y.size(0), d = y.size(1);
    at::Tensor sums = at::empty({d}, at::kDouble);
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "gaussian_nll", [&] {
      auto s = squared_residual_sums<scalar_t>(y.data_ptr<scalar_t>(), mn.data_ptr<scalar_t>(), n, d);
      std::copy(s.begin(), s.end(), sums.data_ptr<double>());
    });
    const at::Tensor psi_d = psi.to(at::kDouble);
    const double value = 0.5 * static_cast<double>(n * d) * kLog2Pi +
                         0.5 * static_cast<double>(n) * psi_d.log().sum().item<double>() +
                         0.5 * (sums / psi_d).sum().item<double>();
    ctx->save_for_backward({y, mn, psi, sums});
    return at::scalar_tensor(value, y.options());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &y = saved[0], &mn = saved[1], &psi = saved[2], &sums = saved[3];
    const double g = grad_out[0].item<double>();
    const int64_t n = y.size(0), d = y.size(1);
    at::Tensor grad_mn = at::empty_like(mn);
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "gaussian_nll_backward", [&] {
      residual_gradient<scalar_t>(y.data_ptr<scalar_t>(), mn.data_ptr<scalar_t>(), psi.data_ptr<scalar_t>(),
                                  g, grad_mn.data_ptr<scalar_t>(), n, d);
    });
    const at::Tensor psi_d = psi.to(at::kDouble);
    const at::Tensor grad_psi =
        (g * (0.5 * static_cast<double>(n) / psi_d - 0.5 * sums / psi_d.square())).to(psi.scalar_type());
    const at::Tensor grad_y = y.requires_grad() ? -grad_mn : at::Tensor();
    return {grad_y, grad_mn, grad_psi};
  }
};

}  // namespace

at::Tensor gaussian_nll_reference(const at::Tensor& y, const at::Tensor& mn, const at::Tensor& psi) {
  check_shapes(y, mn, psi);
  const double n = static_cast<double>(y.size(0)), d = static_cast<double>(y.size(1));
  return 0.5 * n * d * kLog2Pi + 0.5 * n * psi.log().sum() + 0.5 * ((y - mn).pow(2) / psi).sum();
}

at::Tensor gaussian_nll(const at::Tensor& y, const at::Tensor& mn, const at::Tensor& psi) {
  check_shapes(y, mn, psi);
  const bool fusable = y.device().is_cpu() && mn.device().is_cpu() && psi.device().is_cpu() &&
                       y.scalar_type() == mn.scalar_type() && mn.scalar_type() == psi.scalar_type() &&
                       (y.scalar_type() == at::kFloat || y.scalar_type() == at::kDouble);
  if (!fusable) return gaussian_nll_reference(y, mn, psi);
  return FusedGaussianNll::apply(y, mn, psi);
}

}  // namespace mslr
