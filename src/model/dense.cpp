// The dense-layer kernels of the batched step's MLPs (kernels.h): register-tiled products written for the
// shapes of a predictor layer (hundreds of rows, 3 to 64 features), where a BLAS call costs more in set-up
// and in its odd shapes than the arithmetic. The blocks are feature-major — [features, rows] — so that the
// vectors run along the rows, which every layer has many of, and no width is padded.
//
// Each kernel keeps a tile of the result in registers and streams its operands through it. Every value of a
// result is a sum in one fixed order (over k for a layer's outputs; lane by lane over rows, then a fixed tree
// over the lanes, for a weight gradient), whatever tile it falls in, so the results depend neither on the
// tiling nor on the threads. The tiles are compiled per x86-64 feature level, larger where there are more
// vector registers.
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

// The epilogue E of a forward tile (DenseEpilogue): 0 none, 1 tanh, 2 times tanh's derivative 1 - h².
template <class T, int E>
MSLR_INLINE V<T> epilogue(V<T> acc, const T* h) {
  if constexpr (E == 1) {
    static_assert(sizeof(T) == 4, "the fused tanh is float32's");
    return simd::tanh(acc);
  } else if constexpr (E == 2) {
    const V<T> hv = load(h);
    return acc * (T(1) - hv * hv);
  } else {
    return acc;
  }
}

// out[j, r] = bias[j] + Σ_k A(k, j) in[k, r] for J outputs from j and RV vectors of rows from r; k in order;
// then the epilogue E on the tile in registers (h: the epilogue's operand at out's place, leading dimension
// ld_out).
template <class T, int J, int RV, int E>
MSLR_INLINE void forward_tile(int64_t wi, const T* A, int64_t sk, int64_t sj, const T* bias, const T* in,
                              int64_t ld_in, T* out, int64_t ld_out, const T* h) {
  constexpr int64_t L = Vec<T>::lanes;
  V<T> acc[J][RV];
  for (int j = 0; j < J; ++j) {
    const T b = bias ? bias[j] : T(0);
    for (int v = 0; v < RV; ++v)
      acc[j][v] = V<T>{} + b;
  }
  for (int64_t k = 0; k < wi; ++k) {
    V<T> x[RV];
    for (int v = 0; v < RV; ++v)
      x[v] = load(in + k * ld_in + v * L);
    for (int j = 0; j < J; ++j) {
      const T a = A[k * sk + j * sj];
      for (int v = 0; v < RV; ++v)
        acc[j][v] += a * x[v];
    }
  }
  for (int j = 0; j < J; ++j)
    for (int v = 0; v < RV; ++v)
      store(out + j * ld_out + v * L, epilogue<T, E>(acc[j][v], h + j * ld_out + v * L));
}

// The cache lines from p to end, asked for into L2 one per step (an address, not a pointer: the range may end
// anywhere in a line).
struct Lines {
  uintptr_t p = 0, end = 0;
  MSLR_INLINE void step() {
    if (p < end) {
      __builtin_prefetch(reinterpret_cast<const void*>(p), 0, 2);
      p += simd::kVectorBytes;
    }
  }
};

// G(k, j) = Σ_r in[k, r] dz[j, r] over r < n for K weight rows from k and J columns from j, and, when gb is
// set, gb[j] = Σ_r dz[j, r] too.
template <class T, int K, int J>
MSLR_INLINE void weight_tile(int64_t n, const T* in, int64_t ld_in, const T* dz, int64_t ld_dz, T* G,
                             int64_t wo, T* gb, Lines& ahead) {
  constexpr int64_t L = Vec<T>::lanes;
  V<T> acc[K][J] = {}, bacc[J] = {};
  for (int64_t r = 0; r < n; r += L) {
    ahead.step();
    V<T> x[K], d[J];
    for (int k = 0; k < K; ++k)
      x[k] = load(in + k * ld_in + r);
    for (int j = 0; j < J; ++j) {
      d[j] = load(dz + j * ld_dz + r);
      if (gb) bacc[j] += d[j];
    }
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < J; ++j)
        acc[k][j] += x[k] * d[j];
  }
  T sums[K * J];
  simd::tile_lane_sums<T, K, J>(acc, sums);
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < J; ++j)
      G[k * wo + j] = sums[k * J + j];
  if (gb)
    for (int j = 0; j < J; ++j)
      gb[j] = lane_sum(bacc[j]);
}

