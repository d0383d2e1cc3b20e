// Private to src/model: the explicit vectors of the batched step's tiled kernels (dense.cpp, rows.cpp), and
// the feature level those kernels are compiled for.
//
// A vector is 64 bytes (16 floats or 8 doubles) on every level: GCC's vector extension maps it onto one
// AVX-512 register, two AVX2 registers or four SSE registers, so the arithmetic — and its order — is the same
// on all of them; only FMA contraction (AVX2 and AVX-512) differs from the baseline. Kernels are written as
// always-inlined templates and instantiated inside one function per level (MSLR_TARGET_V4, MSLR_TARGET_V3),
// with tiles sized to the level's registers; level() says which to call. No lambdas in those templates: a
// lambda is compiled apart, for the baseline, instead of being inlined into the level's function.
#pragma once

#include <cstdint>
#include <cstring>

// The vectors are passed between always-inlined functions only, never across a call: the ABI note GCC gives
// for them does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#define MSLR_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MSLR_LEVELS 1
#define MSLR_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define MSLR_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#endif

namespace mslr::kernels::simd {

constexpr int kVectorBytes = 64;

template <class T>
struct Vec {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  // The same lanes in float64 (for sums kept in float64).
  typedef double wide __attribute__((vector_size(kVectorBytes / sizeof(T) * sizeof(double))));
  static constexpr int64_t lanes = kVectorBytes / sizeof(T);
};
template <class T>
using V = typename Vec<T>::type;

template <class T>
MSLR_INLINE V<T> load(const T* p) {
  V<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
MSLR_INLINE void store(T* p, V<T> v) {
  std::memcpy(p, &v, sizeof v);
}

// The sum of a vector's lanes by a fixed tree: the upper half added to the lower until one lane is left
// (lane i + lane i + L/2, then + L/4, ...), in vector shuffles rather than one lane at a time.
MSLR_INLINE float lane_sum(V<float> v) {
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  return v[0];
}
MSLR_INLINE double lane_sum(V<double> v) {
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3);
  v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1);
  return v[0];
}

