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
