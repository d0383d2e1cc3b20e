// Benchmark (not a test): the batched step's dense-layer kernels (kernels.h) against the BLAS on the shapes
// of a predictor MLP's layers (a block of 512 rows; widths 3, 32, 32 and 4 or 8), on one thread. Prints
// microseconds and GFLOP/s per shape; then the 32 -> 32 layer with its fused tanh, and tanh_fast alone, in
// nanoseconds per value (the predictors' forward takes a tanh of every hidden value of every step).
//
//   mslr_bench_kernels
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "mslr/core/system.h"
#include "mslr/model/kernels.h"

namespace {

template <class F>
double best_seconds(F f) {
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i)
      f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 200);
  }
  return best;
}

void report(const char* what, int64_t m, int64_t n, int64_t k, double s_kernel, double s_blas) {
  const double flop = 2.0 * static_cast<double>(m * n * k);
  std::printf("%-26s %4lld x %3lld x %3lld   kernel %7.2f us %6.1f GFLOP/s   BLAS %7.2f us %6.1f GFLOP/s\n",
              what, static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k),
              s_kernel * 1e6, flop / s_kernel / 1e9, s_blas * 1e6, flop / s_blas / 1e9);
}

}  // namespace

int main() {
  using namespace mslr::kernels;
  mslr::limit_threads(1, 1);
  const int64_t rows = 512;
  for (auto [wi, wo] : {std::pair<int64_t, int64_t>{3, 32}, {32, 32}, {32, 8}, {32, 4}}) {
    // Row-major for the BLAS ([rows, wi] · [wi, wo]), feature-major for the kernels ([wi, rows] -> [wo, rows]).
    const at::Tensor x = at::randn({rows, wi}), xt = x.t().contiguous(), W = at::randn({wi, wo}),
                     b = at::randn({wo}), dz = at::randn({rows, wo}), dzt = dz.t().contiguous();
    at::Tensor out = at::empty({rows, std::max(wi, wo)}), G = at::empty({wi, wo}), gb = at::empty({wo});
    const double fwd = best_seconds([&] {
      dense_forward<float>(rows, wi, wo, W.data_ptr<float>(), wo, 1, b.data_ptr<float>(),
                           xt.data_ptr<float>(), rows, out.data_ptr<float>(), rows);
    });
    const double fwd_blas = best_seconds([&] {
      gemm<float>(false, false, rows, wo, wi, 1.0f, x.data_ptr<float>(), wi, W.data_ptr<float>(), wo, 0.0f,
                  out.data_ptr<float>(), wo);
    });
    char name[64];
    std::snprintf(name, sizeof name, "layer %lld -> %lld", static_cast<long long>(wi),
                  static_cast<long long>(wo));
    report(name, rows, wo, wi, fwd, fwd_blas);
    const double wg = best_seconds([&] {
      dense_weight_grad<float>(rows, wi, wo, xt.data_ptr<float>(), rows, dzt.data_ptr<float>(), rows,
                               G.data_ptr<float>(), gb.data_ptr<float>());
    });
    const double wg_blas = best_seconds([&] {
      gemm<float>(true, false, wi, wo, rows, 1.0f, x.data_ptr<float>(), wi, dz.data_ptr<float>(), wo, 0.0f,
                  G.data_ptr<float>(), wo);
    });
    report("  its weight gradient", wi, wo, rows, wg, wg_blas);
    if (wi == 3) continue;
    const double ig = best_seconds([&] {
      dense_forward<float>(rows, wo, wi, W.data_ptr<float>(), 1, wo, nullptr, dzt.data_ptr<float>(), rows,
                           out.data_ptr<float>(), rows);
    });
    const double ig_blas = best_seconds([&] {
      gemm<float>(false, true, rows, wi, wo, 1.0f, dz.data_ptr<float>(), wo, W.data_ptr<float>(), wo, 0.0f,
                  out.data_ptr<float>(), wi);
    });
    report("  its input gradient", rows, wi, wo, ig, ig_blas);
  }
  {
    const int64_t rows = 512, w = 32;
    const at::Tensor W = at::randn({w, w}) / 4, b = at::randn({w}), xt = at::randn({w, rows});
    at::Tensor out = at::empty({w, rows});
    const auto layer = [&](const DenseEpilogue<float>& e) {
      return best_seconds([&] {
        dense_forward<float>(rows, w, w, W.data_ptr<float>(), w, 1, b.data_ptr<float>(), xt.data_ptr<float>(),
                             rows, out.data_ptr<float>(), rows, e);
      });
    };
    const double plain = layer({}), fused = layer({DenseEpilogue<float>::kTanh, nullptr});
    const double alone =
        best_seconds([&] { tanh_fast(xt.data_ptr<float>(), out.data_ptr<float>(), w * rows); });
    const double values = static_cast<double>(w * rows);
    std::printf(
        "layer 32 -> 32 with tanh: %.2f us (%.2f without): %.3f ns a value for the fused tanh; "
        "tanh_fast alone %.3f ns a value\n",
        fused * 1e6, plain * 1e6, (fused - plain) / values * 1e9, alone / values * 1e9);
  }
  return 0;
}
