// Causal attention over the F16 cache (contiguous or paged) with an online softmax. One thread
// block per (token, query head, split); its warps take turns over chunks of 32 positions (warp w:
// chunks w, w + kWarps, ... of the split's), each keeping its own running max, sum and output,
// merged at the end. Within a chunk each lane scores one position, then the warp adds the chunk's
// weighted V rows, each lane owning head_dim / 32 adjacent dims. For head sizes 64 and 128 a
// chunk's K rows and the lane's part of its V rows are loaded into registers at once, the first
// chunk's while q is read, the next chunk's after the current one is added. With few query rows
// (decoding) a row's chunks are split over several blocks: each writes its max, sum and output to
// the workspace, and the last to finish (a counter per row) merges them in split order. The output
// can also be written as 8-bit codes for the quantized product after it. For one token the kernel
// can also do rope_store_kv's work first (the RoPE of q and k, the token's k and v into the
// cache), which saves the decode step a launch a layer, and before it end the layer's RMSNorm
// (scale q, k and v, the products of the weighted residual), which saves another.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/paged_kv.cuh"
#include "kernels/cuda/rope.cuh"

namespace pensieve::cuda {
namespace {

constexpr int kMaxDims = static_cast<int>(kMaxHeadDim);

// q_s . k_row, the row read in pairs (head sizes without a register path).
__device__ __forceinline__ float score(const float* q_s, const uint16_t* k_row, int hd) {
  float s = 0.0f;
  const auto* pairs = reinterpret_cast<const __half2*>(k_row);
  for (int d = 0; d < hd / 2; ++d) {
    const float2 kf = __half22float2(pairs[d]);
    s += q_s[2 * d] * kf.x + q_s[2 * d + 1] * kf.y;
  }
  return s;
}

// Head dim d of lane `lane`'s i-th accumulator: adjacent dims per lane when HD is known.
template <int HD, int kDims>
__device__ __forceinline__ int dim_of(int lane, int i) {
  return HD > 0 ? lane * kDims + i : lane + i * detail::kWarp;
}

// Adds p * v_row to the lane's accumulators.
template <int HD, int kDims>
__device__ __forceinline__ void add_v(const uint16_t* v_row, float p, int lane, int hd,
                                      float* acc) {
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = dim_of<HD, kDims>(lane, i);
    if (d < hd) acc[i] += p * detail::f16_bits_to_float(v_row[d]);
  }
}

// A chunk's K and V in registers, for head sizes 64 and 128: lane l's position's K row, and this
// lane's dims of all 32 positions' V rows, loaded together so a chunk waits for memory once
// (loading V after the scores would wait again, 8 rows at a time). Lanes past the row's last
// position load that position's rows and score -inf.
template <int HD>
struct ChunkKv {
  static constexpr int kKPieces = HD / 8;                         // 16-byte pieces of a K row
  using VPiece = std::conditional_t<HD == 128, uint2, uint32_t>;  // 4 or 2 halves
  uint4 k[kKPieces];
  VPiece v[detail::kWarp];
  bool valid = false;

  __device__ __forceinline__ void load(const uint16_t* k_cache, const uint16_t* v_cache,
                                       const detail::KvRows& rows, int64_t j, int64_t pos,
                                       int64_t n_kv, int lane) {
    valid = j <= pos;
    const int64_t row = rows.row(valid ? j : pos);
    const auto* k_row = reinterpret_cast<const uint4*>(k_cache + row * n_kv);
#pragma unroll
    for (int i = 0; i < kKPieces; ++i) k[i] = k_row[i];
#pragma unroll
    for (int jj = 0; jj < detail::kWarp; ++jj) {
      const int64_t row_jj = __shfl_sync(detail::kFullMask, row, jj);
      v[jj] = reinterpret_cast<const VPiece*>(v_cache + row_jj * n_kv)[lane];
    }
  }

  // With the RoPE fused, the token's own position is not in the cache yet: its K row (lane
  // pos - j0) and V dims come from the block's copies in shared memory.
  __device__ __forceinline__ void take_new(const uint16_t* k_new, const uint16_t* v_new, int64_t j0,
                                           int64_t pos, int lane) {
    if (j0 + lane == pos) {
#pragma unroll
      for (int i = 0; i < kKPieces; ++i) k[i] = reinterpret_cast<const uint4*>(k_new)[i];
    }
#pragma unroll
    for (int jj = 0; jj < detail::kWarp; ++jj) {
      if (j0 + jj == pos) v[jj] = reinterpret_cast<const VPiece*>(v_new)[lane];
    }
  }

