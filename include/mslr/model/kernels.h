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

// tanh for float32, within 3 units in the last place of the exact value over every float (2.63 found by
// trying all 2^32 through the AVX-512 loop; the unit test tries every 61st); ~0.32 ns per element on the
// development machine, where LibTorch 1.13's CPU tanh costs ~2 ns. It is simd::tanh
// (src/model/vector.h), which the dense kernels also apply inside their tiles.
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

// Dense layers of an MLP (src/model/dense.cpp) on feature-major blocks: in [features, ld] holds n rows of
// each feature, n a multiple of dense_rows' granule (n = dense_rows(rows)), ld >= n.
// dense_rows(rows): rows rounded up to a whole number of vectors (of float, and so of double).
int64_t dense_rows(int64_t rows);
// out[j, 0:n] = bias[j] + Σ_{k < wi} A(k, j) · in[k, 0:n] for j < wo, where A(k, j) = A[k·sk + j·sj] (a
// layer's W [wi, wo] is sk = wo, sj = 1; its transpose sk = 1, sj = wi) and bias may be nullptr (zeros).
// Each value is a sum over k in order, the same for any n.
// The epilogue, applied to each tile while it is in registers, saves a pass over the block: kTanh stores
// tanh(out) (float32 only; the values of tanh_fast), kTanhBackward stores out · (1 - h²) with h [wo, ld_out]
// at out's place (the backward through a tanh layer whose outputs are h).
template <class T>
struct DenseEpilogue {
  enum Kind { kNone, kTanh, kTanhBackward } kind = kNone;
  const T* h = nullptr;
};
template <class T>
void dense_forward(int64_t n, int64_t wi, int64_t wo, const T* A, int64_t sk, int64_t sj, const T* bias,
                   const T* in, int64_t ld_in, T* out, int64_t ld_out, const DenseEpilogue<T>& e = {});
// G[k·wo + j] = Σ_{r < n} in[k, r] · dz[j, r] for k < wi, j < wo (a layer's weight gradient, row-major), and
// gb[j] = Σ_r dz[j, r] unless gb is nullptr: in [wi, ld_in], dz [wo, ld_dz]. The sums over rows are taken in a
// fixed order (lane by lane, then a fixed tree over the lanes). While it runs, it asks for the ahead_bytes
// from `ahead` (data a later kernel reads) into L2, a cache line per vector of rows it reads.
template <class T>
void dense_weight_grad(int64_t n, int64_t wi, int64_t wo, const T* in, int64_t ld_in, const T* dz,
                       int64_t ld_dz, T* G, T* gb, const void* ahead = nullptr, int64_t ahead_bytes = 0);

// Products over a minibatch's rows (src/model/rows.cpp): rows[i] points at row i of a matrix whose rows lie
// anywhere (the sample rows of a recording, from some column on, or the rows of a block).
// out[i·ld_out + k] = alpha · Σ_{j < n} rows[i][j] · bT[k·ld_b + j] for i < m, k < nk: each row's dot product
// with nk vectors; a sum in a fixed order whatever m.
template <class T>
void row_dots(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* bT, int64_t ld_b, T alpha,
              T* out, int64_t ld_out);
// outT[k·ld_out + j] += Σ_{i < m} c[i·ld_c + k] · rows[i][j] for k < nk, j < n: sums over the rows
// continued from the values outT holds, each row added in row order. So over consecutive groups of rows from
// outT = 0 they give the bits of one call over all the rows, with each group's rows read side by side along
// their whole length.
template <class T>
void row_sums_into(int64_t m, int64_t n, const T* const* rows, int64_t nk, const T* c, int64_t ld_c, T* outT,
                   int64_t ld_out);
// How far along its row row_dots and row_sums_into ask for the data they read next: the rows are read side by
// side, and the hardware prefetcher alone keeps too few of them in flight.
constexpr int64_t kRowsAhead = 256;

// Asks for the first n values of each of m rows (cache line by cache line), for a group of rows that a later
// call reads: the kernels above ask for data along the rows they read, a row's start only when it is read, so
// that on short rows (a few hundred variables) every row began with a wait on memory.
template <class T>
void prefetch_heads(int64_t m, int64_t n, const T* const* rows);

// The most modes a fused latent drive (ResidualArgs::tran) takes.
constexpr int64_t kFusedModes = 16;

// The residual pass over a chunk of an output group's variables (cols of them) and the minibatch's m rows: for
// every row i and variable j, mn = scale[j]·o[i, j] + offset[j] and e = mn - y[i][j], with Σ_i e² in float64
// into sq[j]; then either mean[i, j] = mn (forward), or the gradient of weight · NLL with respect to the
// pre-scale output, dz[i, j] = g·scale[j] with g = e·(weight·ipsi[j]), and Σ_i g into doff[j], Σ_i g·o[i, j]
// into dscale[j] (step). Every sum runs over the rows in order (Σ e² of float32 values by runs of four rows
// summed in float32 first); sq, doff and dscale are overwritten. scale and offset may both be nullptr, for an
// output with neither: then mn = o, and doff and dscale are neither summed nor written.
template <class T>
struct ResidualArgs {
  int64_t m = 0, cols = 0;
  const T* o = nullptr;  // [m, ld_o] the outputs s(z)
  int64_t ld_o = 0;
  const T* const* y = nullptr;  // y[i]: the data of row i from the chunk's first variable
  const T *scale = nullptr, *offset = nullptr, *ipsi = nullptr;  // [cols]; ipsi = 1 / psi; see above
  T weight = 1;
  double* sq = nullptr;  // [cols]
  T* dz = nullptr;       // step: [m, ld_dz] (may be o itself), doff and dscale [cols]
  int64_t ld_dz = 0;
  T *doff = nullptr, *dscale = nullptr;
  T* mean = nullptr;  // forward: [m, ld_mean]
  int64_t ld_mean = 0;
  // Fused latent drive (identity outputs): with tran set, o is not read; the pass computes each output
  // z[i, j] = Σ_k tran[i, k] uT[k, j] itself (k in order, as a row of tran · uᵀ), and, when duT is set,
  // duT[k, j] = Σ_i dz[i, j] tran[i, k] (i in order), so that the block of outputs is never stored and dz is
  // read by no second pass over the columns.
  const T* tran = nullptr;  // [m, D] row-major
  int64_t D = 0;
  const T* uT = nullptr;  // [D, ld_u] from the chunk's first variable
  int64_t ld_u = 0;
  T* duT = nullptr;  // [D, ld_du] from the chunk's first variable
  int64_t ld_du = 0;
  // The sums continued: sq, doff, dscale and duT hold those of earlier rows (a group of rows before these),
  // to which these rows are added in order, instead of being overwritten. Over groups of rows that start at
  // multiples of four, this gives the bits of one pass over all the rows.
  bool resume = false;
  // When not 0: for each vector of y it reads, the pass asks for the one `ahead` values further along the
  // same row (data a later vector or call reads), so that a row read in a long run arrives at the pace it is
  // computed.
  int64_t ahead = 0;
};
template <class T>
void residual_pass(const ResidualArgs<T>& a);

}  // namespace mslr::kernels
