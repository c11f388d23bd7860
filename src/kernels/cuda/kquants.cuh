// K-quant rows (Q4_K, Q5_K, Q6_K) in the products: 32-element sub-blocks decoded to F32 with the
// reference's arithmetic (matmul, dequantize_f16), and 64-element units multiplied with the 8-bit
// codes of x by __dp4a (matvec). Sub-blocks of 32 line up with the activation blocks, so one
// activation scale applies per sub-block; Q6_K's scales cover 16 elements, half a block.
#pragma once

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/weight_blocks.cuh"

namespace pensieve::cuda::detail {

// Sub-block s (elements 32 s .. 32 s + 31) of a K-quant row as F32, as the reference computes it.
// kAligned: the row starts 16-byte aligned (Q4_K and Q5_K blocks then are too).
template <GgmlType T, bool kAligned = false>
__device__ __forceinline__ void k_quant_sub_block(const uint8_t* row, int64_t s, float* y) {
  WeightBlock<T, kAligned> block;
  block.fetch(row, 0, s);
  block.decode(y);
}

// The 32 codes of activation block b as 8 ints (Q8Act::qs is 16-byte aligned).
__device__ __forceinline__ void load_act_codes(const Q8Act& xq, int64_t b, int* v) {
  load_32_bytes<true>(reinterpret_cast<const uint8_t*>(xq.qs + b * kQk), v);
}

// Unit u (elements 64 u .. 64 u + 63: sub-blocks 2u and 2u + 1) of a Q4_K/Q5_K row times x:
// per sub-block, d * scale * d_x * sum(q * q_x) - dmin * min * d_x * sum(q_x). Rows are 16-byte
// aligned with kAligned (blocks of 144 and 176 bytes keep that alignment), else 2-byte.
template <GgmlType T, bool kAligned>
__device__ __forceinline__ float k4_unit_dot(const uint8_t* row, int64_t u, const Q8Act& xq) {
  const uint8_t* block = row + (u / 4) * k_block_bytes<T>();
  const int c = static_cast<int>(u % 4);  // sub-blocks 2c (low nibbles) and 2c + 1 (high)
  int qs[8], x0[8], x1[8];
  load_32_bytes<kAligned>(block + (T == GgmlType::kQ4_K ? 16 : 48) + 32 * c, qs);
  load_act_codes(xq, 2 * u, x0);
  load_act_codes(xq, 2 * u + 1, x1);
  int qh[8] = {};
  if constexpr (T == GgmlType::kQ5_K) load_32_bytes<kAligned>(block + 16, qh);
  int s0 = 0, s1 = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int lo = (qs[i] & 0x0F0F0F0F) | (((qh[i] >> (2 * c)) & 0x01010101) << 4);
    const int hi = ((qs[i] >> 4) & 0x0F0F0F0F) | (((qh[i] >> (2 * c + 1)) & 0x01010101) << 4);
    s0 = __dp4a(lo, x0[i], s0);
    s1 = __dp4a(hi, x1[i], s1);
  }
  int head[4];  // d and dmin, then the 12 bytes of 6-bit scales and mins: one load when aligned
  load_16_bytes<kAligned>(block, head);
  const float d = f16_bits_to_float(static_cast<uint16_t>(head[0] & 0xFFFF));
  const float dmin = f16_bits_to_float(static_cast<uint16_t>(static_cast<uint32_t>(head[0]) >> 16));
  const int2 sm0 = k4_scale_min_words(head + 1, 2 * c);
  const int2 sm1 = k4_scale_min_words(head + 1, 2 * c + 1);
  const float2 a0 = xq.ds[2 * u];
  const float2 a1 = xq.ds[2 * u + 1];
  return d * (static_cast<float>(sm0.x * s0) * a0.x + static_cast<float>(sm1.x * s1) * a1.x) -
         dmin * (static_cast<float>(sm0.y) * a0.y + static_cast<float>(sm1.y) * a1.y);
}

// Unit u of a Q6_K row times x: sub-blocks g = h and g = h + 2 of 128-element half c (u = 4 sb +
// 2c + h), which share their ql bytes (low and high nibbles) and qh bytes. The codes minus 32
// fit a signed byte (__vsubss4), so __dp4a sums (q - 32) * q_x directly; each 16-element half
// gets its own scale.
__device__ __forceinline__ float q6_k_unit_dot(const uint8_t* row, int64_t u, const Q8Act& xq) {
  const uint8_t* block = row + (u / 4) * kQ6_KBytes;
  const int c = static_cast<int>(u % 4) / 2;
  const int h = static_cast<int>(u % 2);
  const int j0 = 4 * c + h;             // sub-block g = h in the super-block; j0 + 2: g = h + 2
  const int64_t b0 = (u / 4) * 8 + j0;  // its activation block
  int ql[8], qh[8], x0[8], x1[8];
  // Q6_K blocks are 2-byte aligned at best; the 16-byte pieces around these 32 bytes end before
  // the block's scales.
  load_32_bytes_b2(block + 64 * c + 32 * h, ql);
  load_32_bytes_b2(block + 128 + 32 * c, qh);
  load_act_codes(xq, b0, x0);
  load_act_codes(xq, b0 + 2, x1);
  int s00 = 0, s01 = 0, s10 = 0, s11 = 0;  // [sub-block][half]
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int w0 =
        __vsubss4((ql[i] & 0x0F0F0F0F) | (((qh[i] >> (2 * h)) & 0x03030303) << 4), 0x20202020);
    const int w1 = __vsubss4(
        ((ql[i] >> 4) & 0x0F0F0F0F) | (((qh[i] >> (2 * h + 4)) & 0x03030303) << 4), 0x20202020);
    if (i < 4) {
      s00 = __dp4a(w0, x0[i], s00);
      s10 = __dp4a(w1, x1[i], s10);
    } else {
      s01 = __dp4a(w0, x0[i], s01);
      s11 = __dp4a(w1, x1[i], s11);
    }
  }
  // The two scales of each sub-block are adjacent bytes: one 2-byte load a sub-block.
  const auto* sc = reinterpret_cast<const uint16_t*>(block + 192);
  const int sc0 = sc[j0];
  const int sc1 = sc[j0 + 2];
  const float d = f16_bits_to_float(*reinterpret_cast<const uint16_t*>(block + 208));
  const int sum0 = static_cast<int8_t>(sc0 & 0xFF) * s00 + static_cast<int8_t>(sc0 >> 8) * s01;
  const int sum1 = static_cast<int8_t>(sc1 & 0xFF) * s10 + static_cast<int8_t>(sc1 >> 8) * s11;
  return d * (xq.ds[b0].x * static_cast<float>(sum0) + xq.ds[b0 + 2].x * static_cast<float>(sum1));
}

// Unit u (64 elements) of a K-quant row times x, from x's 8-bit codes.
template <GgmlType T, bool kAligned>
__device__ __forceinline__ float k_quant_unit_dot(const uint8_t* row, int64_t u, const Q8Act& xq) {
  if constexpr (T == GgmlType::kQ6_K) {
    return q6_k_unit_dot(row, u, xq);
  } else {
    return k4_unit_dot<T, kAligned>(row, u, xq);
  }
}

}  // namespace pensieve::cuda::detail