// The lane sums of a vector's worth of vectors at once: lane q of the result is lane_sum(a[q]), bit for bit
// (the same tree: each step adds the same pairs of partial sums), with the partial sums of two vectors packed
// into one at every step, so that 16 sums take 15 additions and 30 shuffles instead of 64 and 64.
MSLR_INLINE V<float> lane_sums(const V<float> (&a)[16]) {
  V<float> c[8], d[4], e[2];
  for (int p = 0; p < 8; ++p)  // lanes i and i + 8
    c[p] = __builtin_shufflevector(a[2 * p], a[2 * p + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22,
                                   23) +
           __builtin_shufflevector(a[2 * p], a[2 * p + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28,
                                   29, 30, 31);
  for (int p = 0; p < 4; ++p)  // + 4
    d[p] = __builtin_shufflevector(c[2 * p], c[2 * p + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25,
                                   26, 27) +
           __builtin_shufflevector(c[2 * p], c[2 * p + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29,
                                   30, 31);
  for (int p = 0; p < 2; ++p)  // + 2
    e[p] = __builtin_shufflevector(d[2 * p], d[2 * p + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25,
                                   28, 29) +
           __builtin_shufflevector(d[2 * p], d[2 * p + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27,
                                   30, 31);
  return __builtin_shufflevector(e[0], e[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
         __builtin_shufflevector(e[0], e[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}
MSLR_INLINE V<double> lane_sums(const V<double> (&a)[8]) {
  V<double> c[4], d[2];
  for (int p = 0; p < 4; ++p)  // lanes i and i + 4
    c[p] = __builtin_shufflevector(a[2 * p], a[2 * p + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(a[2 * p], a[2 * p + 1], 4, 5, 6, 7, 12, 13, 14, 15);
  for (int p = 0; p < 2; ++p)  // + 2
    d[p] = __builtin_shufflevector(c[2 * p], c[2 * p + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
           __builtin_shufflevector(c[2 * p], c[2 * p + 1], 2, 3, 6, 7, 10, 11, 14, 15);
  return __builtin_shufflevector(d[0], d[1], 0, 2, 4, 6, 8, 10, 12, 14) +
         __builtin_shufflevector(d[0], d[1], 1, 3, 5, 7, 9, 11, 13, 15);
}

// The lane sums of a tile of A x B accumulators into out[a·B + b]: a vector's worth at once (lane_sums) where
// the tile has that many, else one by one; the same bits either way.
template <class T, int A, int B>
MSLR_INLINE void tile_lane_sums(const V<T> (&acc)[A][B], T* out) {
  constexpr int L = static_cast<int>(Vec<T>::lanes);
  if constexpr (A * B % L == 0) {
    for (int g = 0; g < A * B; g += L) {
      V<T> part[L];
      for (int q = 0; q < L; ++q)
        part[q] = acc[(g + q) / B][(g + q) % B];
      store(out + g, lane_sums(part));
    }
  } else {
    for (int q = 0; q < A * B; ++q)
      out[q] = lane_sum(acc[q / B][q % B]);
  }
}

typedef int32_t VInt __attribute__((vector_size(kVectorBytes)));

// The last w lanes of a V<T> (0 < w <= lanes), as a bit mask over its bytes: a row's last values that do not
// fill a vector are read as the row's last whole vector, with the lanes already summed cleared (keep), so
// that they cost one vector's work instead of one vector's work each.
template <class T>
MSLR_INLINE VInt last_lanes(int64_t w) {
  constexpr int32_t kPer = sizeof(T) / sizeof(int32_t);
  const VInt index = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return index >= static_cast<int32_t>((Vec<T>::lanes - w) * kPer);
}
// v in the lanes of mask, +0 elsewhere (a bit operation: no arithmetic on the lanes cleared).
template <class T>
MSLR_INLINE V<T> keep(V<T> v, VInt mask) {
  return reinterpret_cast<V<T>>(reinterpret_cast<VInt>(v) & mask);
}
// a in the lanes of mask, b elsewhere.
template <class T>
MSLR_INLINE V<T> blend(V<T> a, V<T> b, VInt mask) {
  return reinterpret_cast<V<T>>((reinterpret_cast<VInt>(a) & mask) | (reinterpret_cast<VInt>(b) & ~mask));
}

// ---- exp and tanh pieces, for a float or a vector of floats -------------------------------------------

// 1 / ln 2, and ln 2 in two parts (the first with few mantissa bits, so that n · kLn2Hi is exact).
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;

// Range reduction for exp: y = n ln 2 + r with n = round(y / ln 2) and |r| <= ln(2)/2; ln 2 is split in two
// parts so that r is exact. Returns r and sets n.
template <class F>
MSLR_INLINE F reduce_ln2(F y, F* n) {
  constexpr float kRound = 12582912.0f;  // 1.5 · 2^23: adding and subtracting it rounds to an integer
  *n = (y * kLog2e + kRound) - kRound;
  return (y - *n * kLn2Hi) - *n * kLn2Lo;
}

// exp(r) - 1 for |r| <= ln(2)/2 by its Taylor series to r^8 (truncation error < 6e-9 relative).
template <class F>
MSLR_INLINE F expm1_reduced(F r) {
  F q = F{} + 1.0f / 40320.0f;
  q = q * r + 1.0f / 5040.0f;
  q = q * r + 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  return q * r;
}

// 2^n for integer-valued n in [-126, 127], by building the float's exponent bits. NaN (from a NaN argument)
// becomes 0 here, so that the conversion to int stays defined; the result is NaN anyway through the
// polynomial.
MSLR_INLINE float pow2i(float n) {
  const float m = n == n ? n : 0.0f;
  return __builtin_bit_cast(float, (static_cast<int32_t>(m) + 127) << 23);
}

// tanh of every lane, within 3 ulp (kernels.h, tanh_fast): tanh|x| = -m / (2 + m) with m = expm1(-2|x|),
// which has no cancellation anywhere: expm1(y) = 2^n (expm1(r) + 1) - 1, written as 2^n expm1(r) + (2^n - 1),
// exact where n = 0 and free of cancellation where n < 0. Beyond |x| = 9, tanh rounds to ±1 in float32, so
// -|x| is held at -9 and n in [-26, 0]. It is written for few operations (20 vector instructions with the load
// of x, one of them the division), since the predictors' forward evaluates it on every hidden value of every
// step:
// - it works on h = -|x| = y / 2 (one bit set, where y = -2|x| took two operations) with every constant scaled
//   by a power of two instead: n = round(h · 2/ln 2), the reduced argument's half r/2 = h - n (ln 2)/2 (in two
//   parts, exact), and expm1(r) = r + r²/2 + r³ P(r), P of degree 3 fitted to the relative error of expm1 on
//   |r| <= ln(2)/2 (1.4e-8, under a quarter of an ulp), by Horner in r/2 with the k-th coefficient times 2^k.
//   Scaling by a power of two is exact and commutes with rounding, so each step has the bits it would have in
//   y and r (checked on all 2^32 inputs, on every feature level, against the form in y);
// - round(h · 2/ln 2) is taken with the rounding constant 1.5 · 2^23 + 128, whose sum with h · 2/ln 2 holds
//   n + 128 in its low mantissa bits: shifted into the exponent field they are 2^(n+1), with no conversion;
// - -m = (1 - 2^n) - 2^(n+1) · (expm1(r)/2), and -m / (2 + m) = -m / (2 - (-m)), is +0 at x = ±0 and
//   positive elsewhere, so the sign of x is put back by setting one bit (tanh(-0) = -0 and NaN stays NaN:
//   the hold at -9 keeps a NaN).
MSLR_INLINE V<float> tanh(V<float> x) {
  const VInt bits = reinterpret_cast<VInt>(x);
  const VInt sign = VInt{} + static_cast<int32_t>(0x80000000u);
  const V<float> low = V<float>{} - 9.0f;
  V<float> h = reinterpret_cast<V<float>>(bits | sign);  // -|x|
  h = low > h ? low : h;                                 // NaN compares false and stays
  constexpr float kRound = 12582912.0f + 128.0f;
  const V<float> t = h * (2.0f * kLog2e) + kRound;
  const V<float> n = t - kRound;
  const V<float> r = (h - n * (0.5f * kLn2Hi)) - n * (0.5f * kLn2Lo);  // half the reduced argument
  V<float> q = V<float>{} + 32.0f * 1.38982269e-3f;
  q = q * r + 16.0f * 8.36604089e-3f;
  q = q * r + 8.0f * 4.16668542e-2f;
  q = q * r + 4.0f * 1.66665494e-1f;
  q = q * r + 2.0f * 0.5f;
  q = q * r + 1.0f;
  q = q * r;                                                                        // expm1(r) / 2
  const V<float> s2 = reinterpret_cast<V<float>>(reinterpret_cast<VInt>(t) << 23);  // 2^(n+1)
  const V<float> neg_m = (1.0f - 0.5f * s2) - s2 * q;
  const V<float> th = neg_m / (2.0f - neg_m);  // tanh|x|, +0 at 0
  return reinterpret_cast<V<float>>(reinterpret_cast<VInt>(th) | (bits & sign));
}

// 4: AVX-512 (x86-64-v4), 3: AVX2 and FMA (x86-64-v3), 0: the baseline.
inline int level() {
#ifdef MSLR_LEVELS
  static const int l = __builtin_cpu_supports("x86-64-v4") ? 4 : __builtin_cpu_supports("x86-64-v3") ? 3 : 0;
  return l;
#else
  return 0;
#endif
}

}  // namespace mslr::kernels::simd
