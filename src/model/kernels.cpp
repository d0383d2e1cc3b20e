#include "mslr/model/kernels.h"

#include <ATen/ATen.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mslr/core/error.h"
#include "vector.h"
#include "vector_clones.h"
// The scalar bodies must be inlined into the loops for the loops to vectorise.
#define MSLR_ALWAYS_INLINE inline __attribute__((always_inline))

namespace mslr::kernels {
namespace {

using simd::expm1_reduced;
using simd::pow2i;
using simd::reduce_ln2;

MSLR_ALWAYS_INLINE float exp_inline(float x) {
  // exp(x) = 2^n · (1 + expm1(r)). 2^n is applied in two halves so that n = 128 (x just below the overflow
  // point) still has representable factors.
  constexpr float kHi = 88.72283f, kLo = -87.33654f;  // exp of these is FLT_MAX and FLT_MIN
  constexpr float kRound = 12582912.0f;
  // Comparisons rather than fmin/fmax, so that NaN stays NaN.
  const float xc = x < kLo ? kLo : (x > kHi ? kHi : x);
  float n;
  const float p = 1.0f + expm1_reduced(reduce_ln2(xc, &n));
  const float half = (n * 0.5f + kRound) - kRound;
  const float y = (p * pow2i(half)) * pow2i(n - half);
  return x > kHi ? std::numeric_limits<float>::infinity() : (x < kLo ? 0.0f : y);
}

// tanh by vectors (simd::tanh, the form the dense kernels apply inside their tiles too); the last values that
// do not fill a vector go through one, padded.
MSLR_VECTOR_CLONES void tanh_loop(const float* x, float* y, int64_t n) {
  constexpr int64_t L = simd::Vec<float>::lanes;
  int64_t i = 0;
  for (; i + L <= n; i += L)
    simd::store(y + i, simd::tanh(simd::load(x + i)));
  if (i == n) return;
  float tail[L] = {};
  std::copy(x + i, x + n, tail);
  simd::store(tail, simd::tanh(simd::load(tail)));
  std::copy(tail, tail + (n - i), y + i);
}

MSLR_VECTOR_CLONES void sigmoid_loop(float* z, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    z[i] = 1.0f / (1.0f + exp_inline(-z[i]));
}

MSLR_VECTOR_CLONES void exp_loop(float* z, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    z[i] = exp_inline(z[i]);
}

MSLR_VECTOR_CLONES void relu_loop(float* z, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

MSLR_VECTOR_CLONES void backward_loop(Activation a, const float* h, float* d, int64_t n) {
  switch (a) {
    case Activation::kTanh:
      for (int64_t i = 0; i < n; ++i)
        d[i] *= 1.0f - h[i] * h[i];
      return;
    case Activation::kSigmoid:
      for (int64_t i = 0; i < n; ++i)
        d[i] *= h[i] * (1.0f - h[i]);
      return;
    case Activation::kRelu:
      for (int64_t i = 0; i < n; ++i)
        d[i] = h[i] > 0.0f ? d[i] : 0.0f;
      return;
    case Activation::kExp:
      for (int64_t i = 0; i < n; ++i)
        d[i] *= h[i];
      return;
    default:
      return;
  }
}

// The same functions in double with <cmath>, at the reference's accuracy.
double softplus(double z) {
  return z > 20.0 ? z : std::log1p(std::exp(z));  // LibTorch's softplus with its threshold of 20
}

}  // namespace

// The scalar forms go through the loops, so that they give the same bits as the vectorised clones.
float exp_fast(float x) {
  exp_loop(&x, 1);
  return x;
}

float tanh_fast(float x) {
  tanh_loop(&x, &x, 1);
  return x;
}

void tanh_fast(const float* x, float* y, int64_t n) {
  tanh_loop(x, y, n);
}

template <>
void activate<float>(Activation a, float* z, int64_t n) {
  switch (a) {
    case Activation::kIdentity:
      return;
    case Activation::kRelu:
      return relu_loop(z, n);
    case Activation::kTanh:
      return tanh_loop(z, z, n);
    case Activation::kSigmoid:
      return sigmoid_loop(z, n);
    case Activation::kExp:
      return exp_loop(z, n);
    case Activation::kSoftplus:
      for (int64_t i = 0; i < n; ++i)
        z[i] = static_cast<float>(softplus(z[i]));
      return;
    case Activation::kPrelu:
      break;
  }
  fail("the batched step has no ", to_string(a), " activation");
}

template <>
void activate<double>(Activation a, double* z, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = z[i];
    switch (a) {
      case Activation::kIdentity:
        break;
      case Activation::kRelu:
        z[i] = v > 0.0 ? v : 0.0;
        break;
      case Activation::kTanh:
        z[i] = std::tanh(v);
        break;
      case Activation::kSigmoid:
        z[i] = 1.0 / (1.0 + std::exp(-v));
        break;
      case Activation::kExp:
        z[i] = std::exp(v);
        break;
      case Activation::kSoftplus:
        z[i] = softplus(v);
        break;
      case Activation::kPrelu:
        fail("the batched step has no prelu activation");
    }
  }
}

template <>
void activation_backward<float>(Activation a, const float* h, float* d, int64_t n) {
  if (a == Activation::kIdentity) return;
  if (a == Activation::kSoftplus) {
    // softplus'(z) = sigmoid(z) = 1 - exp(-softplus(z)).
    for (int64_t i = 0; i < n; ++i)
      d[i] *= static_cast<float>(-std::expm1(-static_cast<double>(h[i])));
    return;
  }
  backward_loop(a, h, d, n);
}

template <>
void activation_backward<double>(Activation a, const double* h, double* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    switch (a) {
      case Activation::kIdentity:
        break;
      case Activation::kRelu:
        d[i] = h[i] > 0.0 ? d[i] : 0.0;
        break;
      case Activation::kTanh:
        d[i] *= 1.0 - h[i] * h[i];
        break;
      case Activation::kSigmoid:
        d[i] *= h[i] * (1.0 - h[i]);
        break;
      case Activation::kExp:
        d[i] *= h[i];
        break;
      case Activation::kSoftplus:
        d[i] *= -std::expm1(-h[i]);
        break;
      case Activation::kPrelu:
        fail("the batched step has no prelu activation");
    }
  }
}

