// Benchmark (not a test): the two rates a roofline of a fit needs, on one core — the float32 matrix-product
// rate, and the memory read bandwidth. The product rate is the better of the BLAS that mslr calls and mslr's
// own dense kernels on a predictor layer's shape held in cache: where the BLAS does not know the CPU (Debian
// 12's OpenBLAS runs its AVX2 kernels on AMD Zen 5, at half the core's rate), a bound from it alone would be
// twice too loose. Prints `gemm_gflops X` (the better), `blas_gflops`, `dense_gflops` and `read_gbs Y`.
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
        mslr::kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data_ptr<float>(), n, b.data_ptr<float>(),
                                   n, 0.0f, c.data_ptr<float>(), n);
      },
      5);
  // mslr's dense kernel: a predictor's 32 -> 32 layer over a block of 512 rows (in L2), 200 times a repetition.
  const int64_t rows = 512, width = 32, calls = 200;
  const at::Tensor w = at::randn({width, width}), bias = at::randn({width}), in = at::randn({width, rows});
  at::Tensor out = at::empty({width, rows});
  const double t_dense = best_seconds(
      [&] {
        for (int64_t i = 0; i < calls; ++i)
          mslr::kernels::dense_forward<float>(rows, width, width, w.data_ptr<float>(), width, 1,
                                              bias.data_ptr<float>(), in.data_ptr<float>(), rows,
                                              out.data_ptr<float>(), rows);
      },
      20);
  // Read bandwidth: a sum over 512 MiB, far larger than any cache.
  const at::Tensor big = at::ones({int64_t{1} << 27});
  volatile float sink = big.sum().item<float>();  // touch the pages first
  const double t_read = best_seconds([&] { sink = big.sum().item<float>(); }, 5);
  (void)sink;
  const double blas = 2.0 * n * n * n / t_gemm / 1e9;
  const double dense = 2.0 * static_cast<double>(calls * rows * width * width) / t_dense / 1e9;
  std::printf("gemm_gflops %.1f\n", std::max(blas, dense));
  std::printf("blas_gflops %.1f dense_gflops %.1f\n", blas, dense);
  std::printf("read_gbs %.1f\n", static_cast<double>(big.numel() * 4) / t_read / 1e9);
  std::printf("threads %d direct_blas %d\n", threads, mslr::kernels::direct_blas() ? 1 : 0);
  return 0;
}
