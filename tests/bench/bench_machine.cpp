// Benchmark (not a test): the two rates a roofline of a fit needs, on one core — the float32 matrix-product
// rate of the BLAS that mslr calls, and the memory read bandwidth. Prints `gemm_gflops X` and `read_gbs Y`.
//
//   mslr_bench_machine [THREADS]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "mslr/core/system.h"
#include "mslr/model/kernels.h"

namespace {

template <class F>
double best_seconds(F f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  mslr::limit_threads(threads, threads);
  // GEMM: 1536 x 1536 x 1536 float32 through the same entry point as the batched step.
  const int64_t n = 1536;
  const at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  at::Tensor c = at::empty({n, n});
  const double t_gemm = best_seconds(
      [&] {
        mslr::kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data_ptr<float>(), n, b.data_ptr<float>(), n,
                                   0.0f, c.data_ptr<float>(), n);
      },
      5);
  // Read bandwidth: a sum over 512 MiB, far larger than any cache.
  const at::Tensor big = at::ones({int64_t{1} << 27});
  volatile float sink = big.sum().item<float>();  // touch the pages first
  const double t_read = best_seconds([&] { sink = big.sum().item<float>(); }, 5);
  (void)sink;
  std::printf("gemm_gflops %.1f\n", 2.0 * n * n * n / t_gemm / 1e9);
  std::printf("read_gbs %.1f\n", static_cast<double>(big.numel() * 4) / t_read / 1e9);
  std::printf("threads %d direct_blas %d\n", threads, mslr::kernels::direct_blas() ? 1 : 0);
  return 0;
}
