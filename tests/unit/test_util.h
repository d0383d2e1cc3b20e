// Helpers shared by the unit tests.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mslr/core/error.h"
#include "mslr/core/rng.h"

namespace mslr::test {

// Uniform [lo, hi) float64 tensor from a deterministic stream.
inline at::Tensor uniform(std::vector<int64_t> shape, uint64_t key, double lo = -1.0, double hi = 1.0) {
  Rng rng(1234, {key});
  at::Tensor t = at::empty(shape, at::kDouble);
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

// Max |a - b| / max(|b|, floor).
inline double rel_diff(const at::Tensor& a, const at::Tensor& b, double floor = 1e-12) {
  return ((a - b).abs().max() / std::max(b.abs().max().item<double>(), floor)).item<double>();
}

// Runs `f`, expects mslr::Error, and returns its message.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an mslr::Error";
  return "";
}

}  // namespace mslr::test