// The drivers: outputs (weight rows) in tiles of J (K), then one at a time; rows in tiles of RV vectors, then
// one vector at a time. (No lambdas here: they would be compiled apart, for the baseline, not inlined into
// the versions below.)
template <class T, int J, int RV, int E>
MSLR_INLINE void forward_rows(int64_t n, int64_t wi, const T* A, int64_t sk, int64_t sj, const T* bias,
                              const T* in, int64_t ld_in, T* out, int64_t ld_out, const T* h) {
  constexpr int64_t L = Vec<T>::lanes;
  int64_t r = 0;
  for (; r + RV * L <= n; r += RV * L)
    forward_tile<T, J, RV, E>(wi, A, sk, sj, bias, in + r, ld_in, out + r, ld_out, h ? h + r : nullptr);
  for (; r < n; r += L)
    forward_tile<T, J, 1, E>(wi, A, sk, sj, bias, in + r, ld_in, out + r, ld_out, h ? h + r : nullptr);
}

template <class T, int J, int RV, int E>
MSLR_INLINE void forward_all(int64_t n, int64_t wi, int64_t wo, const T* A, int64_t sk, int64_t sj,
                             const T* bias, const T* in, int64_t ld_in, T* out, int64_t ld_out, const T* h) {
  int64_t j = 0;
  for (; j + J <= wo; j += J)
    forward_rows<T, J, RV, E>(n, wi, A + j * sj, sk, sj, bias ? bias + j : nullptr, in, ld_in,
                              out + j * ld_out, ld_out, h ? h + j * ld_out : nullptr);
  for (; j < wo; ++j)
    forward_rows<T, 1, RV, E>(n, wi, A + j * sj, sk, sj, bias ? bias + j : nullptr, in, ld_in,
                              out + j * ld_out, ld_out, h ? h + j * ld_out : nullptr);
}

// The epilogue picked at run time, each compiled into the tiles (kTanh only for float32).
template <class T, int J, int RV>
MSLR_INLINE void forward_any(int64_t n, int64_t wi, int64_t wo, const T* A, int64_t sk, int64_t sj,
                             const T* bias, const T* in, int64_t ld_in, T* out, int64_t ld_out,
                             const DenseEpilogue<T>& e) {
  switch (e.kind) {
    case DenseEpilogue<T>::kTanh:
      if constexpr (sizeof(T) == 4)
        return forward_all<T, J, RV, 1>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, nullptr);
      break;
    case DenseEpilogue<T>::kTanhBackward:
      return forward_all<T, J, RV, 2>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, e.h);
    case DenseEpilogue<T>::kNone:
      return forward_all<T, J, RV, 0>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, nullptr);
  }
}

template <class T, int K, int J>
MSLR_INLINE void weight_cols(int64_t n, int64_t wo, const T* in, int64_t ld_in, const T* dz, int64_t ld_dz,
                             T* G, T* gb, Lines& ahead) {
  int64_t j = 0;
  for (; j + J <= wo; j += J)
    weight_tile<T, K, J>(n, in, ld_in, dz + j * ld_dz, ld_dz, G + j, wo, gb ? gb + j : nullptr, ahead);
  for (; j < wo; ++j)
    weight_tile<T, K, 1>(n, in, ld_in, dz + j * ld_dz, ld_dz, G + j, wo, gb ? gb + j : nullptr, ahead);
}

template <class T, int K, int J>
MSLR_INLINE void weight_all(int64_t n, int64_t wi, int64_t wo, const T* in, int64_t ld_in, const T* dz,
                            int64_t ld_dz, T* G, T* gb, const void* ahead_p, int64_t ahead_bytes) {
  Lines ahead;
  ahead.p = reinterpret_cast<uintptr_t>(ahead_p);
  ahead.end = ahead.p + (ahead_p ? ahead_bytes : 0);
  // The bias's gradient rides with the first weight rows. The rows left after whole tiles go in one tile of
  // their own (a layer of 3 inputs, the usual positions, on AVX-512: one pass over dz instead of three).
  int64_t k = 0;
  for (; k + K <= wi; k += K)
    weight_cols<T, K, J>(n, wo, in + k * ld_in, ld_in, dz, ld_dz, G + k * wo, k == 0 ? gb : nullptr, ahead);
  T* gk = k == 0 ? gb : nullptr;
  if constexpr (K > 3)
    if (wi - k == 3)
      return weight_cols<T, 3, J>(n, wo, in + k * ld_in, ld_in, dz, ld_dz, G + k * wo, gk, ahead);
  if constexpr (K > 2)
    if (wi - k == 2)
      return weight_cols<T, 2, J>(n, wo, in + k * ld_in, ld_in, dz, ld_dz, G + k * wo, gk, ahead);
  for (; k < wi; ++k)
    weight_cols<T, 1, J>(n, wo, in + k * ld_in, ld_in, dz, ld_dz, G + k * wo, k == 0 ? gb : nullptr, ahead);
}

