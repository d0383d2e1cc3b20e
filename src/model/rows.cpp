// The regression kernels of the batched step (kernels.h): products and the residual pass over a minibatch's
// rows, read where they lie in the recording (a row pointer each) rather than gathered into a copy first.
//
// As in dense.cpp, tiles of the result stay in registers and every value is a sum in one fixed order:
// row_dots sums along a row lane by lane (the values after the last whole vector in the lanes of the row's
// last vector, the lanes already summed cleared), then by a fixed tree over the lanes (one by one below a
// vector's length); row_sums_into and the residual pass sum over rows in row order, each column alone in its
// lane. So no value depends on the tiling, on which rows a call covers beside its own, or on the threads, and
// the columns that do not fill a vector cost one vector's work rather than a vector's work each.
#include "mslr/core/error.h"
#include "mslr/model/kernels.h"
#include "vector.h"

#include <algorithm>

namespace mslr::kernels {

template <class T>
void prefetch_heads(int64_t m, int64_t n, const T* const* rows) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; j += kLine)
      __builtin_prefetch(rows[i] + j);
}

namespace {

using simd::lane_sum;
using simd::load;
using simd::store;
using simd::V;
using simd::Vec;
using simd::VInt;

// Asks for the data `ahead` values past p along its row (an address that may lie past the row's end: it is
// only ever prefetched, never read).
template <class T>
MSLR_INLINE void prefetch_along(const T* p, int64_t ahead) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + ahead * sizeof(T)));
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
    for (int i = 0; i < R; ++i) {
      prefetch_along(rows[i] + j, kRowsAhead);
      a[i] = load(rows[i] + j);
    }
    for (int k = 0; k < K; ++k)
      b[k] = load(bT + k * ld_b + j);
    for (int i = 0; i < R; ++i)
      for (int k = 0; k < K; ++k)
        acc[i][k] += a[i] * b[k];
  }
  if (j < n && n >= L) {  // the last values: the rows' last vectors, the lanes already summed cleared
    const VInt last = simd::last_lanes<T>(n - j);
    V<T> a[R], b[K];
    for (int i = 0; i < R; ++i)
      a[i] = simd::keep<T>(load(rows[i] + n - L), last);
    for (int k = 0; k < K; ++k)
      b[k] = simd::keep<T>(load(bT + k * ld_b + n - L), last);
    for (int i = 0; i < R; ++i)
      for (int k = 0; k < K; ++k)
        acc[i][k] += a[i] * b[k];
    j = n;
  }
  T sums[R * K];
  simd::tile_lane_sums<T, R, K>(acc, sums);
  for (int i = 0; i < R; ++i)
    for (int k = 0; k < K; ++k) {
      T v = sums[i * K + k];
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
  for (; i + R <= m; i += R) {
    // The next group's rows, from their start up to where its own prefetch begins.
    if (i + R < m) prefetch_heads(std::min(int64_t{R}, m - i - R), std::min(kRowsAhead, n), rows + i + R);
    dots_rows<T, R, K>(n, rows + i, nk, bT, ld_b, alpha, out + i * ld_out, ld_out);
  }
  for (; i < m; ++i)
    dots_rows<T, 1, K>(n, rows + i, nk, bT, ld_b, alpha, out + i * ld_out, ld_out);
}

