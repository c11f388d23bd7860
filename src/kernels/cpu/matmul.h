// Fast CPU matrix products y = x * W^T for weights in any supported GGUF type, with runtime
// dispatch to the best SIMD level (scalar, AVX2, AVX-512, NEON), rows split across a thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/kernels.h"

namespace pensieve::cpu {

// Scratch for activations quantized on the fly; sized once so the token loop allocates nothing.
class MatmulWorkspace {
 public:
  MatmulWorkspace(int64_t max_tokens, int64_t max_cols);
  // The heap bytes a workspace of this size holds (for the memory budget).
  static size_t bytes_for(int64_t max_tokens, int64_t max_cols);
  size_t capacity_bytes() const { return capacity_bytes_ + 64; }

  int64_t max_tokens() const { return max_tokens_; }
  int64_t max_cols() const { return max_cols_; }
  // Room for n_tokens rows of row_bytes each, 64-byte aligned.
  uint8_t* rows(int64_t n_tokens, size_t row_bytes);

 private:
  int64_t max_tokens_;
  int64_t max_cols_;
  size_t capacity_bytes_;
  std::unique_ptr<uint8_t[]> storage_;
  uint8_t* aligned_ = nullptr;
};

// Weight types matmul() accepts: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K.
bool matmul_supports(GgmlType type);

// y[n_tokens, w.n_rows] = x[n_tokens, w.n_cols] * W^T. n_tokens == 1 is decode (matrix-vector),
// larger n_tokens is prompt processing. n_tokens <= ws.max_tokens(), w.n_cols <= ws.max_cols().
// Quantized weights multiply 8-bit quantized activations (Q8_0-style blocks of 32 for the
// 32-element formats, Q8_K-style blocks of 256 for K-quants); float weights use float
// activations. Results do not depend on the thread count or on which tokens share a call.
// One caller at a time per pool and workspace.
void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws);

// Several products of the same activations (q, k and v; gate and up). For one token with weights
// that share an activation format, x is quantized once and the threads split the rows of all the
// matrices together by bytes: one wait on the pool instead of one per matrix. Otherwise the
// products run one after another. Results equal matmul()'s bit for bit.
struct MatmulTarget {
  const Matrix* w = nullptr;
  float* y = nullptr;
};
void matmul_many(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens,
                 ThreadPool& pool, MatmulWorkspace& ws);

// The same at a given dispatch level (tests, benchmarks); the level must be supported.
void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws, Isa isa);

// The level matmul() actually uses for `type` at `isa` (a level without a kernel for the type
// falls back to the next lower one).
Isa matmul_isa(GgmlType type, Isa isa);

}  // namespace pensieve::cpu
