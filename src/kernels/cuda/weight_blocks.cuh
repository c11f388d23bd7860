// One 32-element block of a quantized weight row (a Q8_0 or Q4_0 block, a K-quant sub-block),
// fetched into registers in one step and decoded to F32 or F16 in another, so a kernel can issue
// the loads of its next tile before it works on the current one. The values are the reference
// dequantizer's, with its roundings (no fused multiply-add).
#pragma once

#include "kernels/cuda/common.cuh"

namespace pensieve::cuda::detail {

// 4 bytes of a block that start 2-byte aligned.
__device__ __forceinline__ int load_i32_b2(const uint8_t* p) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  return static_cast<int>(static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[1]) << 16));
}

// 16 bytes as 4 ints, 16-byte aligned (kAligned) or 2-byte aligned.
template <bool kAligned>
__device__ __forceinline__ void load_16_bytes(const uint8_t* p, int* v) {
  if constexpr (kAligned) {
    const int4 a = *reinterpret_cast<const int4*>(p);
    v[0] = a.x;
    v[1] = a.y;
    v[2] = a.z;
    v[3] = a.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = load_i32_b2(p + 4 * i);
  }
}

// 32 bytes as 8 ints, 16-byte aligned (kAligned) or 2-byte aligned.
template <bool kAligned>
__device__ __forceinline__ void load_32_bytes(const uint8_t* p, int* v) {
  load_16_bytes<kAligned>(p, v);
  load_16_bytes<kAligned>(p + 16, v + 4);
}

// 32 bytes that start 2-byte aligned, as 8 ints, from the three 16-byte aligned pieces that hold
// them (3 loads instead of 16): the caller makes sure those pieces are readable (inside a Q6_K
// super-block, the codes' pieces never reach past its scales).
__device__ __forceinline__ void load_32_bytes_b2(const uint8_t* p, int* v) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  const auto* pieces = reinterpret_cast<const int4*>(at & ~uintptr_t{15});
  const int4 a = pieces[0];
  const int4 b = pieces[1];
  const int4 c = pieces[2];
  const int w[12] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w, c.x, c.y, c.z, c.w};
  const int k = static_cast<int>(at >> 2) & 3;             // first word of the 32 bytes
  const unsigned sel = (at & 2) != 0 ? 0x5432u : 0x3210u;  // and half a word further on
  int u[9];  // the words from word k on, selected, not indexed, to stay in registers
#pragma unroll
  for (int i = 0; i < 9; ++i) {
    u[i] = k == 0 ? w[i] : k == 1 ? w[i + 1] : k == 2 ? w[i + 2] : w[i + 3];
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    v[i] = static_cast<int>(
        __byte_perm(static_cast<unsigned>(u[i]), static_cast<unsigned>(u[i + 1]), sel));
  }
}

// WeightBlock<T, kAligned>: fetch(row, n_blocks, b) loads block b of a row of n_blocks blocks of
// 32; decode(y) writes its 32 values. kAligned: the row starts 16-byte aligned (then so do the
// codes of Q8_0 and Q4_0 in the device layout and the super-blocks of Q4_K and Q5_K).
template <GgmlType T, bool kAligned>
struct WeightBlock;

template <bool kAligned>
struct WeightBlock<GgmlType::kQ8_0, kAligned> {
  int codes[8];
  float d;
  __device__ __forceinline__ void fetch(const uint8_t* row, int64_t n_blocks, int64_t b) {
    load_32_bytes<kAligned>(block_codes<GgmlType::kQ8_0>(row, b), codes);
    d = block_scale<GgmlType::kQ8_0>(row, n_blocks, b);
  }
  __device__ __forceinline__ void decode(float* y) const {
    const auto* q = reinterpret_cast<const int8_t*>(codes);
#pragma unroll
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(q[j]) * d;
  }
};

template <bool kAligned>
struct WeightBlock<GgmlType::kQ4_0, kAligned> {
  int codes[4];  // element j in the low nibble of byte j, j + 16 in its high nibble
  float d;
  __device__ __forceinline__ void fetch(const uint8_t* row, int64_t n_blocks, int64_t b) {
    load_16_bytes<kAligned>(block_codes<GgmlType::kQ4_0>(row, b), codes);
    d = block_scale<GgmlType::kQ4_0>(row, n_blocks, b);
  }
  __device__ __forceinline__ void decode(float* y) const {
    const auto* nibbles = reinterpret_cast<const uint8_t*>(codes);
#pragma unroll
    for (int j = 0; j < kQk / 2; ++j) {
      y[j] = static_cast<float>((nibbles[j] & 0xF) - 8) * d;
      y[j + kQk / 2] = static_cast<float>((nibbles[j] >> 4) - 8) * d;
    }
  }
};

