#include "mslr/model/gradcheck.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

#include "mslr/core/error.h"

namespace mslr {

GradCheck check_gradient(const std::function<at::Tensor()>& loss, at::Tensor& flat, int64_t begin,
                         int64_t count, double h, int64_t max_coords) {
  MSLR_CHECK(flat.scalar_type() == at::kDouble && flat.requires_grad(),
             "gradient check needs a float64 leaf");
  if (flat.grad().defined()) flat.mutable_grad().zero_();
  loss().backward();
  const at::Tensor analytic = flat.grad().clone();

  at::NoGradGuard no_grad;
  const int64_t end = count < 0 ? flat.numel() : std::min(flat.numel(), begin + count);
  const int64_t stride = std::max<int64_t>(1, (end - begin) / std::max<int64_t>(1, max_coords));
  double diff2 = 0.0, norm2 = 0.0;
  GradCheck out;
  double* p = flat.data_ptr<double>();
  for (int64_t i = begin; i < end; i += stride) {
    const double x = p[i];
    const double step = h * std::max(1.0, std::abs(x));
    p[i] = x + step;
    const double up = loss().item<double>();
    p[i] = x - step;
    const double down = loss().item<double>();
    p[i] = x;
    const double fd = (up - down) / (2.0 * step);
    const double ad = analytic.data_ptr<double>()[i];
    diff2 += (fd - ad) * (fd - ad);
    norm2 += fd * fd;
    ++out.checked;
  }
  out.norm = std::sqrt(norm2);
  out.relative_error = std::sqrt(diff2) / std::max(out.norm, 1e-300);
  return out;
}

}  // namespace mslr