  __device__ __forceinline__ float score(const float* q_s) const {
    float s = 0.0f;
#pragma unroll
    for (int c = 0; c < kKPieces; ++c) {
      const auto* h2 = reinterpret_cast<const __half2*>(&k[c]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 kf = __half22float2(h2[e]);
        s += q_s[8 * c + 2 * e] * kf.x + q_s[8 * c + 2 * e + 1] * kf.y;
      }
    }
    return s;
  }

  // acc += p_jj * V row jj for the chunk's first n positions.
  __device__ __forceinline__ void add_v(float p, int n, float* acc) const {
#pragma unroll
    for (int jj = 0; jj < detail::kWarp; ++jj) {
      const float p_jj = __shfl_sync(detail::kFullMask, p, jj);
      if (jj >= n) continue;
      const auto* h2 = reinterpret_cast<const __half2*>(&v[jj]);
      const float2 a = __half22float2(h2[0]);
      acc[0] += p_jj * a.x;
      acc[1] += p_jj * a.y;
      if constexpr (HD == 128) {
        const float2 b = __half22float2(h2[1]);
        acc[2] += p_jj * b.x;
        acc[3] += p_jj * b.y;
      }
    }
  }
};

// Output element i (of [n_tokens, n_head * head_dim]); with out_q8, also its 8-bit code. The
// callers' loops over a head's dims keep whole warps on whole blocks of 32 (head_dim and the
// block's threads are multiples of 32), so lane l holds element l of a quantization block.
__device__ __forceinline__ void write_out(const AttentionJob& job, int64_t i, float v, int lane) {
  job.out[i] = v;
  if (job.out_q8.qs != nullptr) {
    const int64_t b = i / detail::kQk;
    detail::quantize_block_q8(v, lane, job.out_q8.qs + b * detail::kQk, job.out_q8.ds + b);
  }
}

// Fused RoPE: dim d of the token's q (rotated, scaled) into q_s, and of its KV head's k (rotated)
// and v as F16 into k_new and v_new, rotated as rope_store_kv rotates (rope.cuh); `write` also
// stores them in the cache row of position pos.
// q, k and v are scaled by norm_scale first (AttentionJob::norm; 1 without).
__device__ __forceinline__ void rope_new_token(const AttentionJob& job, int64_t d, int64_t h,
                                               int64_t kv_head, int64_t pos, int64_t cache_row,
                                               bool write, float norm_scale, float* q_s,
                                               uint16_t* k_new, uint16_t* v_new) {
  const RopeKvJob& r = job.rope;
  const int64_t hd = job.head_dim;
  const int64_t half = r.n_rot / 2;
  int64_t partner = -1;  // the other dim of d's rotated pair
  bool second = false;   // d is the pair's second dim
  detail::RopeAngle angle{1.0f, 0.0f};
  if (d < r.n_rot) {
    int64_t slot;
    if (r.half_split) {
      second = d >= half;
      slot = second ? d - half : d;
      partner = second ? d - half : d + half;
    } else {
      second = (d & 1) != 0;
      slot = d / 2;
      partner = d ^ 1;
    }
    angle = detail::rope_angle(pos, r.freqs[slot], r.attn_factor);
  }
  auto at = [norm_scale](const float* x, const float* bias, int64_t i) {
    return x[i] * norm_scale + (bias != nullptr ? bias[i] : 0.0f);
  };
  auto rotated = [&](const float* x, const float* bias, int64_t base) {
    const float own = at(x, bias, base + d);
    if (partner < 0) return own;
    const float other = at(x, bias, base + partner);
    const float x0 = second ? other : own;
    const float x1 = second ? own : other;
    return second ? detail::rope_second(x0, x1, angle) : detail::rope_first(x0, x1, angle);
  };
  q_s[d] = rotated(r.q, r.bq, h * hd) * job.scale;
  const int64_t kv_at = kv_head * hd + d;
  k_new[d] = detail::float_to_f16_bits(rotated(r.k, r.bk, kv_head * hd));
  v_new[d] = detail::float_to_f16_bits(at(r.v, r.bv, kv_at));
  if (write) {
    const int64_t n_kv = job.n_head_kv * hd;
    r.k_cache[cache_row * n_kv + kv_at] = k_new[d];
    r.v_cache[cache_row * n_kv + kv_at] = v_new[d];
  }
}

// The RMSNorm's 1 / sqrt(mean(x^2) + eps) of job.norm.x, summed by the block's threads in a
// fixed order (the same in every block). The whole block calls it.
template <int kThreads>
__device__ __forceinline__ float norm_scale_of(const AttentionJob& job) {
  __shared__ float warp_sums[kThreads / detail::kWarp];
  const auto* x4 = reinterpret_cast<const float4*>(job.norm.x);
  float sum = 0.0f;
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < job.norm.n / 4; i += kThreads) {
    const float4 v = x4[i];
    sum += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  for (int64_t i = job.norm.n / 4 * 4 + threadIdx.x; i < job.norm.n; i += kThreads) {
    sum += job.norm.x[i] * job.norm.x[i];
  }
  sum = detail::warp_sum(sum);
  if (threadIdx.x % detail::kWarp == 0) warp_sums[threadIdx.x / detail::kWarp] = sum;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kThreads / detail::kWarp; ++w) total += warp_sums[w];
  return 1.0f / sqrtf(total / static_cast<float>(job.norm.n) + job.norm.eps);
}

