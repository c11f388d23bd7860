// y = x W^T for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights: one warp per weight
// row, a tile of up to kMatmulTile tokens per warp so each row is read once per tile. The row's
// dot products are summed in F32 per lane, then across the warp.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kquants.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;  // weight rows per thread block
constexpr int kTile = static_cast<int>(kMatmulTile);

// F32, F16 and BF16: lane l takes elements l, l + 32, ...
template <GgmlType T, int NT>
__device__ void dot_plain(const uint8_t* row, int64_t n_cols, const float* x, int nt, int lane,
                          float* acc) {
  for (int64_t i = lane; i < n_cols; i += detail::kWarp) {
    const float w = detail::load_element<T>(row, n_cols, i);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t < nt) acc[t] += w * x[t * n_cols + i];
    }
  }
}

// The 32 codes of a block as integers, in element order (`codes` 2-byte aligned).
template <GgmlType T>
__device__ __forceinline__ void codes_of_block(const uint8_t* codes, int* q) {
  const auto* qs = reinterpret_cast<const uint16_t*>(codes);
  if constexpr (T == GgmlType::kQ8_0) {
#pragma unroll
    for (int j = 0; j < detail::kQk / 2; ++j) {
      const uint16_t pair = qs[j];
      q[2 * j] = static_cast<int8_t>(pair & 0xFF);
      q[2 * j + 1] = static_cast<int8_t>(pair >> 8);
    }
  } else {
    static_assert(T == GgmlType::kQ4_0);
#pragma unroll
    for (int j = 0; j < detail::kQk / 4; ++j) {
      const uint16_t pair = qs[j];
      q[2 * j] = (pair & 0xF) - 8;
      q[2 * j + 1] = ((pair >> 8) & 0xF) - 8;
      q[2 * j + 16] = ((pair >> 4) & 0xF) - 8;
      q[2 * j + 17] = (pair >> 12) - 8;
    }
  }
}

// Q8_0 and Q4_0 (device layout): lane l takes blocks l, l + 32, ...; per block, the codes' dot
// product with x times the block's scale.
template <GgmlType T, int NT>
__device__ void dot_blocks(const uint8_t* row, int64_t n_cols, const float* x, int nt, int lane,
                           float* acc) {
  const int64_t n_blocks = n_cols / detail::kQk;
  for (int64_t b = lane; b < n_blocks; b += detail::kWarp) {
    const float d = detail::block_scale<T>(row, n_blocks, b);
    int q[detail::kQk];
    codes_of_block<T>(detail::block_codes<T>(row, b), q);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= nt) break;
      const auto* xs = reinterpret_cast<const float4*>(x + t * n_cols + b * detail::kQk);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < detail::kQk / 4; ++j) {
        const float4 v = xs[j];
        sum += q[4 * j] * v.x + q[4 * j + 1] * v.y + q[4 * j + 2] * v.z + q[4 * j + 3] * v.w;
      }
      acc[t] += sum * d;
    }
  }
}

// K-quants: lane l takes sub-blocks of 32 l, l + 32, ..., each decoded to F32 once for the tile.
template <GgmlType T, int NT>
__device__ void dot_k_quant(const uint8_t* row, int64_t n_cols, const float* x, int nt, int lane,
                            float* acc) {
  const int64_t n_sub = n_cols / detail::kQk;
  for (int64_t s = lane; s < n_sub; s += detail::kWarp) {
    float w[detail::kQk];
    detail::k_quant_sub_block<T>(row, s, w);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= nt) break;
      const auto* xs = reinterpret_cast<const float4*>(x + t * n_cols + s * detail::kQk);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < detail::kQk / 4; ++j) {
        const float4 v = xs[j];
        sum += w[4 * j] * v.x + w[4 * j + 1] * v.y + w[4 * j + 2] * v.z + w[4 * j + 3] * v.w;
      }
      acc[t] += sum;
    }
  }
}

template <GgmlType T, int NT>
__global__ void matmul_kernel(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols,
                              const float* x, int64_t n_tokens, float* y) {
  const int lane = threadIdx.x % detail::kWarp;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / detail::kWarp;
  if (r >= n_rows) return;  // the whole warp leaves together
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * NT;
  const int nt = static_cast<int>(n_tokens - t0 < NT ? n_tokens - t0 : NT);
  const uint8_t* row = w + static_cast<size_t>(r) * row_bytes;
  const float* xt = x + t0 * n_cols;  // [nt, n_cols]
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  if constexpr (T == GgmlType::kF32 || T == GgmlType::kF16 || T == GgmlType::kBF16) {
    dot_plain<T, NT>(row, n_cols, xt, nt, lane, acc);
  } else if constexpr (detail::is_k_quant(T)) {
    dot_k_quant<T, NT>(row, n_cols, xt, nt, lane, acc);
  } else {
    dot_blocks<T, NT>(row, n_cols, xt, nt, lane, acc);
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float sum = detail::warp_sum(acc[t]);
    if (lane == 0 && t < nt) y[(t0 + t) * n_rows + r] = sum;
  }
}

template <GgmlType T>
void launch(const Matrix& w, const float* x, int64_t n_tokens, float* y, cudaStream_t stream) {
  const unsigned blocks = detail::grid_for(w.n_rows, kWarpsPerBlock);
  constexpr unsigned kThreads = kWarpsPerBlock * detail::kWarp;
  if (n_tokens == 1) {
    matmul_kernel<T, 1><<<dim3(blocks, 1), kThreads, 0, stream>>>(w.data, w.row_bytes, w.n_rows,
                                                                  w.n_cols, x, n_tokens, y);
    return;
  }
  // grid.y is at most 65535 tiles: longer batches go in several launches.
  constexpr int64_t kMaxTokens = int64_t{65535} * kTile;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokens) {
    const int64_t n = n_tokens - t0 < kMaxTokens ? n_tokens - t0 : kMaxTokens;
    const dim3 grid(blocks, detail::grid_for(n, kTile));
    matmul_kernel<T, kTile><<<grid, kThreads, 0, stream>>>(w.data, w.row_bytes, w.n_rows, w.n_cols,
                                                           x + t0 * w.n_cols, n, y + t0 * w.n_rows);
  }
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, cudaStream_t stream) {
  if (n_tokens == 0 || w.n_rows == 0) return;
  switch (w.type) {
    case GgmlType::kF32:
      return launch<GgmlType::kF32>(w, x, n_tokens, y, stream);
    case GgmlType::kF16:
      return launch<GgmlType::kF16>(w, x, n_tokens, y, stream);
    case GgmlType::kQ8_0:
      return launch<GgmlType::kQ8_0>(w, x, n_tokens, y, stream);
    case GgmlType::kBF16:
      return launch<GgmlType::kBF16>(w, x, n_tokens, y, stream);
    case GgmlType::kQ4_0:
      return launch<GgmlType::kQ4_0>(w, x, n_tokens, y, stream);
    case GgmlType::kQ4_K:
      return launch<GgmlType::kQ4_K>(w, x, n_tokens, y, stream);
    case GgmlType::kQ5_K:
      return launch<GgmlType::kQ5_K>(w, x, n_tokens, y, stream);
    case GgmlType::kQ6_K:
      return launch<GgmlType::kQ6_K>(w, x, n_tokens, y, stream);
    default:
      detail::unsupported_type("matmul", w.type);
  }
}

}  // namespace pensieve::cuda