// One version per feature level: AVX-512 has 32 vector registers (tiles of 4 x 4 vectors: 16 accumulators);
// AVX2 and SSE have 16, and need two or four of them for one 64-byte vector (tiles of 2 x 2).
#ifdef MSLR_LEVELS
#define MSLR_FORWARD_ARGS                                                                            \
  int64_t n, int64_t wi, int64_t wo, const T *A, int64_t sk, int64_t sj, const T *bias, const T *in, \
      int64_t ld_in, T *out, int64_t ld_out, const DenseEpilogue<T>&e
#define MSLR_WEIGHT_ARGS                                                                                  \
  int64_t n, int64_t wi, int64_t wo, const T *in, int64_t ld_in, const T *dz, int64_t ld_dz, T *G, T *gb, \
      const void *ahead, int64_t ahead_bytes
template <class T>
MSLR_TARGET_V4 void forward_v4(MSLR_FORWARD_ARGS) {
  forward_any<T, 4, 4>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, e);
}
template <class T>
MSLR_TARGET_V3 void forward_v3(MSLR_FORWARD_ARGS) {
  forward_any<T, 2, 2>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, e);
}
template <class T>
MSLR_TARGET_V4 void weight_v4(MSLR_WEIGHT_ARGS) {
  weight_all<T, 4, 4>(n, wi, wo, in, ld_in, dz, ld_dz, G, gb, ahead, ahead_bytes);
}
template <class T>
MSLR_TARGET_V3 void weight_v3(MSLR_WEIGHT_ARGS) {
  weight_all<T, 2, 2>(n, wi, wo, in, ld_in, dz, ld_dz, G, gb, ahead, ahead_bytes);
}
#undef MSLR_FORWARD_ARGS
#undef MSLR_WEIGHT_ARGS
#endif

template <class T>
void check_rows(int64_t n) {
  MSLR_CHECK(n >= 0 && n % Vec<T>::lanes == 0, "dense kernels: ", n,
             " rows is not a whole number of vectors");
}

}  // namespace

int64_t dense_rows(int64_t rows) {
  constexpr int64_t L = Vec<float>::lanes;  // a multiple of the double vector's lanes too
  return (rows + L - 1) / L * L;
}

template <class T>
void dense_forward(int64_t n, int64_t wi, int64_t wo, const T* A, int64_t sk, int64_t sj, const T* bias,
                   const T* in, int64_t ld_in, T* out, int64_t ld_out, const DenseEpilogue<T>& e) {
  check_rows<T>(n);
  MSLR_CHECK(e.kind != DenseEpilogue<T>::kTanh || sizeof(T) == 4,
             "dense kernels: the fused tanh is float32's");
  MSLR_CHECK(e.kind != DenseEpilogue<T>::kTanhBackward || e.h, "dense kernels: tanh's derivative needs h");
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return forward_v4<T>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, e);
  if (simd::level() == 3) return forward_v3<T>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, e);
#endif
  forward_any<T, 2, 2>(n, wi, wo, A, sk, sj, bias, in, ld_in, out, ld_out, e);
}

template <class T>
void dense_weight_grad(int64_t n, int64_t wi, int64_t wo, const T* in, int64_t ld_in, const T* dz,
                       int64_t ld_dz, T* G, T* gb, const void* ahead, int64_t ahead_bytes) {
  check_rows<T>(n);
#ifdef MSLR_LEVELS
  if (simd::level() == 4) return weight_v4<T>(n, wi, wo, in, ld_in, dz, ld_dz, G, gb, ahead, ahead_bytes);
  if (simd::level() == 3) return weight_v3<T>(n, wi, wo, in, ld_in, dz, ld_dz, G, gb, ahead, ahead_bytes);
#endif
  weight_all<T, 2, 2>(n, wi, wo, in, ld_in, dz, ld_dz, G, gb, ahead, ahead_bytes);
}

#define MSLR_INSTANTIATE(T)                                                                                 \
  template void dense_forward<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t, const T*, const T*, \
                                 int64_t, T*, int64_t, const DenseEpilogue<T>&);                            \
  template void dense_weight_grad<T>(int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, T*,   \
                                     T*, const void*, int64_t);
MSLR_INSTANTIATE(float)
MSLR_INSTANTIATE(double)
#undef MSLR_INSTANTIATE

}  // namespace mslr::kernels