// kWarps warps a block: 4 for prompts (many blocks), 8 for one token. gridDim.y splits.
template <int HD, int kWarps>
__global__ void attention_kernel(AttentionJob job) {
  // With the RoPE fused (one token), the cache rows read are earlier steps' (all written before
  // the kernel before this one started), so the first chunk's K and V are loaded before waiting
  // for that kernel (its q, k and v). Otherwise the kernel before may have written the rows.
  if (!job.fuse_rope) detail::begin_dependent();
  constexpr int kThreads = kWarps * detail::kWarp;
  constexpr int kDims =
      HD > 0 ? (HD + detail::kWarp - 1) / detail::kWarp : kMaxDims / detail::kWarp;
  static_assert(HD == 0 || HD == 64 || HD == 128 || HD % detail::kWarp == 0);
  __shared__ float q_s[kMaxDims];
  __shared__ __align__(16) uint16_t k_new[kMaxDims];  // fused RoPE: the token's k and v, F16
  __shared__ __align__(16) uint16_t v_new[kMaxDims];
  __shared__ float warp_m[kWarps];
  __shared__ float warp_l[kWarps];
  __shared__ float warp_out[kWarps][kMaxDims];
  __shared__ bool last;
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  const int64_t query_row = blockIdx.x;  // t * n_head + h
  const int64_t t = query_row / job.n_head;
  const int64_t h = query_row % job.n_head;
  const int hd = HD > 0 ? HD : static_cast<int>(job.head_dim);
  const int64_t n_kv = job.n_head_kv * hd;
  const int64_t kv_head = h / (job.n_head / job.n_head_kv);
  const int64_t pos = detail::token_position(job.paged, job.first_pos, job.first_pos_dev, t);
  const detail::KvRows rows = detail::kv_rows(job.paged, t);
  const int64_t begin = job.window > 0 && pos - job.window + 1 > 0 ? pos - job.window + 1 : 0;
  // This split's chunks of 32 positions: [chunk_begin, chunk_end) of the row's n_chunks. Rows
  // split only as far as every warp gets a chunk; the blocks of the other splits leave.
  const int64_t n_chunks = (pos - begin) / detail::kWarp + 1;
  const int64_t n_splits = min(static_cast<int64_t>(gridDim.y), max(n_chunks / kWarps, int64_t{1}));
  if (blockIdx.y >= n_splits) return;
  const int64_t chunk_begin = n_chunks * blockIdx.y / n_splits;
  const int64_t chunk_end = n_chunks * (blockIdx.y + 1) / n_splits;
  const uint16_t* k = job.k_cache + kv_head * hd;  // position p's row at k + rows.row(p) * n_kv
  const uint16_t* v = job.v_cache + kv_head * hd;
  constexpr bool kRegs = HD == 64 || HD == 128;  // a chunk's K and V go through registers
  ChunkKv<kRegs ? HD : 64> kv;
  // The first chunk's K and V are on their way while q is read.
  if constexpr (kRegs) {
    const int64_t c = chunk_begin + warp;
    if (c < chunk_end) kv.load(k, v, rows, begin + c * detail::kWarp + lane, pos, n_kv, lane);
  }
  if (job.fuse_rope) {
    // The residual was written two kernels before: its norm is taken before the wait too.
    const float norm_scale = job.norm.x != nullptr ? norm_scale_of<kThreads>(job) : 1.0f;
    detail::begin_dependent();
    // The first query head of each KV head's group writes the token's k and v (split 0, which
    // every row has).
    const bool write = h % (job.n_head / job.n_head_kv) == 0 && blockIdx.y == 0;
    const int64_t cache_row = rows.row(pos);
    for (int d = threadIdx.x; d < hd; d += kThreads) {
      rope_new_token(job, d, h, kv_head, pos, cache_row, write, norm_scale, q_s, k_new, v_new);
    }
  } else {
    const float* q = job.q + query_row * hd;  // [hd]
    for (int d = threadIdx.x; d < hd; d += kThreads) q_s[d] = q[d] * job.scale;
  }
  __syncthreads();
  float m = -INFINITY;  // running max of this warp's scores
  float l = 0.0f;       // running sum of exp(score - m)
  float acc[kDims];
#pragma unroll
  for (int i = 0; i < kDims; ++i) acc[i] = 0.0f;
  for (int64_t c = chunk_begin + warp; c < chunk_end; c += kWarps) {
    const int64_t j0 = begin + c * detail::kWarp;
    const int64_t j = j0 + lane;
    int64_t row = 0;
    float s = -INFINITY;
    if constexpr (kRegs) {
      if (job.fuse_rope) kv.take_new(k_new, v_new, j0, pos, lane);
      if (kv.valid) s = kv.score(q_s);
    } else if (j <= pos) {
      row = rows.row(j);
      s = score(q_s, job.fuse_rope && j == pos ? k_new : k + row * n_kv, hd);
    }
    const float m_new = fmaxf(m, detail::warp_max(s));
    const float correction = expf(m - m_new);
    const float p = j <= pos ? expf(s - m_new) : 0.0f;
    l = l * correction + detail::warp_sum(p);
#pragma unroll
    for (int i = 0; i < kDims; ++i) acc[i] *= correction;
    const int n_chunk =
        static_cast<int>(pos - j0 + 1 < detail::kWarp ? pos - j0 + 1 : detail::kWarp);
    if constexpr (kRegs) {
      kv.add_v(p, n_chunk, acc);
      const int64_t next = c + kWarps;
      if (next < chunk_end)
        kv.load(k, v, rows, begin + next * detail::kWarp + lane, pos, n_kv, lane);
    } else {
#pragma unroll 8
      for (int jj = 0; jj < n_chunk; ++jj) {
        const float p_j = __shfl_sync(detail::kFullMask, p, jj);
        const int64_t row_jj = __shfl_sync(detail::kFullMask, row, jj);
        const uint16_t* v_row = job.fuse_rope && j0 + jj == pos ? v_new : v + row_jj * n_kv;
        add_v<HD, kDims>(v_row, p_j, lane, hd, acc);
      }
    }
    m = m_new;
  }
  // Merge the warps: rescale each to the largest max. A warp that had no chunk has m = -inf,
  // l = 0 and contributes nothing; warp 0 always has one (a split has at least kWarps chunks).
  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDims; ++i) {
    const int d = dim_of<HD, kDims>(lane, i);
    if (d < hd) warp_out[warp][d] = acc[i];
  }
  __syncthreads();
  float m_all = warp_m[0];
  for (int w = 1; w < kWarps; ++w) m_all = fmaxf(m_all, warp_m[w]);
  float weight[kWarps];
  float l_all = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    weight[w] = warp_m[w] == -INFINITY ? 0.0f : expf(warp_m[w] - m_all);
    l_all += warp_l[w] * weight[w];
  }
  if (n_splits == 1) {
    for (int d = threadIdx.x; d < hd; d += kThreads) {
      float sum = 0.0f;
      for (int w = 0; w < kWarps; ++w) sum += warp_out[w][d] * weight[w];
      write_out(job, query_row * hd + d, sum / l_all, lane);
    }
    return;
  }
  // Split: this block's (max, sum, output) into the workspace, [row][split][2 + hd].
  float* part = job.partials + (query_row * n_splits + blockIdx.y) * (2 + hd);
  if (threadIdx.x == 0) {
    part[0] = m_all;
    part[1] = l_all;
  }
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += warp_out[w][d] * weight[w];
    part[2 + d] = sum;
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(job.counters + query_row, 1u) == n_splits - 1;
    if (last) job.counters[query_row] = 0;  // ready for the next launch
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  // The other blocks' parts, read past the L1 cache (it may hold an earlier launch's).
  const float* parts = job.partials + query_row * n_splits * (2 + hd);
  float m_row = -INFINITY;
  for (int64_t i = 0; i < n_splits; ++i) m_row = fmaxf(m_row, __ldcg(parts + i * (2 + hd)));
  float l_row = 0.0f;
  for (int64_t i = 0; i < n_splits; ++i) {
    const float m_i = __ldcg(parts + i * (2 + hd));
    if (m_i != -INFINITY) l_row += __ldcg(parts + i * (2 + hd) + 1) * expf(m_i - m_row);
  }
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n_splits; ++i) {
      const float m_i = __ldcg(parts + i * (2 + hd));
      if (m_i != -INFINITY) sum += __ldcg(parts + i * (2 + hd) + 2 + d) * expf(m_i - m_row);
    }
    write_out(job, query_row * hd + d, sum / l_row, lane);
  }
}

