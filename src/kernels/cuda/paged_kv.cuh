// Device-side reading of PagedKv: a token's position and the cache row of a position of its
// sequence, or the contiguous cache's (row = position) when the job is not paged.
#pragma once

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pensieve::cuda::detail {

struct KvRows {
  const int32_t* table = nullptr;  // the token's block table; null: row = position
  int64_t block_positions = 1;

  __device__ __forceinline__ int64_t row(int64_t pos) const {
    if (table == nullptr) return pos;
    return static_cast<int64_t>(table[pos / block_positions]) * block_positions +
           pos % block_positions;
  }
};

// Token t's rows: through its block table when paged, else the contiguous cache.
__device__ __forceinline__ KvRows kv_rows(const PagedKv& paged, int64_t t) {
  if (paged.positions == nullptr) return {};
  return {paged.block_tables + paged.table_offsets[t], paged.block_positions};
}

// Token t's position: paged.positions[t], else first_pos (+ *first_pos_dev) + t.
__device__ __forceinline__ int64_t token_position(const PagedKv& paged, int64_t first_pos,
                                                  const int32_t* first_pos_dev, int64_t t) {
  if (paged.positions != nullptr) return paged.positions[t];
  return first_pos + (first_pos_dev != nullptr ? *first_pos_dev : 0) + t;
}

}  // namespace pensieve::cuda::detail
