// The regression kernels of the batched step (kernels.h): products and the residual pass over a minibatch's
// rows, read where they lie in the recording (a row pointer each) rather than gathered into a copy first.
//
// As in dense.cpp, tiles of the result stay in registers and every value is a sum in one fixed order:
// row_dots sums along a row lane by lane, then by a fixed tree over the lanes, then the last values that do
// not fill a vector one by one; row_sums and the residual pass sum over rows in row order. So no value
// depends on the tiling, on which rows a call covers beside its own, or on the threads.
#include "mslr/core/error.h"
#include "mslr/model/kernels.h"
#include "vector.h"

namespace mslr::kernels {
namespace {

using simd::lane_sum;
using simd::load;
using simd::store;
using simd::V;
using simd::Vec;

template <class T>
MSLR_INLINE void prefetch_row(const T* p) {
  __builtin_prefetch(p);
  __builtin_prefetch(reinterpret_cast<const char*>(p) + 64);
}

// out[i, k] = alpha Σ_j rows[i][j] bT[k, j] for R rows and K vectors of bT.
template <class T, int R, int K>
MSLR_INLINE void dots_tile(int64_t n, const T* const* rows, const T* bT, int64_t ld_b, T alpha, T* out,
                           int64_t ld_out) {
  constexpr int64_t L = Vec<T>::lanes;
  V<T> acc[R][K] = {};
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    V<T> a[R], b[K];
    for (int i = 0; i < R; ++i)
      a[i] = load(rows[i] + j);
    for (int k = 0; k < K; ++k)
      b[k] = load(bT + k * ld_b + j);
    for (int i = 0; i < R; ++i)
      for (int k = 0; k < K; ++k)
        acc[i][k] += a[i] * b[k];
  }
  for (int i = 0; i < R; ++i)
    for (int k = 0; k < K; ++k) {
      T v = lane_sum(acc[i][k]);
      for (int64_t q = j; q < n; ++q)
        v += rows[i][q] * bT[k * ld_b + q];
      out[i * ld_out + k] = alpha * v;
    }
}

template <class T, int R, int K>
MSLR_INLINE void dots_rows(int64_t n, const T* const* rows, int64_t nk, const T* bT, int64_t ld_b, T alpha,
                           T* out, int64_t ld_out) {
  int64_t k = 0;
  for (; k + K <= nk; k += K)
    dots_tile<T, R, K>(n, rows, bT + k * ld_b, ld_b, alpha, out + k, ld_out);
  for (; k < nk; ++k)
    dots_tile<T, R, 1>(n, rows, bT + k * ld_b, ld_b, alpha, out + k, ld_out);
}

template <class T, int R, int K>
MSLR_INLINE void dots_all(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* bT, int64_t ld_b,
                          T alpha, T* out, int64_t ld_out) {
  int64_t i = 0;
  for (; i + R <= m; i += R)
    dots_rows<T, R, K>(n, rows + i, nk, bT, ld_b, alpha, out + i * ld_out, ld_out);
  for (; i < m; ++i)
    dots_rows<T, 1, K>(n, rows + i, nk, bT, ld_b, alpha, out + i * ld_out, ld_out);
}

// outT[k, j] = alpha Σ_i c[i, k] rows[i][j] for K coefficients and CV vectors of columns from j (or, with
// CV = 0, the one column j).
template <class T, int K, int CV>
MSLR_INLINE void sums_tile(int64_t m, const T* const* rows, int64_t j, const T* c, int64_t ld_c, T alpha,
                           T* outT, int64_t ld_out) {
  constexpr int64_t L = Vec<T>::lanes;
  if constexpr (CV == 0) {
    T acc[K] = {};
    for (int64_t i = 0; i < m; ++i)
      for (int k = 0; k < K; ++k)
        acc[k] += c[i * ld_c + k] * rows[i][j];
    for (int k = 0; k < K; ++k)
      outT[k * ld_out + j] = alpha * acc[k];
  } else {
    V<T> acc[K][CV] = {};
    for (int64_t i = 0; i < m; ++i) {
      if (i + 4 < m) prefetch_row(rows[i + 4] + j);
      V<T> a[CV];
      for (int v = 0; v < CV; ++v)
        a[v] = load(rows[i] + j + v * L);
      for (int k = 0; k < K; ++k) {
        const T ck = c[i * ld_c + k];
        for (int v = 0; v < CV; ++v)
          acc[k][v] += ck * a[v];
      }
    }
    for (int k = 0; k < K; ++k)
      for (int v = 0; v < CV; ++v)
        store(outT + k * ld_out + j + v * L, alpha * acc[k][v]);
  }
}

template <class T, int K, int CV>
MSLR_INLINE void sums_cols(int64_t m, int64_t n, const T* const* rows, const T* c, int64_t ld_c, T alpha,
                           T* outT, int64_t ld_out) {
  constexpr int64_t L = Vec<T>::lanes;
  int64_t j = 0;
  for (; j + CV * L <= n; j += CV * L)
    sums_tile<T, K, CV>(m, rows, j, c, ld_c, alpha, outT, ld_out);
  for (; j + L <= n; j += L)
    sums_tile<T, K, 1>(m, rows, j, c, ld_c, alpha, outT, ld_out);
  for (; j < n; ++j)
    sums_tile<T, K, 0>(m, rows, j, c, ld_c, alpha, outT, ld_out);
}

template <class T, int K, int CV>
MSLR_INLINE void sums_all(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* c, int64_t ld_c,
                          T alpha, T* outT, int64_t ld_out) {
  int64_t k = 0;
  for (; k + K <= nk; k += K)
    sums_cols<T, K, CV>(m, n, rows, c + k, ld_c, alpha, outT + k * ld_out, ld_out);
  for (; k < nk; ++k)
    sums_cols<T, 1, CV>(m, n, rows, c + k, ld_c, alpha, outT + k * ld_out, ld_out);
}

// The residual pass (kernels.h) over all rows for one vector of columns from j: per-variable sums in
// registers (Σ e² as float64 halves). residual_column below is the same arithmetic for one column, for the
// columns that do not fill a vector.
template <class T>
MSLR_INLINE void residual_vector(const ResidualArgs<T>& a, int64_t j) {
  using W = V<double>;
  constexpr int kHalves = sizeof(T) == 4 ? 2 : 1;
  const int64_t m = a.m, ld_o = a.ld_o, ld_dz = a.ld_dz, ld_mean = a.ld_mean;
  const T* __restrict o_ = a.o + j;
  const T* const* y = a.y;
  T* __restrict dz_ = a.dz ? a.dz + j : nullptr;
  T* __restrict mean_ = a.mean ? a.mean + j : nullptr;
  const T w = a.weight;
  const V<T> sc = load(a.scale + j), of = load(a.offset + j), ip = load(a.ipsi + j);
  V<T> doff = {}, dscale = {};
  W sq[kHalves] = {};
  for (int64_t i = 0; i < m; ++i) {
    const V<T> o = load(o_ + i * ld_o);
    const V<T> mn = sc * o + of;
    const V<T> e = mn - load(y[i] + j);
    if constexpr (kHalves == 2) {
      const W lo = __builtin_convertvector(__builtin_shufflevector(e, e, 0, 1, 2, 3, 4, 5, 6, 7), W);
      const W hi = __builtin_convertvector(__builtin_shufflevector(e, e, 8, 9, 10, 11, 12, 13, 14, 15), W);
      sq[0] += lo * lo;
      sq[1] += hi * hi;
    } else {
      const W ew = __builtin_convertvector(e, W);
      sq[0] += ew * ew;
    }
    if (mean_) {
      store(mean_ + i * ld_mean, mn);
      continue;
    }
    const V<T> g = w * e * ip;
    doff += g;
    dscale += g * o;
    store(dz_ + i * ld_dz, g * sc);
  }
  for (int h = 0; h < kHalves; ++h)
    store(a.sq + j + h * Vec<double>::lanes, sq[h]);
  if (mean_) return;
  store(a.doff + j, doff);
  store(a.dscale + j, dscale);
}

template <class T>
MSLR_INLINE void residual_column(const ResidualArgs<T>& a, int64_t j) {
  const T sc = a.scale[j], of = a.offset[j], ip = a.ipsi[j];
  T doff = 0, dscale = 0;
  double sq = 0;
  for (int64_t i = 0; i < a.m; ++i) {
    const T o = a.o[i * a.ld_o + j];
    const T mn = sc * o + of;
    const T e = mn - a.y[i][j];
    const double ew = static_cast<double>(e);
    sq += ew * ew;
    if (a.mean) {
      a.mean[i * a.ld_mean + j] = mn;
      continue;
    }
    const T g = a.weight * e * ip;
    doff += g;
    dscale += g * o;
    a.dz[i * a.ld_dz + j] = g * sc;
  }
  a.sq[j] = sq;
  if (a.mean) return;
  a.doff[j] = doff;
  a.dscale[j] = dscale;
}

template <class T>
MSLR_INLINE void residual_all(const ResidualArgs<T>& a) {
  constexpr int64_t L = Vec<T>::lanes;
  int64_t j = 0;
  for (; j + L <= a.cols; j += L)
    residual_vector(a, j);
  for (; j < a.cols; ++j)
    residual_column(a, j);
}

// One version per feature level (vector.h): AVX-512 tiles of 4 x 4 vectors, AVX2 and SSE 2 x 2.
#ifdef MSLR_LEVELS
#define MSLR_DOTS_ARGS                                                                                \
  int64_t m, int64_t n, const T *const *rows, int64_t nk, const T *bT, int64_t ld_b, T alpha, T *out, \
      int64_t ld_out
#define MSLR_SUMS_ARGS                                                                                \
  int64_t m, int64_t n, const T *const *rows, int64_t nk, const T *c, int64_t ld_c, T alpha, T *outT, \
      int64_t ld_out
template <class T>
MSLR_TARGET_V4 void dots_v4(MSLR_DOTS_ARGS) {
  dots_all<T, 4, 4>(m, n, rows, nk, bT, ld_b, alpha, out, ld_out);
}
template <class T>
MSLR_TARGET_V3 void dots_v3(MSLR_DOTS_ARGS) {
  dots_all<T, 2, 2>(m, n, rows, nk, bT, ld_b, alpha, out, ld_out);
}
template <class T>
MSLR_TARGET_V4 void sums_v4(MSLR_SUMS_ARGS) {
  sums_all<T, 4, 4>(m, n, rows, nk, c, ld_c, alpha, outT, ld_out);
}
template <class T>
MSLR_TARGET_V3 void sums_v3(MSLR_SUMS_ARGS) {
  sums_all<T, 2, 2>(m, n, rows, nk, c, ld_c, alpha, outT, ld_out);
}
template <class T>
MSLR_TARGET_V4 void residual_v4(const ResidualArgs<T>& a) {
  residual_all(a);
}
template <class T>
MSLR_TARGET_V3 void residual_v3(const ResidualArgs<T>& a) {
  residual_all(a);
}
#undef MSLR_DOTS_ARGS
#undef MSLR_SUMS_ARGS
#endif

}  // namespace