// outT[k, j] += Σ_i c[i, k] rows[i][j] for K coefficients and CV vectors of columns from j (or, with CV = 0,
// the one column j).
template <class T, int K, int CV>
MSLR_INLINE void sums_tile(int64_t m, const T* const* rows, int64_t j, const T* c, int64_t ld_c, T* outT,
                           int64_t ld_out) {
  constexpr int64_t L = Vec<T>::lanes;
  if constexpr (CV == 0) {
    T acc[K];
    for (int k = 0; k < K; ++k)
      acc[k] = outT[k * ld_out + j];
    for (int64_t i = 0; i < m; ++i)
      for (int k = 0; k < K; ++k)
        acc[k] += c[i * ld_c + k] * rows[i][j];
    for (int k = 0; k < K; ++k)
      outT[k * ld_out + j] = acc[k];
  } else {
    V<T> acc[K][CV];
    for (int k = 0; k < K; ++k)
      for (int v = 0; v < CV; ++v)
        acc[k][v] = load(outT + k * ld_out + j + v * L);
    for (int64_t i = 0; i < m; ++i) {
      for (int v = 0; v < CV; ++v)
        prefetch_along(rows[i] + j + v * L, kRowsAhead);
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
        store(outT + k * ld_out + j + v * L, acc[k][v]);
  }
}

// sums_tile for the last w < L columns of n >= L: the rows' last vectors, with the lanes of the columns
// already summed cleared and their sums stored back untouched; each column's sum the same arithmetic, in the
// same order, as one by one.
template <class T, int K>
MSLR_INLINE void sums_last(int64_t m, int64_t n, const T* const* rows, int64_t w, const T* c, int64_t ld_c,
                           T* outT, int64_t ld_out) {
  const VInt last = simd::last_lanes<T>(w);
  V<T> before[K], acc[K];
  for (int k = 0; k < K; ++k)
    acc[k] = before[k] = load(outT + k * ld_out + n - Vec<T>::lanes);
  for (int64_t i = 0; i < m; ++i) {
    const V<T> a = simd::keep<T>(load(rows[i] + n - Vec<T>::lanes), last);
    for (int k = 0; k < K; ++k)
      acc[k] += c[i * ld_c + k] * a;
  }
  for (int k = 0; k < K; ++k)
    store(outT + k * ld_out + n - Vec<T>::lanes, simd::blend<T>(acc[k], before[k], last));
}

template <class T, int K, int CV>
MSLR_INLINE void sums_cols(int64_t m, int64_t n, const T* const* rows, const T* c, int64_t ld_c, T* outT,
                           int64_t ld_out) {
  constexpr int64_t L = Vec<T>::lanes;
  int64_t j = 0;
  for (; j + CV * L <= n; j += CV * L)
    sums_tile<T, K, CV>(m, rows, j, c, ld_c, outT, ld_out);
  for (; j + L <= n; j += L)
    sums_tile<T, K, 1>(m, rows, j, c, ld_c, outT, ld_out);
  if (j < n && n >= L) return sums_last<T, K>(m, n, rows, n - j, c, ld_c, outT, ld_out);
  for (; j < n; ++j)
    sums_tile<T, K, 0>(m, rows, j, c, ld_c, outT, ld_out);
}

template <class T, int K, int CV>
MSLR_INLINE void sums_all(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* c, int64_t ld_c,
                          T* outT, int64_t ld_out) {
  int64_t k = 0;
  for (; k + K <= nk; k += K)
    sums_cols<T, K, CV>(m, n, rows, c + k, ld_c, outT + k * ld_out, ld_out);
  for (; k < nk; ++k)
    sums_cols<T, 1, CV>(m, n, rows, c + k, ld_c, outT + k * ld_out, ld_out);
}

// Σ e² of float32 outputs is summed in float64 per run of kSquareRun rows, each run's e² summed in float32
// first (its rounding is that of 4 terms, all positive): a conversion to float64 per row cost more than the
// rest of the residual's arithmetic.
constexpr int kSquareRun = 4;

MSLR_INLINE void add_halves(V<double> (&sq)[2], V<float> v) {
  sq[0] += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), V<double>);
  sq[1] += __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), V<double>);
}
MSLR_INLINE void add_halves(V<double> (&)[1], V<double>) {}

