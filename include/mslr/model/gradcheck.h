// Central finite differences against autograd, for tests and `mslr selfcheck`.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace mslr {

struct GradCheck {
  double relative_error = 0.0;  // ||g_autograd - g_fd|| / max(||g_fd||, tiny)
  double norm = 0.0;            // ||g_fd||
  int64_t checked = 0;          // number of coordinates compared
};

// `loss` evaluates a scalar from the current values of `flat` (a float64 leaf that requires grad).
// Compares d loss / d flat from autograd with central differences of step h·max(1, |flat_i|) on the
// coordinates [begin, begin + count) (count < 0: to the end), at most `max_coords` of them, evenly spaced.
GradCheck check_gradient(const std::function<at::Tensor()>& loss, at::Tensor& flat, int64_t begin = 0,
                         int64_t count = -1, double h = 1e-6, int64_t max_coords = 2000);

}  // namespace mslr