// Q4_K and Q5_K: sub-block j of a super-block takes the low (j even) or high nibbles of 32 qs
// bytes, Q5_K bit j of 32 qh bytes as the fifth; d * scale * q - dmin * min.
template <GgmlType T, bool kAligned>
struct WeightBlockK4 {
  int qs[8];
  int qh[8];
  float d;
  float dmin;
  int2 scale_min;
  int j;
  __device__ __forceinline__ void fetch(const uint8_t* row, int64_t /*n_blocks*/, int64_t b) {
    const uint8_t* block = row + (b / 8) * k_block_bytes<T>();
    j = static_cast<int>(b % 8);
    load_32_bytes<kAligned>(block + (T == GgmlType::kQ4_K ? 16 : 48) + 32 * (j / 2), qs);
    if constexpr (T == GgmlType::kQ5_K) load_32_bytes<kAligned>(block + 16, qh);
    const auto* h = reinterpret_cast<const uint16_t*>(block);
    d = f16_bits_to_float(h[0]);
    dmin = f16_bits_to_float(h[1]);
    scale_min = k4_scale_min(block + 4, j);
  }
  __device__ __forceinline__ void decode(float* y) const {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      int v = (qs[i] >> (4 * (j % 2))) & 0x0F0F0F0F;
      if constexpr (T == GgmlType::kQ5_K) v |= ((qh[i] >> j) & 0x01010101) << 4;
#pragma unroll
      for (int k = 0; k < 4; ++k)
        y[4 * i + k] = k4_value(d, dmin, scale_min, (v >> (8 * k)) & 0xFF);
    }
  }
};

template <bool kAligned>
struct WeightBlock<GgmlType::kQ4_K, kAligned> : WeightBlockK4<GgmlType::kQ4_K, kAligned> {};
template <bool kAligned>
struct WeightBlock<GgmlType::kQ5_K, kAligned> : WeightBlockK4<GgmlType::kQ5_K, kAligned> {};

// Q6_K: sub-block j = 4c + g takes nibble g >> 1 of 32 ql bytes and bit pair g of 32 qh bytes of
// 128-element half c; each 16 elements have an int8 scale. Its 210-byte super-blocks are 2-byte
// aligned at best, so kAligned changes nothing.
template <bool kAligned>
struct WeightBlock<GgmlType::kQ6_K, kAligned> {
  int ql[8];
  int qh[8];
  float d0;  // elements 0..15
  float d1;  // elements 16..31
  int g;
  __device__ __forceinline__ void fetch(const uint8_t* row, int64_t /*n_blocks*/, int64_t b) {
    const uint8_t* block = row + (b / 8) * kQ6_KBytes;
    const int j = static_cast<int>(b % 8);
    const int c = j / 4;
    g = j % 4;
    load_32_bytes<false>(block + 64 * c + 32 * (g & 1), ql);
    load_32_bytes<false>(block + 128 + 32 * c, qh);
    const float d = f16_bits_to_float(*reinterpret_cast<const uint16_t*>(block + 208));
    const auto* sc = reinterpret_cast<const int8_t*>(block + 192 + 2 * j);
    d0 = __fmul_rn(d, static_cast<float>(sc[0]));
    d1 = __fmul_rn(d, static_cast<float>(sc[1]));
  }
  __device__ __forceinline__ void decode(float* y) const {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int v =
          ((ql[i] >> (4 * (g >> 1))) & 0x0F0F0F0F) | (((qh[i] >> (2 * g)) & 0x03030303) << 4);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        y[4 * i + k] = __fmul_rn(i < 4 ? d0 : d1, static_cast<float>(((v >> (8 * k)) & 0xFF) - 32));
      }
    }
  }
};

// The 32 values of a decoded block as F16 bits, 16-byte aligned for wide stores.
template <class Block>
__device__ __forceinline__ void decode_f16(const Block& block, uint16_t* h) {
  float y[kQk];
  block.decode(y);
#pragma unroll
  for (int j = 0; j < kQk; ++j) h[j] = float_to_f16_bits(y[j]);
}

}  // namespace pensieve::cuda::detail