// The residual pass (kernels.h) over all rows for one vector of columns from j: per-variable sums in
// registers (Σ e² as float64 halves). With FD > 0 (a.D == FD) the outputs are the latent drive of FD modes,
// computed here from tran and uT, and du is summed in registers too. Without kAffine (no scale and no offset)
// mn is o itself and the sums for them are not taken: the same values, fewer operations a row. residual_tail
// below puts the columns that do not fill a vector through it too, padded with zeros.
template <class T, int FD, bool kAffine>
MSLR_INLINE void residual_vector(const ResidualArgs<T>& a, int64_t j) {
  using W = V<double>;
  constexpr int kHalves = sizeof(T) == 4 ? 2 : 1;
  constexpr int kU = FD > 0 ? FD : 1;
  const int64_t m = a.m, ld_o = a.ld_o, ld_dz = a.ld_dz, ld_mean = a.ld_mean;
  const T* __restrict o_ = FD > 0 ? nullptr : a.o + j;
  const T* __restrict tran = a.tran;
  const T* const* y = a.y;
  T* __restrict dz_ = a.dz ? a.dz + j : nullptr;
  T* __restrict mean_ = a.mean ? a.mean + j : nullptr;
  const bool du_ = FD > 0 && a.duT;
  const V<T> wip = a.weight * load(a.ipsi + j);
  V<T> sc = {}, of = {};
  if constexpr (kAffine) {
    sc = load(a.scale + j);
    of = load(a.offset + j);
  }
  const bool resume = a.resume;
  V<T> u[kU], du[kU];
  for (int k = 0; k < FD; ++k) {
    u[k] = load(a.uT + k * a.ld_u + j);
    du[k] = resume && du_ ? load(a.duT + k * a.ld_du + j) : V<T>{};
  }
  V<T> doff = {}, dscale = {};
  if (kAffine && resume && !mean_) {
    doff = load(a.doff + j);
    dscale = load(a.dscale + j);
  }
  W sq[kHalves] = {};
  if (resume)
    for (int h = 0; h < kHalves; ++h)
      sq[h] = load(a.sq + j + h * Vec<double>::lanes);
  V<T> sq_run = {};  // float32: e² of the last rows, up to kSquareRun of them
  int run = 0;
  for (int64_t i = 0; i < m; ++i) {
    V<T> o;
    if constexpr (FD > 0) {
      o = tran[i * FD] * u[0];
      for (int k = 1; k < FD; ++k)
        o += tran[i * FD + k] * u[k];
    } else {
      o = load(o_ + i * ld_o);
    }
    V<T> mn = o;
    if constexpr (kAffine) mn = sc * o + of;
    if (a.ahead) prefetch_along(y[i] + j, a.ahead);
    const V<T> e = mn - load(y[i] + j);
    if constexpr (kHalves == 2) {
      sq_run += e * e;
      if (++run == kSquareRun || i + 1 == m) {
        add_halves(sq, sq_run);
        sq_run = V<T>{};
        run = 0;
      }
    } else {
      const W ew = __builtin_convertvector(e, W);
      sq[0] += ew * ew;
    }
    if (mean_) {
      store(mean_ + i * ld_mean, mn);
      continue;
    }
    const V<T> g = e * wip;
    V<T> d = g;
    if constexpr (kAffine) {
      doff += g;
      dscale += g * o;
      d = g * sc;
    }
    store(dz_ + i * ld_dz, d);
    if (du_)
      for (int k = 0; k < FD; ++k)
        du[k] += tran[i * FD + k] * d;
  }
  for (int h = 0; h < kHalves; ++h)
    store(a.sq + j + h * Vec<double>::lanes, sq[h]);
  if (mean_) return;
  if constexpr (kAffine) {
    store(a.doff + j, doff);
    store(a.dscale + j, dscale);
  }
  if (du_)
    for (int k = 0; k < FD; ++k)
      store(a.duT + k * a.ld_du + j, du[k]);
}

// The columns from j to the end, fewer than a vector's worth: copied into vectors padded with zeros and put
// through residual_vector, whose lanes never mix, so that each column gets the bits it would get in a whole
// vector and the last columns of a chunk cost one vector's work, not one vector's work each. The rows go
// through in groups of kTailRows (a multiple of kSquareRun, so that Σ e² keeps its runs of rows), and only the
// lanes of real columns are copied back.
constexpr int64_t kTailRows = 16;
static_assert(kTailRows % kSquareRun == 0);

