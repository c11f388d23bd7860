// Causal attention over a KV cache with an online softmax: no score matrix is ever built, and
// each query row costs time linear in the positions it attends. The cache holds F32, F16 or
// Q8_0 rows; runtime dispatch picks the widest SIMD level, as matmul does.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"
#include "kernels/cpu/cpu_features.h"

namespace pensieve::cpu {

// Cache element types: F32, F16 (the default) and Q8_0.
bool kv_type_supported(GgmlType type);
// Bytes that n values take in a cache row (n a multiple of 32 for Q8_0).
size_t kv_bytes(GgmlType type, int64_t n);
// Writes n values into a cache row.
void kv_store(GgmlType type, const float* x, int64_t n, uint8_t* dst);
// Reads n values of a cache row back (tests, debugging).
void kv_load(GgmlType type, const uint8_t* src, int64_t n, float* x);

// Positions per block of a paged cache; the kernel also scores positions in blocks of this size,
// so each of its blocks reads one cache block.
constexpr int64_t kKvBlockPositions = 32;

// One job: `group` query heads that share one KV head, for n_tokens consecutive tokens. Token t
// of the job sits at position p = first_pos + t and attends positions [0, p], or with a sliding
// window W > 0 only the last W of them, [max(0, p - W + 1), p].
struct AttentionJob {
  const float* q = nullptr;  // row (t, h) at q + t * token_stride + h * head_dim
  float* out = nullptr;      // same layout as q
  int64_t token_stride = 0;  // floats from one token to the next in q and out
  int64_t group = 1;
  int64_t n_tokens = 1;
  int64_t first_pos = 0;
  // This KV head's values at position 0, position p at + p * kv_stride; with a block table, its
  // values at the start of pool block 0.
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  size_t kv_stride = 0;
  // Paged cache: when set, position p lives in block block_table[p / kKvBlockPositions] at
  // k + block_table[p / kKvBlockPositions] * block_stride + (p % kKvBlockPositions) * kv_stride
  // (same for v). When null, the cache is contiguous as before.
  const int32_t* block_table = nullptr;
  size_t block_stride = 0;  // bytes from one block to the next (the same for k and v)
  GgmlType kv_type = GgmlType::kF16;
  int64_t head_dim = 0;  // a multiple of 32 for Q8_0
  float scale = 1.0f;    // applied to q.k, usually 1/sqrt(head_dim)
  int64_t window = 0;    // positions each token attends, its own included; 0 = all up to it
};

// Floats of scratch one job of up to max_rows (= group * n_tokens) query rows needs.
size_t attention_scratch_floats(int64_t max_rows, int64_t head_dim);

// out = softmax(scale * q k^T) v per query row, causally (within the window). Cache blocks wholly
// before every token's window are not read. scratch: attention_scratch_floats().
// A row's result does not depend on which other rows share its job.
void attention(const AttentionJob& job, float* scratch);
// The same at a given dispatch level (tests); the level must be supported.
void attention(const AttentionJob& job, float* scratch, Isa isa);

}  // namespace pensieve::cpu
