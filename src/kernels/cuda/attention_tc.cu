// Causal attention for prompt chunks on the tensor cores (WMMA): a thread block takes 64 query
// rows of one head and walks the keys they can see in tiles of 64 positions. Per tile, each of
// its 4 warps computes the scores of its 16 rows (q in F16, pre-scaled, times the F16 K rows,
// F32 sums), updates the running max and sum of its rows (two lanes a row), writes the softmax
// weights as F16 and adds them times the V rows to its F32 output rows in shared memory (rescaled
// by the change of max first). Masking (causal, window) happens on the scores, so every row's
// weights are exactly those of the scalar kernel up to F16 rounding.
#include <mma.h>

#include <cmath>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/common.cuh"

namespace pensieve::cuda::detail {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kTile = 64;  // query rows a block, key positions a step
constexpr int kWarps = 4;  // 16 query rows each
constexpr int kThreads = kWarps * kWarp;
constexpr int kFrag = 16;

template <int HD>
struct Layout {
  static constexpr int kLdH = HD + 8;     // halves a row of q, k, v
  static constexpr int kLdS = kTile + 4;  // floats a row of scores
  static constexpr int kLdP = kTile + 8;  // halves a row of weights
  static constexpr int kLdO = HD + 4;     // floats a row of output
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + kTile * kLdH * sizeof(half);
  static constexpr size_t kV = kK + kTile * kLdH * sizeof(half);
  static constexpr size_t kS = kV + kTile * kLdH * sizeof(half);
  static constexpr size_t kP = kS + kTile * kLdS * sizeof(float);
  static constexpr size_t kO = kP + kTile * kLdP * sizeof(half);
  static constexpr size_t kBytes = kO + kTile * kLdO * sizeof(float);
};

__device__ __forceinline__ void copy16(void* smem, const void* gmem, bool valid) {
  const auto dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem),
               "r"(valid ? 16 : 0));
}