template <class T, int FD, bool kAffine>
MSLR_INLINE void residual_tail(const ResidualArgs<T>& a, int64_t j) {
  constexpr int64_t L = Vec<T>::lanes, G = kTailRows;
  constexpr int kU = FD > 0 ? FD : 1;
  const int64_t w = a.cols - j;
  const bool step = !a.mean, du_ = FD > 0 && a.duT && step;
  alignas(simd::kVectorBytes) T ipsi[L] = {}, scale[L] = {}, offset[L] = {}, doff[L] = {}, dscale[L] = {};
  alignas(simd::kVectorBytes) T u[kU][L] = {}, du[kU][L] = {};
  alignas(simd::kVectorBytes) T y[G][L] = {}, o[G][L] = {}, out[G][L] = {};
  alignas(simd::kVectorBytes) double sq[L] = {};
  const T* y_rows[G];
  ResidualArgs<T> t = a;
  t.cols = L;
  t.ahead = 0;
  std::copy_n(a.ipsi + j, w, ipsi);
  t.ipsi = ipsi;
  if constexpr (kAffine) {
    std::copy_n(a.scale + j, w, scale);
    std::copy_n(a.offset + j, w, offset);
    t.scale = scale;
    t.offset = offset;
    if (a.resume && step) {
      std::copy_n(a.doff + j, w, doff);
      std::copy_n(a.dscale + j, w, dscale);
    }
    t.doff = doff;
    t.dscale = dscale;
  }
  if (a.resume) std::copy_n(a.sq + j, w, sq);
  t.sq = sq;
  for (int k = 0; k < FD; ++k) {
    std::copy_n(a.uT + k * a.ld_u + j, w, u[k]);
    if (du_ && a.resume) std::copy_n(a.duT + k * a.ld_du + j, w, du[k]);
  }
  t.uT = u[0];
  t.ld_u = L;
  t.duT = du_ ? du[0] : nullptr;
  t.ld_du = L;
  t.y = y_rows;
  t.o = o[0];
  t.ld_o = L;
  t.mean = step ? nullptr : out[0];
  t.ld_mean = L;
  t.dz = step ? out[0] : nullptr;
  t.ld_dz = L;
  int64_t g = 0;
  do {  // once at least: no rows still set the sums
    const int64_t m = std::min(G, a.m - g);
    for (int64_t i = 0; i < m; ++i) {
      std::copy_n(a.y[g + i] + j, w, y[i]);
      y_rows[i] = y[i];
      if constexpr (FD == 0) std::copy_n(a.o + (g + i) * a.ld_o + j, w, o[i]);
    }
    t.m = m;
    if (FD > 0) t.tran = a.tran + g * FD;
    t.resume = a.resume || g > 0;
    residual_vector<T, FD, kAffine>(t, 0);
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(out[i], w, step ? a.dz + (g + i) * a.ld_dz + j : a.mean + (g + i) * a.ld_mean + j);
    g += m;
  } while (g < a.m);
  std::copy_n(sq, w, a.sq + j);
  if (!step) return;
  if constexpr (kAffine) {
    std::copy_n(doff, w, a.doff + j);
    std::copy_n(dscale, w, a.dscale + j);
  }
  for (int k = 0; du_ && k < FD; ++k)
    std::copy_n(du[k], w, a.duT + k * a.ld_du + j);
}

template <class T, int FD, bool kAffine>
MSLR_INLINE void residual_cols(const ResidualArgs<T>& a) {
  constexpr int64_t L = Vec<T>::lanes;
  int64_t j = 0;
  for (; j + L <= a.cols; j += L)
    residual_vector<T, FD, kAffine>(a, j);
  if (j < a.cols) residual_tail<T, FD, kAffine>(a, j);
}

