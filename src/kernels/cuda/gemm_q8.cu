// y = x W^T for a few tokens (a batch's decode step) on the int8 tensor cores: the 8-bit codes of
// x (Q8Act) times the weights' own codes, with no F16 copy of either. A thread block takes 16
// weight rows; its 8 warps take every 8th unit of 64 columns each (gemm_q8_units.cuh), so many
// warps stream every row at once, each loading its next unit before it multiplies the current
// one. Per block of 32 a warp multiplies the 16 rows' codes by up to 4 tiles of 8 tokens
// (m16n8k32, Q6_K two m16n8k16) and adds scale_w * d_x * sum - min_w * d_x * sum(q_x) to F32
// sums; the warps' sums are added in a fixed order through shared memory at the end.
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gemm_q8_units.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * detail::kWarp;
constexpr int kRows = 16;       // weight rows a block
constexpr int kUnit = 64;       // columns a unit
constexpr int kTileTokens = 8;  // tokens an mma tile

// Lane (quad row g, quad lane q) of tile t: its b registers take token 8t + g; its sums
// c0, c1 (rows g) and c2, c3 (rows g + 8) belong to tokens 8t + 2q and 8t + 2q + 1. x is laid
// out block by block (quantize_q8_by_block), so a tile's codes of one block are 256 contiguous
// bytes and the (d, d * sum) of a lane's two tokens one 16-byte load. Tokens past n_tokens (up
// to the stride) hold whatever is there: their sums are never stored.
struct Tokens {
  const int8_t* qs;
  const float2* ds;
  int stride;  // tokens a block
  int g;
  int q;
  __device__ __forceinline__ int2 codes(int64_t b, int t) const {
    const int at = (static_cast<int>(b) * stride + kTileTokens * t + g) * detail::kQk + 8 * q;
    return *reinterpret_cast<const int2*>(qs + at);
  }
  __device__ __forceinline__ int codes16(int64_t b, int t, int e) const {
    const int at =
        (static_cast<int>(b) * stride + kTileTokens * t + g) * detail::kQk + 16 * e + 4 * q;
    return *reinterpret_cast<const int*>(qs + at);
  }
  __device__ __forceinline__ float4 scales(int64_t b, int t) const {
    return *reinterpret_cast<const float4*>(ds + static_cast<int>(b) * stride + kTileTokens * t +
                                            2 * q);
  }
};

template <GgmlType T, int NT>
__device__ __forceinline__ void multiply(const detail::q8::Unit32& w, int64_t u, const Tokens& tk,
                                         float (&acc)[NT][4]) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    const int64_t b = detail::q8::act_block(u, s);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int2 x = tk.codes(b, t);
      int c[4];
      detail::q8::mma_k32(c, w.lo[s][0], w.lo[s][1], w.hi[s][0], w.hi[s][1], x.x, x.y);
      const float4 xd = tk.scales(b, t);  // (d, d * sum) of tokens 8t + 2q and 8t + 2q + 1
      acc[t][0] += w.scale[s][0] * xd.x * static_cast<float>(c[0]) - w.min[s][0] * xd.y;
      acc[t][1] += w.scale[s][0] * xd.z * static_cast<float>(c[1]) - w.min[s][0] * xd.w;
      acc[t][2] += w.scale[s][1] * xd.x * static_cast<float>(c[2]) - w.min[s][1] * xd.y;
      acc[t][3] += w.scale[s][1] * xd.z * static_cast<float>(c[3]) - w.min[s][1] * xd.w;
    }
  }
}

template <int NT>
__device__ __forceinline__ void multiply_q6_k(const detail::q8::Unit16& w, int64_t u,
                                              const Tokens& tk, float (&acc)[NT][4]) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    const int64_t b = detail::q8::act_block_q6_k(u, s);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float4 xd = tk.scales(b, t);
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        int c[4];
        detail::q8::mma_k16(c, w.a[s][e][0], w.a[s][e][1], tk.codes16(b, t, e));
        acc[t][0] += w.scale[s][e][0] * xd.x * static_cast<float>(c[0]);
        acc[t][1] += w.scale[s][e][0] * xd.z * static_cast<float>(c[1]);
        acc[t][2] += w.scale[s][e][1] * xd.x * static_cast<float>(c[2]);
        acc[t][3] += w.scale[s][e][1] * xd.z * static_cast<float>(c[3]);
      }
    }
  }
}

template <GgmlType T>
using UnitOf = std::conditional_t<T == GgmlType::kQ6_K, detail::q8::Unit16, detail::q8::Unit32>;

template <GgmlType T>
__device__ __forceinline__ void load(const uint8_t* const (&rows)[2], int64_t n_blocks, int64_t u,
                                     int q, UnitOf<T>& w) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if constexpr (T == GgmlType::kQ6_K) {
      detail::q8::load_unit_q6_k(rows[r], u, q, r, w);
    } else {
      detail::q8::load_unit<T>(rows[r], n_blocks, u, q, r, w);
    }
  }
}

