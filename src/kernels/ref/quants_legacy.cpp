// Plain types (F32, F16, BF16) and the 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "kernels/ref/quant_blocks.h"
#include "kernels/ref/quants_internal.h"

namespace pensieve::ref::detail {
namespace {

constexpr int kHalf = kQk / 2;

// ---- plain types: one element per "block" ----

void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void quantize_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_f16_one(const uint16_t& h, float* y) { *y = f16_to_f32(h); }
void quantize_f16_one(const float* x, uint16_t* h) { *h = f32_to_f16(*x); }
void dequantize_bf16_one(const uint16_t& b, float* y) { *y = bf16_to_f32(b); }
void quantize_bf16_one(const float* x, uint16_t* b) { *b = f32_to_bf16(*x); }

// ---- shared helpers ----

uint32_t load_qh(const uint8_t qh[4]) {
  return static_cast<uint32_t>(qh[0]) | (static_cast<uint32_t>(qh[1]) << 8) |
         (static_cast<uint32_t>(qh[2]) << 16) | (static_cast<uint32_t>(qh[3]) << 24);
}

void store_qh(uint32_t v, uint8_t qh[4]) {
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(v >> (8 * k));
}

// The quantizers follow the arithmetic of ggml's reference quantizers (codes from the unrounded
// scale, halves rounded up), so that they produce the same bytes as files made by llama.cpp:
// TinyStories-656K's F16 weights re-quantize to its Q8_0 file bit for bit.

// floor(v + 0.5) clamped to [0, hi]; NaN maps to 0.
int round_half_up(float v, int hi) {
  const float r = std::floor(v + 0.5f);
  if (!(r > 0.0f)) return 0;
  return r >= static_cast<float>(hi) ? hi : static_cast<int>(r);
}

// Codes of x = (q - offset) * d where the value of largest magnitude gets code 0 (the grid's
// longer side, -offset); stores d.
void symmetric_codes(const float* x, int offset, uint16_t* d_bits, uint8_t* q) {
  const float d = signed_absmax(x, kQk) / static_cast<float>(-offset);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_bits = f32_to_f16(d);
  for (int j = 0; j < kQk; ++j) {
    q[j] =
        static_cast<uint8_t>(round_half_up(x[j] * id + static_cast<float>(offset), 2 * offset - 1));
  }
}

// Codes of x = q * d + m, q in [0, qmax], from the min and max of the block; stores d and m.
void affine_codes(const float* x, int qmax, uint16_t* d_bits, uint16_t* m_bits, uint8_t* q) {
  const float min = *std::min_element(x, x + kQk);
  const float max = *std::max_element(x, x + kQk);
  const float d = (max - min) / static_cast<float>(qmax);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_bits = f32_to_f16(d);
  *m_bits = f32_to_f16(min);
  for (int j = 0; j < kQk; ++j) q[j] = static_cast<uint8_t>(round_half_up((x[j] - min) * id, qmax));
}

void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < kHalf; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + kHalf] & 0xF) << 4));
  }
}

uint32_t pack_fifth_bits(const uint8_t* q) {
  uint32_t qh = 0;
  for (int j = 0; j < kQk; ++j) qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  return qh;
}

// ---- Q4_0 ----

void dequantize_q4_0(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kHalf; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0xF) - 8) * d;
    y[j + kHalf] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* b) {
  uint8_t q[kQk];
  symmetric_codes(x, 8, &b->d, q);
  pack_nibbles(q, b->qs);
}

// ---- Q4_1 ----

void dequantize_q4_1(const BlockQ4_1& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  for (int j = 0; j < kHalf; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0xF) * d + m;
    y[j + kHalf] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

void quantize_q4_1(const float* x, BlockQ4_1* b) {
  uint8_t q[kQk];
  affine_codes(x, 15, &b->d, &b->m, q);
  pack_nibbles(q, b->qs);
}

// ---- Q5_0 ----

void dequantize_q5_0(const BlockQ5_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint32_t qh = load_qh(b.qh);
  for (int j = 0; j < kHalf; ++j) {
    const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + kHalf] = static_cast<float>(hi - 16) * d;
  }
}

void quantize_q5_0(const float* x, BlockQ5_0* b) {
  uint8_t q[kQk];
  symmetric_codes(x, 16, &b->d, q);
  pack_nibbles(q, b->qs);
  store_qh(pack_fifth_bits(q), b->qh);
}

// ---- Q5_1 ----

void dequantize_q5_1(const BlockQ5_1& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  const uint32_t qh = load_qh(b.qh);
  for (int j = 0; j < kHalf; ++j) {
    const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + kHalf] = static_cast<float>(hi) * d + m;
  }
}

void quantize_q5_1(const float* x, BlockQ5_1* b) {
  uint8_t q[kQk];
  affine_codes(x, 31, &b->d, &b->m, q);
  pack_nibbles(q, b->qs);
  store_qh(pack_fifth_bits(q), b->qh);
}

// ---- Q8_0 ----

void dequantize_q8_0(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

// Symmetric in [-127, 127]; halves round away from zero.
void quantize_q8_0(const float* x, BlockQ8_0* b) {
  float amax = 0.0f;
  for (int j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  for (int j = 0; j < kQk; ++j) {
    const float v = std::round(x[j] * id);
    b->qs[j] = static_cast<int8_t>(std::isnan(v) ? 0 : std::clamp(v, -127.0f, 127.0f));
  }
}

}  // namespace

QuantFns legacy_quant_fns(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return {dequantize_f32, quantize_f32};
    case GgmlType::kF16:
      return {dequantize_blocks<uint16_t, 1, dequantize_f16_one>,
              quantize_blocks<uint16_t, 1, quantize_f16_one>};
    case GgmlType::kBF16:
      return {dequantize_blocks<uint16_t, 1, dequantize_bf16_one>,
              quantize_blocks<uint16_t, 1, quantize_bf16_one>};
    case GgmlType::kQ4_0:
      return {dequantize_blocks<BlockQ4_0, kQk, dequantize_q4_0>,
              quantize_blocks<BlockQ4_0, kQk, quantize_q4_0>};
    case GgmlType::kQ4_1:
      return {dequantize_blocks<BlockQ4_1, kQk, dequantize_q4_1>,
              quantize_blocks<BlockQ4_1, kQk, quantize_q4_1>};
    case GgmlType::kQ5_0:
      return {dequantize_blocks<BlockQ5_0, kQk, dequantize_q5_0>,
              quantize_blocks<BlockQ5_0, kQk, quantize_q5_0>};
    case GgmlType::kQ5_1:
      return {dequantize_blocks<BlockQ5_1, kQk, dequantize_q5_1>,
              quantize_blocks<BlockQ5_1, kQk, quantize_q5_1>};
    case GgmlType::kQ8_0:
      return {dequantize_blocks<BlockQ8_0, kQk, dequantize_q8_0>,
              quantize_blocks<BlockQ8_0, kQk, quantize_q8_0>};
    default:
      return {};
  }
}

}  // namespace pensieve::ref::detail
