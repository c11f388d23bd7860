// The attention kernel's body, written once on GCC vector types and compiled by each ISA's
// translation unit with its own flags (define PENSIEVE_VEC_BYTES first: 16, 32 or 64). Everything
// here has internal linkage, so the units share no code built for another ISA.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "kernels/cpu/attention.h"

#if defined(__F16C__) || defined(__AVX512F__)
#include "kernels/cpu/simd_intrinsics.h"
#endif

#ifndef PENSIEVE_VEC_BYTES
#error "define PENSIEVE_VEC_BYTES before including attention_impl.h"
#endif

namespace pensieve::cpu {
namespace {

using VecF = float __attribute__((vector_size(PENSIEVE_VEC_BYTES)));
using VecI = int32_t __attribute__((vector_size(PENSIEVE_VEC_BYTES)));
constexpr int kLanes = PENSIEVE_VEC_BYTES / 4;
// Positions converted to F32 and scored together.
constexpr int kPosBlock = 32;
static_assert(kPosBlock % kLanes == 0);
// Each block of positions then lies in one block of a paged cache.
static_assert(kPosBlock == kKvBlockPositions);

VecF load(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void store(float* p, VecF v) { std::memcpy(p, &v, sizeof v); }

VecF splat(float x) { return VecF{} + x; }

float reduce_add(VecF v) {
  float sum = 0;
  for (int i = 0; i < kLanes; ++i) sum += v[i];
  return sum;
}

// e^x for x <= 0: 2^n * poly(r) with x = n ln2 + r, |r| <= ln2/2 (relative error ~2e-7);
// x below -87 gives 0.
VecF exp_nonpositive(VecF x) {
  const VecF clamped = x < -87.0f ? splat(-87.0f) : x;
  // Round half away from zero: every x here is <= 0.
  const VecF n =
      __builtin_convertvector(__builtin_convertvector(clamped * 1.44269504f - 0.5f, VecI), VecF);
  const VecF r = clamped - n * 0.693145752f - n * 1.42860677e-6f;
  VecF p = splat(1.0f / 5040);
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;
  VecF scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const VecF result = p * scale;
  return x < -87.0f ? VecF{} : result;  // also e^-inf = 0
}

void f16_row_to_f32(const uint16_t* src, int64_t n, float* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
  }
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void q8_0_row_to_f32(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / 32; ++b, src += 34) {
    uint16_t d16;
    std::memcpy(&d16, src, 2);
    const float d = f16_to_f32(d16);
    const auto* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int i = 0; i < 32; ++i) dst[b * 32 + i] = d * static_cast<float>(q[i]);
  }
}

// The cache row of position p0, the first of a block of kPosBlock positions; the block's rows
// follow it kv_stride apart, in a paged cache too.
const uint8_t* block_rows(const AttentionJob& job, const uint8_t* base, int64_t p0) {
  if (job.block_table == nullptr) return base + static_cast<size_t>(p0) * job.kv_stride;
  return base + static_cast<size_t>(job.block_table[p0 / kPosBlock]) * job.block_stride;
}

// The n cache rows from `row` on as F32 [n, head_dim]: the cache itself when it is F32.
const float* rows_as_f32(const AttentionJob& job, const uint8_t* row, int64_t n, float* buffer) {
  if (job.kv_type == GgmlType::kF32 && job.kv_stride == static_cast<size_t>(job.head_dim) * 4) {
    return reinterpret_cast<const float*>(row);
  }
  for (int64_t j = 0; j < n; ++j, row += job.kv_stride) {
    float* dst = buffer + j * job.head_dim;
    switch (job.kv_type) {
      case GgmlType::kF16:
        f16_row_to_f32(reinterpret_cast<const uint16_t*>(row), job.head_dim, dst);
        break;
      case GgmlType::kQ8_0:
        q8_0_row_to_f32(row, job.head_dim, dst);
        break;
      default:
        std::memcpy(dst, row, static_cast<size_t>(job.head_dim) * 4);
        break;
    }
  }
  return buffer;
}

// The n K rows from `row` on transposed to kt[d * kPosBlock + j], positions past n zero: the
// scores of a whole block then come from head_dim vector multiply-adds, with no horizontal sums.
void k_block_transposed(const AttentionJob& job, const uint8_t* row, int64_t n, float* row_buf,
                        float* kt) {
  const int64_t hd = job.head_dim;
  const float* rows = rows_as_f32(job, row, n, row_buf);
  for (int64_t d = 0; d < hd; ++d) {
    float* column = kt + d * kPosBlock;
    for (int64_t j = 0; j < n; ++j) column[j] = rows[j * hd + d];
    for (int64_t j = n; j < kPosBlock; ++j) column[j] = 0.0f;
  }
}

// scores[j] = scale * q . k_j for the block's kPosBlock positions.
void block_scores(const float* q, const float* kt, int64_t head_dim, float scale, float* scores) {
  VecF acc[kPosBlock / kLanes] = {};
  for (int64_t d = 0; d < head_dim; ++d) {
    const VecF qd = splat(q[d]);
    for (int v = 0; v < kPosBlock / kLanes; ++v)
      acc[v] += qd * load(kt + d * kPosBlock + v * kLanes);
  }
  for (int v = 0; v < kPosBlock / kLanes; ++v) store(scores + v * kLanes, acc[v] * scale);
}

// acc = acc * keep + sum_j p[j] * v[j]
void scale_accumulate(float* acc, float keep, const float* p, const float* v, int64_t n_pos,
                      int64_t head_dim) {
  int64_t d = 0;
  for (; d + kLanes <= head_dim; d += kLanes) {
    VecF a = load(acc + d) * keep;
    for (int64_t j = 0; j < n_pos; ++j) a += p[j] * load(v + j * head_dim + d);
    store(acc + d, a);
  }
  for (; d < head_dim; ++d) {
    float a = acc[d] * keep;
    for (int64_t j = 0; j < n_pos; ++j) a += p[j] * v[j * head_dim + d];
    acc[d] = a;
  }
}

void attention_impl(const AttentionJob& job, float* scratch) {
  const int64_t hd = job.head_dim;
  const int64_t n_rows = job.group * job.n_tokens;
  float* acc = scratch;                   // [n_rows, hd]
  float* max = acc + n_rows * hd;         // [n_rows] running maximum of the scores
  float* sum = max + n_rows;              // [n_rows] running sum of e^(score - max)
  float* k_buf = sum + n_rows;            // [kPosBlock, hd] K rows as F32
  float* v_buf = k_buf + kPosBlock * hd;  // [kPosBlock, hd] V rows as F32
  float* kt = v_buf + kPosBlock * hd;     // [hd, kPosBlock] K transposed
  std::fill(acc, acc + n_rows * hd, 0.0f);
  std::fill(max, max + n_rows, -INFINITY);
  std::fill(sum, sum + n_rows, 0.0f);

  const int64_t n_pos = job.first_pos + job.n_tokens;
  // The first position token t attends; with no window, 0.
  auto window_start = [&job](int64_t t) {
    return job.window > 0 ? std::max<int64_t>(0, job.first_pos + t - job.window + 1) : 0;
  };
  alignas(64) float p[kPosBlock];
  // Blocks start at multiples of kPosBlock (a paged cache's blocks), from the one holding the
  // first token's window start: earlier blocks lie before every token's window.
  for (int64_t p0 = window_start(0) / kPosBlock * kPosBlock; p0 < n_pos; p0 += kPosBlock) {
    const int64_t block = std::min<int64_t>(kPosBlock, n_pos - p0);
    k_block_transposed(job, block_rows(job, job.k, p0), block, k_buf, kt);
    const float* v = rows_as_f32(job, block_rows(job, job.v, p0), block, v_buf);
    for (int64_t t = 0; t < job.n_tokens; ++t) {
      const int64_t seen = std::min(block, job.first_pos + t + 1 - p0);  // causal limit
      const int64_t first = std::max<int64_t>(0, window_start(t) - p0);  // window limit
      if (seen <= first) continue;
      for (int64_t h = 0; h < job.group; ++h) {
        const int64_t row = t * job.group + h;
        const float* q = job.q + t * job.token_stride + h * hd;
        block_scores(q, kt, hd, job.scale, p);
        float block_max = -INFINITY;
        for (int64_t j = first; j < seen; ++j) block_max = std::max(block_max, p[j]);
        const float new_max = std::max(max[row], block_max);
        const float keep = std::exp(max[row] - new_max);  // 0 on the first block
        max[row] = new_max;
        for (int64_t j = 0; j < first; ++j) p[j] = -INFINITY;
        for (int64_t j = seen; j < kPosBlock; ++j) p[j] = -INFINITY;
        float block_sum = 0;
        for (int j = 0; j < kPosBlock; j += kLanes) {
          const VecF e = exp_nonpositive(load(p + j) - new_max);
          store(p + j, e);
          block_sum += reduce_add(e);
        }
        sum[row] = sum[row] * keep + block_sum;
        scale_accumulate(acc + row * hd, keep, p + first, v + first * hd, seen - first, hd);
      }
    }
  }
  for (int64_t t = 0; t < job.n_tokens; ++t) {
    for (int64_t h = 0; h < job.group; ++h) {
      const int64_t row = t * job.group + h;
      float* out = job.out + t * job.token_stride + h * hd;
      const float inv = 1.0f / sum[row];
      for (int64_t d = 0; d < hd; ++d) out[d] = acc[row * hd + d] * inv;
    }
  }
}

}  // namespace
}  // namespace pensieve::cpu