template <GgmlType T, int NT>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_q8_kernel(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols, Q8Act x,
                   int64_t n_tokens, float* y, bool accumulate) {
  __shared__ float partial[kWarps][NT][4][detail::kWarp];
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  const int g = lane / 4;
  const int q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const uint8_t* rows[2];  // rows g and g + 8 of the block; past the end, the last row
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = row0 + g + 8 * r;
    rows[r] = w + static_cast<size_t>(row < n_rows ? row : n_rows - 1) * row_bytes;
  }
  const Tokens tk{x.qs, x.ds, kTileTokens * NT, g, q};  // NT tiles: the stride, n_tokens up to 8
  const int64_t n_blocks = n_cols / detail::kQk;
  const int64_t n_units = n_cols / kUnit;
  UnitOf<T> cur{};  // the weights are read before the kernel before is done: they stay put
  if (warp < n_units) load<T>(rows, n_blocks, warp, q, cur);
  detail::begin_dependent();
  float acc[NT][4] = {};
  for (int64_t u = warp; u < n_units; u += kWarps) {
    UnitOf<T> next{};
    if (u + kWarps < n_units) load<T>(rows, n_blocks, u + kWarps, q, next);
    if constexpr (T == GgmlType::kQ6_K) {
      multiply_q6_k<NT>(cur, u, tk, acc);
    } else {
      multiply<T, NT>(cur, u, tk, acc);
    }
    cur = next;
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
#pragma unroll
    for (int i = 0; i < 4; ++i) partial[warp][t][i][lane] = acc[t][i];
  }
  __syncthreads();
  for (int o = threadIdx.x; o < NT * 4 * detail::kWarp; o += kThreads) {
    const int t = o / (4 * detail::kWarp);
    const int i = o / detail::kWarp % 4;
    const int l = o % detail::kWarp;
    float sum = 0.0f;
#pragma unroll
    for (int v = 0; v < kWarps; ++v) sum += partial[v][t][i][l];
    const int64_t row = row0 + l / 4 + (i >= 2 ? 8 : 0);
    const int64_t token = kTileTokens * t + 2 * (l % 4) + (i & 1);
    if (row < n_rows && token < n_tokens) {
      float* dst = y + token * n_rows + row;
      *dst = sum + (accumulate ? *dst : 0.0f);
    }
  }
}

template <GgmlType T, int NT>
void launch_tiles(const Matrix& w, const Q8Act& x, int64_t n_tokens, float* y, bool accumulate,
                  cudaStream_t stream) {
  detail::launch_dependent(gemm_q8_kernel<T, NT>, dim3(detail::grid_for(w.n_rows, kRows)),
                           dim3(kThreads), 0, stream, w.data, w.row_bytes, w.n_rows, w.n_cols, x,
                           n_tokens, y, accumulate);
}

// As many 8-token tiles as x's stride holds (q8_token_stride).
template <GgmlType T>
void launch(const Matrix& w, const Q8Act& x, int64_t n_tokens, float* y, bool accumulate,
            cudaStream_t stream) {
  switch ((n_tokens + kTileTokens - 1) / kTileTokens) {
    case 1:
      return launch_tiles<T, 1>(w, x, n_tokens, y, accumulate, stream);
    case 2:
      return launch_tiles<T, 2>(w, x, n_tokens, y, accumulate, stream);
    case 3:
      return launch_tiles<T, 3>(w, x, n_tokens, y, accumulate, stream);
    default:
      return launch_tiles<T, 4>(w, x, n_tokens, y, accumulate, stream);
  }
}

}  // namespace

bool gemm_q8_supported(const Matrix& w) {
  if (w.n_cols % kUnit != 0) return false;
  // Q6_K loads 2 bytes at a time; the others 8-byte pieces of 16-byte aligned rows.
  if (w.type == GgmlType::kQ6_K) return true;
  const bool aligned = reinterpret_cast<uintptr_t>(w.data) % 16 == 0 && w.row_bytes % 16 == 0;
  return aligned && (w.type == GgmlType::kQ8_0 || w.type == GgmlType::kQ4_0 ||
                     w.type == GgmlType::kQ4_K || w.type == GgmlType::kQ5_K);
}

void gemm_q8(const Matrix& w, const Q8Act& x, int64_t n_tokens, float* y, bool accumulate,
             cudaStream_t stream) {
  if (n_tokens <= 0 || w.n_rows == 0) return;
  if (n_tokens > kGemmQ8MaxTokens || !gemm_q8_supported(w)) {
    std::fprintf(stderr, "cuda gemm_q8: %lld tokens of a type %u matrix are not supported\n",
                 static_cast<long long>(n_tokens), static_cast<unsigned>(w.type));
    std::abort();
  }
  switch (w.type) {
    case GgmlType::kQ8_0:
      return launch<GgmlType::kQ8_0>(w, x, n_tokens, y, accumulate, stream);
    case GgmlType::kQ4_0:
      return launch<GgmlType::kQ4_0>(w, x, n_tokens, y, accumulate, stream);
    case GgmlType::kQ4_K:
      return launch<GgmlType::kQ4_K>(w, x, n_tokens, y, accumulate, stream);
    case GgmlType::kQ5_K:
      return launch<GgmlType::kQ5_K>(w, x, n_tokens, y, accumulate, stream);
    case GgmlType::kQ6_K:
      return launch<GgmlType::kQ6_K>(w, x, n_tokens, y, accumulate, stream);
    default:
      detail::unsupported_type("gemm_q8", w.type);
  }
}

}  // namespace pensieve::cuda