namespace {

// The Fortran BLAS interface (column-major), as exported by OpenBLAS, MKL's dynamic library or the reference.
template <class T>
using BlasGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const T*, const T*,
                          const int*, const T*, const int*, const T*, T*, const int*);

template <class T>
BlasGemm<T> blas_gemm() {
  // Looked up once in the process: the BLAS that LibTorch links (Debian's libtorch uses the system BLAS).
  // A LibTorch with a statically linked MKL exports none, and gemm() then goes through at::mm.
  static const BlasGemm<T> fn =
      reinterpret_cast<BlasGemm<T>>(dlsym(RTLD_DEFAULT, std::is_same<T, float>::value ? "sgemm_" : "dgemm_"));
  return fn;
}

template <class T>
at::Tensor view(const T* p, int64_t rows, int64_t cols, int64_t ld, bool transposed) {
  // A row-major [rows, cols] matrix with leading dimension ld, or the transpose of one stored [cols, rows].
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  T* q = const_cast<T*>(p);
  if (!transposed) return at::from_blob(q, {rows, cols}, {ld, 1}, opts);
  return at::from_blob(q, {cols, rows}, {ld, 1}, opts).t();
}

}  // namespace

bool direct_blas() {
  return blas_gemm<float>() != nullptr && blas_gemm<double>() != nullptr;
}

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  if (const BlasGemm<T> fn = blas_gemm<T>()) {
    // Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands, keep the flags.
    MSLR_CHECK(M < (int64_t{1} << 31) && N < (int64_t{1} << 31) && K < (int64_t{1} << 31),
               "matrix product too large for the BLAS: ", M, " x ", K, " x ", N);
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(lda), lb = static_cast<int>(ldb), lc = static_cast<int>(ldc);
    fn(tb ? "T" : "N", ta ? "T" : "N", &m, &n, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
    return;
  }
  at::Tensor c = view(C, M, N, ldc, false);
  const at::Tensor a = view(A, M, K, lda, ta), b = view(B, K, N, ldb, tb);
  if (beta == T(0)) {
    at::mm_out(c, a, b);
    if (alpha != T(1)) c.mul_(alpha);
  } else {
    at::addmm_out(c, c, a, b, beta, alpha);
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace mslr::kernels
