// RoPE on q and k (with the q/k/v biases first, when the model has them), then k and v into the
// layer's F16 cache rows (row = position, or through the block table of a paged cache). A row of
// thread blocks per token; each thread takes one item: a rotated pair, a dimension that passes
// through, or a dimension of v.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/paged_kv.cuh"
#include "kernels/cuda/rope.cuh"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ float bias_at(const float* bias, int64_t i) {
  return bias != nullptr ? bias[i] : 0.0f;
}

__global__ void rope_kv_kernel(RopeKvJob job) {
  const int64_t hd = job.head_dim;
  const int64_t half = job.n_rot / 2;
  const int64_t per_head = hd - half;  // half pairs + (hd - n_rot) dims that pass through
  const int64_t item = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  const int64_t slot = item % per_head;
  // The frequency is not the kernel before's output: read it while that kernel finishes.
  const double freq = slot < half ? job.freqs[slot] : 0.0;
  detail::begin_dependent();
  const int64_t t = blockIdx.x;
  const int64_t pos = detail::token_position(job.paged, job.first_pos, job.first_pos_dev, t);
  const int64_t cache_row = detail::kv_rows(job.paged, t).row(pos);
  const int64_t n_q = job.n_head * hd;
  const int64_t n_kv = job.n_head_kv * hd;
  const int64_t n_rotated = (job.n_head + job.n_head_kv) * per_head;
  float* q = job.q + t * n_q;                        // [n_q]
  const float* k = job.k + t * n_kv;                 // [n_kv]
  const float* v = job.v + t * n_kv;                 // [n_kv]
  uint16_t* k_row = job.k_cache + cache_row * n_kv;  // [n_kv]
  uint16_t* v_row = job.v_cache + cache_row * n_kv;  // [n_kv]
  if (item >= n_rotated + n_kv) return;
  if (item >= n_rotated) {
    const int64_t i = item - n_rotated;
    v_row[i] = detail::float_to_f16_bits(v[i] + bias_at(job.bv, i));
    return;
  }
  const int64_t head = item / per_head;
  const bool is_q = head < job.n_head;
  const int64_t base = (is_q ? head : head - job.n_head) * hd;  // head's first dim
  const float* src = is_q ? q : k;
  const float* bias = is_q ? job.bq : job.bk;
  float out_a, out_b = 0.0f;
  int64_t a, b = -1;
  if (slot < half) {
    a = base + (job.half_split ? slot : 2 * slot);
    b = base + (job.half_split ? slot + half : 2 * slot + 1);
    const float x0 = src[a] + bias_at(bias, a);
    const float x1 = src[b] + bias_at(bias, b);
    const detail::RopeAngle angle = detail::rope_angle(pos, freq, job.attn_factor);
    out_a = detail::rope_first(x0, x1, angle);
    out_b = detail::rope_second(x0, x1, angle);
  } else {
    a = base + job.n_rot + (slot - half);
    out_a = src[a] + bias_at(bias, a);
  }
  if (is_q) {
    q[a] = out_a;
    if (b >= 0) q[b] = out_b;
  } else {
    k_row[a] = detail::float_to_f16_bits(out_a);
    if (b >= 0) k_row[b] = detail::float_to_f16_bits(out_b);
  }
}

}  // namespace

void rope_frequencies(int64_t n_rot, float freq_base, float freq_scale, const float* factors,
                      double* freqs) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    double freq = std::pow(static_cast<double>(freq_base),
                           -2.0 * static_cast<double>(i) / static_cast<double>(n_rot)) *
                  freq_scale;
    if (factors != nullptr) freq /= factors[i];
    freqs[i] = freq;
  }
}

void rope_store_kv(const RopeKvJob& job, cudaStream_t stream) {
  if (job.n_tokens == 0) return;
  const int64_t per_head = job.head_dim - job.n_rot / 2;
  const int64_t items = (job.n_head + job.n_head_kv) * per_head + job.n_head_kv * job.head_dim;
  const dim3 grid(static_cast<unsigned>(job.n_tokens), detail::grid_for(items, kThreads));
  detail::launch_dependent(rope_kv_kernel, grid, kThreads, 0, stream, job);
}

}  // namespace pensieve::cuda
