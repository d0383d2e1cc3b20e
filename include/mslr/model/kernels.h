// CPU kernels of the batched step (model/batched.h): element-wise functions written so that the compiler
// vectorises them (no branches, no library calls in the float path), and a direct entry to the BLAS that
// LibTorch itself uses, without a tensor or a dispatcher per call.
//
// Every function here is deterministic: its result depends on its arguments alone, never on the number of
// threads or on what else is being computed.
#pragma once

#include <cstdint>

#include "mslr/model/activation.h"

namespace mslr::kernels {

// tanh for float32, within 3 units in the last place of the exact value over every float (2.53 found by
// trying all 2^32; the unit test tries every 61st); ~0.34 ns per element on the development machine, where
// LibTorch 1.13's CPU tanh costs ~2 ns.
float tanh_fast(float x);
void tanh_fast(const float* x, float* y, int64_t n);
// exp for float32 within 2 ulp where the result is a normal float; 0 below and +inf above that range.
float exp_fast(float x);

// z[i] = act(z[i]) for i < n. float uses the fast forms above; double uses <cmath> (the reference's
// accuracy, for tests in float64). Identity, relu, tanh, sigmoid, softplus and exp (not prelu).
template <class T>
void activate(Activation a, T* z, int64_t n);
// d[i] *= act'(z[i]), given h[i] = act(z[i]) only (every supported activation's derivative is a function of
// its output).
template <class T>
void activation_backward(Activation a, const T* h, T* d, int64_t n);

// Row-major C[M, N] = alpha · op(A) · op(B) + beta · C, op(A) [M, K], op(B) [K, N]; `ta`/`tb` transpose.
// Calls the BLAS loaded with LibTorch (sgemm_/dgemm_) when there is one, and at::mm on views otherwise.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);
// True when gemm() calls the BLAS directly.
bool direct_blas();

}  // namespace mslr::kernels
