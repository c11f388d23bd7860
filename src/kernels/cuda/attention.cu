// Causal attention over the F16 cache (contiguous or paged) with an online softmax. One thread
// block per (token, query head); its warps take turns over chunks of 32 positions (warp w: chunks
// w, w + kWarps, ...), each keeping its own running max, sum and output, merged at the end. Within
// a chunk each lane scores one position, then the warp adds the chunk's weighted V rows, each lane
// owning head dims lane, lane + 32, ... Head sizes 64 and 128 get unrolled 16-byte K loads.
#include <cmath>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/paged_kv.cuh"

namespace pensieve::cuda {
namespace {

constexpr int kMaxDims = static_cast<int>(kMaxHeadDim);

// q_s . k_row: HD > 0 reads the row in 16-byte pieces (8 halves), HD = 0 in pairs.
template <int HD>
__device__ __forceinline__ float score(const float* q_s, const uint16_t* k_row, int hd) {
  float s = 0.0f;
  if constexpr (HD > 0) {
    const auto* pieces = reinterpret_cast<const uint4*>(k_row);
#pragma unroll
    for (int c = 0; c < HD / 8; ++c) {
      const uint4 raw = pieces[c];
      const auto* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 kf = __half22float2(h2[e]);
        s += q_s[8 * c + 2 * e] * kf.x + q_s[8 * c + 2 * e + 1] * kf.y;
      }
    }
  } else {
    const auto* pairs = reinterpret_cast<const __half2*>(k_row);
    for (int d = 0; d < hd / 2; ++d) {
      const float2 kf = __half22float2(pairs[d]);
      s += q_s[2 * d] * kf.x + q_s[2 * d + 1] * kf.y;
    }
  }
  return s;
}

// kWarps warps a block: 4 for prompts (many blocks), 8 for one token (one block a head).
template <int HD, int kWarps>
__global__ void attention_kernel(AttentionJob job) {
  constexpr int kThreads = kWarps * detail::kWarp;
  constexpr int kDims =
      HD > 0 ? (HD + detail::kWarp - 1) / detail::kWarp : kMaxDims / detail::kWarp;
  __shared__ float q_s[kMaxDims];
  __shared__ float warp_m[kWarps];
  __shared__ float warp_l[kWarps];
  __shared__ float warp_out[kWarps][kMaxDims];
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  const int64_t t = blockIdx.x / job.n_head;
  const int64_t h = blockIdx.x % job.n_head;
  const int hd = HD > 0 ? HD : static_cast<int>(job.head_dim);
  const int64_t n_kv = job.n_head_kv * hd;
  const int64_t kv_head = h / (job.n_head / job.n_head_kv);
  const int64_t pos = detail::token_position(job.paged, job.first_pos, job.first_pos_dev, t);
  const detail::KvRows rows = detail::kv_rows(job.paged, t);
  const int64_t begin = job.window > 0 && pos - job.window + 1 > 0 ? pos - job.window + 1 : 0;
  const float* q = job.q + (t * job.n_head + h) * hd;  // [hd]
  for (int d = threadIdx.x; d < hd; d += kThreads) q_s[d] = q[d] * job.scale;
  __syncthreads();
  const uint16_t* k = job.k_cache + kv_head * hd;  // position p's row at k + rows.row(p) * n_kv
  const uint16_t* v = job.v_cache + kv_head * hd;
  float m = -INFINITY;  // running max of this warp's scores
  float l = 0.0f;       // running sum of exp(score - m)
  float acc[kDims];
#pragma unroll
  for (int i = 0; i < kDims; ++i) acc[i] = 0.0f;
  for (int64_t j0 = begin + warp * detail::kWarp; j0 <= pos; j0 += kWarps * detail::kWarp) {
    const int64_t j = j0 + lane;
    const int64_t row = j <= pos ? rows.row(j) : 0;
    const float s = j <= pos ? score<HD>(q_s, k + row * n_kv, hd) : -INFINITY;
    const float m_new = fmaxf(m, detail::warp_max(s));
    const float correction = expf(m - m_new);
    const float p = j <= pos ? expf(s - m_new) : 0.0f;
    l = l * correction + detail::warp_sum(p);
#pragma unroll
    for (int i = 0; i < kDims; ++i) acc[i] *= correction;
    const int n_chunk =
        static_cast<int>(pos - j0 + 1 < detail::kWarp ? pos - j0 + 1 : detail::kWarp);
#pragma unroll 8
    for (int jj = 0; jj < n_chunk; ++jj) {
      const float p_j = __shfl_sync(detail::kFullMask, p, jj);
      const int64_t row_jj = __shfl_sync(detail::kFullMask, row, jj);
      const uint16_t* v_row = v + row_jj * n_kv;  // [hd]
#pragma unroll
      for (int i = 0; i < kDims; ++i) {
        const int d = lane + i * detail::kWarp;
        if (d < hd) acc[i] += p_j * detail::f16_bits_to_float(v_row[d]);
      }
    }
    m = m_new;
  }
  // Merge the warps: rescale each to the largest max. A warp that had no chunk has m = -inf,
  // l = 0 and contributes nothing; warp 0 always has one.
  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = lane + i * detail::kWarp;
    if (d < hd) warp_out[warp][d] = acc[i];
  }
  __syncthreads();
  float m_all = warp_m[0];
  for (int w = 1; w < kWarps; ++w) m_all = fmaxf(m_all, warp_m[w]);
  float weight[kWarps];
  float l_all = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    weight[w] = expf(warp_m[w] - m_all);
    l_all += warp_l[w] * weight[w];
  }
  float* out = job.out + (t * job.n_head + h) * hd;  // [hd]
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += warp_out[w][d] * weight[w];
    out[d] = sum / l_all;
  }
}

template <int kWarps>
void launch(const AttentionJob& job, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(job.n_tokens * job.n_head);
  constexpr unsigned kThreads = kWarps * detail::kWarp;
  if (job.head_dim == 64) {
    attention_kernel<64, kWarps><<<blocks, kThreads, 0, stream>>>(job);
  } else if (job.head_dim == 128) {
    attention_kernel<128, kWarps><<<blocks, kThreads, 0, stream>>>(job);
  } else {
    attention_kernel<0, kWarps><<<blocks, kThreads, 0, stream>>>(job);
  }
}

}  // namespace

void attention(const AttentionJob& job, cudaStream_t stream) {
  const int64_t rows = job.n_tokens * job.n_head;
  if (rows == 0) return;
  const bool paged = job.paged.positions != nullptr;
  if (job.tensor_cores && !paged && job.n_tokens > 1 &&
      detail::attention_tc_supported(job.head_dim)) {
    detail::attention_tc(job, stream);
  } else if (job.n_tokens == 1) {
    launch<8>(job, stream);
  } else {
    launch<4>(job, stream);
  }
}

}  // namespace pensieve::cuda