// The latent width as a compile-time constant, so that u and du stay in registers (1 to 16 modes), and
// whether there are scales and offsets.
template <class T, bool kAffine>
MSLR_INLINE void residual_modes(const ResidualArgs<T>& a) {
  if (!a.tran) return residual_cols<T, 0, kAffine>(a);
  switch (a.D) {
#define MSLR_RESIDUAL_CASE(n) \
  case n:                     \
    return residual_cols<T, n, kAffine>(a);
    MSLR_RESIDUAL_CASE(1)
    MSLR_RESIDUAL_CASE(2)
    MSLR_RESIDUAL_CASE(3)
    MSLR_RESIDUAL_CASE(4)
    MSLR_RESIDUAL_CASE(5)
    MSLR_RESIDUAL_CASE(6)
    MSLR_RESIDUAL_CASE(7)
    MSLR_RESIDUAL_CASE(8)
    MSLR_RESIDUAL_CASE(9)
    MSLR_RESIDUAL_CASE(10)
    MSLR_RESIDUAL_CASE(11)
    MSLR_RESIDUAL_CASE(12)
    MSLR_RESIDUAL_CASE(13)
    MSLR_RESIDUAL_CASE(14)
    MSLR_RESIDUAL_CASE(15)
    MSLR_RESIDUAL_CASE(16)
#undef MSLR_RESIDUAL_CASE
  }
}

template <class T>
MSLR_INLINE void residual_all(const ResidualArgs<T>& a) {
  if (a.scale) return residual_modes<T, true>(a);
  residual_modes<T, false>(a);
}

// One version per feature level (vector.h): AVX-512 tiles of 4 x 4 vectors, AVX2 and SSE 2 x 2.
#ifdef MSLR_LEVELS
#define MSLR_DOTS_ARGS                                                                                \
  int64_t m, int64_t n, const T *const *rows, int64_t nk, const T *bT, int64_t ld_b, T alpha, T *out, \
      int64_t ld_out
#define MSLR_SUMS_ARGS \
  int64_t m, int64_t n, const T *const *rows, int64_t nk, const T *c, int64_t ld_c, T *outT, int64_t ld_out
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
  sums_all<T, 4, 4>(m, n, rows, nk, c, ld_c, outT, ld_out);
}
template <class T>
MSLR_TARGET_V3 void sums_v3(MSLR_SUMS_ARGS) {
  sums_all<T, 2, 2>(m, n, rows, nk, c, ld_c, outT, ld_out);
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
void row_sums_into(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* c, int64_t ld_c, T* outT,
                   int64_t ld_out) {
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return sums_v4<T>(m, n, rows, nk, c, ld_c, outT, ld_out);
  if (simd::level() == 3) return sums_v3<T>(m, n, rows, nk, c, ld_c, outT, ld_out);
#endif
  sums_all<T, 2, 2>(m, n, rows, nk, c, ld_c, outT, ld_out);
}

template <class T>
void residual_pass(const ResidualArgs<T>& a) {
  MSLR_CHECK(a.mean || (a.dz && (!a.scale || (a.doff && a.dscale))),
             "residual pass: no means and no gradients");
  MSLR_CHECK(!a.scale == !a.offset, "residual pass: scales without offsets or offsets without scales");
  MSLR_CHECK(!a.tran || (a.D >= 1 && a.D <= kFusedModes && a.uT),
             "residual pass: a fused latent drive needs 1 to ", kFusedModes, " modes and their uT");
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return residual_v4<T>(a);
  if (simd::level() == 3) return residual_v3<T>(a);
#endif
  residual_all(a);
}

#define MSLR_INSTANTIATE(T)                                                                                 \
  template void row_dots<T>(int64_t, int64_t, const T* const*, int64_t, const T*, int64_t, T, T*, int64_t); \
  template void row_sums_into<T>(int64_t, int64_t, const T* const*, int64_t, const T*, int64_t, T*,         \
                                 int64_t);                                                                  \
  template void residual_pass<T>(const ResidualArgs<T>&);                                                   \
  template void prefetch_heads<T>(int64_t, int64_t, const T* const*);
MSLR_INSTANTIATE(float)
MSLR_INSTANTIATE(double)
#undef MSLR_INSTANTIATE

}  // namespace mslr::kernels