template <class T>
void row_dots(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* bT, int64_t ld_b, T alpha,
              T* out, int64_t ld_out) {
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return dots_v4<T>(m, n, rows, nk, bT, ld_b, alpha, out, ld_out);
  if (simd::level() == 3) return dots_v3<T>(m, n, rows, nk, bT, ld_b, alpha, out, ld_out);
#endif
  dots_all<T, 2, 2>(m, n, rows, nk, bT, ld_b, alpha, out, ld_out);
}

template <class T>
void row_sums(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* c, int64_t ld_c, T alpha,
              T* outT, int64_t ld_out) {
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return sums_v4<T>(m, n, rows, nk, c, ld_c, alpha, outT, ld_out);
  if (simd::level() == 3) return sums_v3<T>(m, n, rows, nk, c, ld_c, alpha, outT, ld_out);
#endif
  sums_all<T, 2, 2>(m, n, rows, nk, c, ld_c, alpha, outT, ld_out);
}

template <class T>
void residual_pass(const ResidualArgs<T>& a) {
  MSLR_CHECK(a.mean || (a.dz && a.doff && a.dscale), "residual pass: no means and no gradients");
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return residual_v4<T>(a);
  if (simd::level() == 3) return residual_v3<T>(a);
#endif
  residual_all(a);
}

#define MSLR_INSTANTIATE(T)                                                                                 \
  template void row_dots<T>(int64_t, int64_t, const T* const*, int64_t, const T*, int64_t, T, T*, int64_t); \
  template void row_sums<T>(int64_t, int64_t, const T* const*, int64_t, const T*, int64_t, T, T*, int64_t); \
  template void residual_pass<T>(const ResidualArgs<T>&);
MSLR_INSTANTIATE(float)
MSLR_INSTANTIATE(double)
#undef MSLR_INSTANTIATE

}  // namespace mslr::kernels