// Splits a row's positions over several blocks when the rows alone leave the GPU idle.
int64_t splits_for(const AttentionJob& job) {
  const int64_t rows = job.n_tokens * job.n_head;
  if (job.partials == nullptr || job.counters == nullptr) return 1;
  if (rows * 2 > kAttentionSplitBlocks) return 1;
  return std::min<int64_t>(16, kAttentionSplitBlocks / rows);
}

template <int kWarps>
void launch(const AttentionJob& job, int64_t n_splits, cudaStream_t stream) {
  const dim3 blocks(static_cast<unsigned>(job.n_tokens * job.n_head),
                    static_cast<unsigned>(n_splits));
  constexpr unsigned kThreads = kWarps * detail::kWarp;
  if (job.head_dim == 64) {
    detail::launch_dependent(attention_kernel<64, kWarps>, blocks, kThreads, 0, stream, job);
  } else if (job.head_dim == 128) {
    detail::launch_dependent(attention_kernel<128, kWarps>, blocks, kThreads, 0, stream, job);
  } else {
    detail::launch_dependent(attention_kernel<0, kWarps>, blocks, kThreads, 0, stream, job);
  }
}

}  // namespace

void attention(const AttentionJob& job, cudaStream_t stream) {
  const int64_t rows = job.n_tokens * job.n_head;
  if (rows == 0) return;
  const bool paged = job.paged.positions != nullptr;
  if (job.fuse_rope && (job.n_tokens != 1 || job.rope.n_rot > job.head_dim)) {
    std::fprintf(stderr, "cuda attention: RoPE is fused for one token only\n");
    std::abort();
  }
  if (job.norm.x != nullptr &&
      (!job.fuse_rope || job.norm.n < 1 || reinterpret_cast<uintptr_t>(job.norm.x) % 16 != 0)) {
    std::fprintf(stderr, "cuda attention: the norm ends here with the RoPE fused, x aligned\n");
    std::abort();
  }
  if (job.out_q8.qs != nullptr && job.head_dim % detail::kQk != 0) {
    std::fprintf(stderr, "cuda attention: a quantized output needs heads of a multiple of 32\n");
    std::abort();
  }
  if (job.tensor_cores && !paged && job.n_tokens > 1 &&
      detail::attention_tc_supported(job.head_dim)) {
    detail::attention_tc(job, stream);
    if (job.out_q8.qs != nullptr) {
      quantize_q8(job.out, job.n_tokens, job.n_head * job.head_dim, job.out_q8, stream);
    }
    return;
  }
  // One token: 8 warps, so a block takes 256 positions at once; the splits start past them.
  const int64_t n_splits = splits_for(job);
  if (job.n_tokens == 1) {
    launch<8>(job, n_splits, stream);
  } else {
    launch<4>(job, n_splits, stream);
  }
}

}  // namespace pensieve::cuda