template <int HD>
__global__ void __launch_bounds__(kThreads) attention_tc_kernel(AttentionJob job) {
  using L = Layout<HD>;
  extern __shared__ __align__(128) unsigned char smem[];
  half* s_q = reinterpret_cast<half*>(smem + L::kQ);    // [kTile, kLdH]
  half* s_k = reinterpret_cast<half*>(smem + L::kK);    // [kTile, kLdH]
  half* s_v = reinterpret_cast<half*>(smem + L::kV);    // [kTile, kLdH]
  float* s_s = reinterpret_cast<float*>(smem + L::kS);  // [kTile, kLdS]
  half* s_p = reinterpret_cast<half*>(smem + L::kP);    // [kTile, kLdP]
  float* s_o = reinterpret_cast<float*>(smem + L::kO);  // [kTile, kLdO]
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t h = blockIdx.y;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t first = job.first_pos + (job.first_pos_dev != nullptr ? *job.first_pos_dev : 0);
  const int64_t n_kv = job.n_head_kv * HD;
  const int64_t kv_head = h / (job.n_head / job.n_head_kv);
  const uint16_t* k_base = job.k_cache + kv_head * HD;  // position j's row at + j * n_kv
  const uint16_t* v_base = job.v_cache + kv_head * HD;

  for (int i = threadIdx.x; i < kTile * HD; i += kThreads) {
    const int r = i / HD;
    const int d = i % HD;
    const int64_t t = t0 + r;
    const float x = t < job.n_tokens ? job.q[(t * job.n_head + h) * HD + d] * job.scale : 0.0f;
    s_q[r * L::kLdH + d] = __float2half_rn(x);
    s_o[r * L::kLdO + d] = 0.0f;
  }

  // Lanes 2i and 2i + 1 of warp w own row w * 16 + i, 32 score columns and HD / 2 output
  // columns each.
  const int row = warp * kFrag + lane / 2;
  const int part = lane % 2;
  const int64_t pos = first + t0 + row;
  const int64_t lo = job.window > 0 && pos - job.window + 1 > 0 ? pos - job.window + 1 : 0;
  float m = -INFINITY;  // running max of the row's scores
  float l = 0.0f;       // running sum of its weights
  const int64_t last_t = (t0 + kTile < job.n_tokens ? t0 + kTile : job.n_tokens) - 1;
  const int64_t p_last = first + last_t;
  const int64_t p_first = first + t0;
  const int64_t kv_lo =
      job.window > 0 && p_first - job.window + 1 > 0 ? p_first - job.window + 1 : 0;
  __syncthreads();

  for (int64_t j0 = kv_lo; j0 <= p_last; j0 += kTile) {
    for (int c = threadIdx.x; c < kTile * HD / 8; c += kThreads) {
      const int r = c / (HD / 8);
      const int col = c % (HD / 8) * 8;
      const int64_t j = j0 + r;
      const bool valid = j <= p_last;
      copy16(s_k + r * L::kLdH + col, valid ? k_base + j * n_kv + col : job.k_cache, valid);
      copy16(s_v + r * L::kLdH + col, valid ? v_base + j * n_kv + col : job.v_cache, valid);
    }
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 0;\n" ::);
    __syncthreads();

    // Scores of this warp's 16 rows against the tile's 64 keys.
#pragma unroll
    for (int n = 0; n < kTile / kFrag; ++n) {
      wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < HD; kk += kFrag) {
        wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, half, wmma::col_major> b;
        wmma::load_matrix_sync(a, s_q + warp * kFrag * L::kLdH + kk, L::kLdH);
        wmma::load_matrix_sync(b, s_k + n * kFrag * L::kLdH + kk, L::kLdH);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(s_s + warp * kFrag * L::kLdS + n * kFrag, acc, L::kLdS,
                              wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax over the row's visible keys: positions [lo, pos].
    const float* s_row = s_s + row * L::kLdS + part * 32;
    half* p_row = s_p + row * L::kLdP + part * 32;
    const int64_t jp = j0 + part * 32;
    float mx = -INFINITY;
    for (int c = 0; c < 32; ++c) {
      const int64_t j = jp + c;
      if (j >= lo && j <= pos) mx = fmaxf(mx, s_row[c]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
    const float m_new = fmaxf(m, mx);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // no key yet: weights stay 0
    const float alpha = expf(m - m_use);
    float sum = 0.0f;
    for (int c = 0; c < 32; ++c) {
      const int64_t j = jp + c;
      const half p = __float2half_rn(j >= lo && j <= pos ? expf(s_row[c] - m_use) : 0.0f);
      p_row[c] = p;
      sum += __half2float(p);
    }
    sum += __shfl_xor_sync(kFullMask, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    float* o_row = s_o + row * L::kLdO + part * (HD / 2);
    for (int d = 0; d < HD / 2; ++d) o_row[d] *= alpha;
    __syncwarp();

    // This warp's output rows += weights x V.
#pragma unroll
    for (int n = 0; n < HD / kFrag; ++n) {
      float* o_tile = s_o + warp * kFrag * L::kLdO + n * kFrag;
      wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> acc;
      wmma::load_matrix_sync(acc, o_tile, L::kLdO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kTile; kk += kFrag) {
        wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, half, wmma::row_major> b;
        wmma::load_matrix_sync(a, s_p + warp * kFrag * L::kLdP + kk, L::kLdP);
        wmma::load_matrix_sync(b, s_v + kk * L::kLdH + n * kFrag, L::kLdH);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(o_tile, acc, L::kLdO, wmma::mem_row_major);
    }
    __syncthreads();  // the next tile overwrites k and v
  }

  const int64_t t = t0 + row;
  if (t < job.n_tokens) {
    const float* o_row = s_o + row * L::kLdO + part * (HD / 2);
    float* out = job.out + (t * job.n_head + h) * HD + part * (HD / 2);  // [HD / 2]
    for (int d = 0; d < HD / 2; ++d) out[d] = o_row[d] / l;
  }
}

template <int HD>
void launch(const AttentionJob& job, cudaStream_t stream) {
  static const bool sized = [] {
    cudaFuncSetAttribute(attention_tc_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(Layout<HD>::kBytes));
    return true;
  }();
  (void)sized;
  const dim3 grid(grid_for(job.n_tokens, kTile), static_cast<unsigned>(job.n_head));
  attention_tc_kernel<HD><<<grid, kThreads, Layout<HD>::kBytes, stream>>>(job);
}

}  // namespace

void attention_tc(const AttentionJob& job, cudaStream_t stream) {
  if (job.head_dim == 64) {
    launch<64>(job, stream);
  } else {
    launch<128>(job, stream);
  }
}

}  // namespace pensieve::cuda::detail
