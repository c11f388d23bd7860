// The weight side of gemm_q8(): 64 elements of two rows (a "unit": two blocks or K-quant
// sub-blocks of 32) loaded straight into the A fragments of int8 mma, with each block's scale,
// and which activation bytes meet them. Lane q = lane % 4 of a quad owns 8 elements [8q, 8q + 8)
// of a block (m16n8k32: its a0/a1 registers take the first 4 as k = 4q.., a2/a3 the last 4 as
// k = 16 + 4q..), and it loads the same 8 activation bytes for its b registers: the same
// permutation of k on both sides leaves the dot product as it is. Q6_K's scales cover 16
// elements, so it takes two m16n8k16 products per block, lane q owning [4q, 4q + 4) of each half.
#pragma once

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/weight_blocks.cuh"

namespace pensieve::cuda::detail::q8 {

// 8 bytes as 2 ints from a 2-byte aligned address.
__device__ __forceinline__ int2 load_8_bytes_b2(const uint8_t* p) {
  return make_int2(load_i32_b2(p), load_i32_b2(p + 4));
}

// Units of Q8_0, Q4_0, Q4_K and Q5_K: per block s (0, 1) and row r (0: the quad's row, 1: that
// plus 8), codes lo/hi as a k32 A fragment takes them and the value w = scale * code - min.
struct Unit32 {
  int lo[2][2];
  int hi[2][2];
  float scale[2][2];
  float min[2][2];
};

// Unit u of a row of type T for lane q; rows 16-byte aligned (gemm_q8_supported).
template <GgmlType T>
__device__ __forceinline__ void load_unit(const uint8_t* row, int64_t n_blocks, int64_t u, int q,
                                          int r, Unit32& w) {
  if constexpr (T == GgmlType::kQ8_0 || T == GgmlType::kQ4_0) {
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int64_t b = 2 * u + s;
      const float d = block_scale<T>(row, n_blocks, b);
      if constexpr (T == GgmlType::kQ8_0) {
        const int2 v = *reinterpret_cast<const int2*>(block_codes<T>(row, b) + 8 * q);
        w.lo[s][r] = v.x;
        w.hi[s][r] = v.y;
        w.min[s][r] = 0.0f;
      } else {
        // Elements 0..15 are the low nibbles of the 16 bytes, 16..31 the high ones.
        const int2 v = *reinterpret_cast<const int2*>(block_codes<T>(row, b) + 8 * (q % 2));
        w.lo[s][r] = (v.x >> (4 * (q / 2))) & 0x0F0F0F0F;
        w.hi[s][r] = (v.y >> (4 * (q / 2))) & 0x0F0F0F0F;
        w.min[s][r] = 8.0f * d;  // (code - 8) * d
      }
      w.scale[s][r] = d;
    }
  } else {
    static_assert(T == GgmlType::kQ4_K || T == GgmlType::kQ5_K);
    // Sub-blocks 2c (low nibbles) and 2c + 1 (high) share 32 qs bytes. d, dmin and the 12
    // scale bytes are one 16-byte load (blocks of 144 and 176 bytes keep them aligned).
    const uint8_t* block = row + (u / 4) * k_block_bytes<T>();
    const int c = static_cast<int>(u % 4);
    const int2 v =
        *reinterpret_cast<const int2*>(block + (T == GgmlType::kQ4_K ? 16 : 48) + 32 * c + 8 * q);
    int2 h = make_int2(0, 0);
    if constexpr (T == GgmlType::kQ5_K) h = *reinterpret_cast<const int2*>(block + 16 + 8 * q);
    const int4 head = *reinterpret_cast<const int4*>(block);
    const float d = f16_bits_to_float(static_cast<uint16_t>(head.x & 0xFFFF));
    const float dmin =
        f16_bits_to_float(static_cast<uint16_t>(static_cast<unsigned>(head.x) >> 16));
    const int words[3] = {head.y, head.z, head.w};
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int j = 2 * c + s;
      w.lo[s][r] = ((v.x >> (4 * s)) & 0x0F0F0F0F) | (((h.x >> j) & 0x01010101) << 4);
      w.hi[s][r] = ((v.y >> (4 * s)) & 0x0F0F0F0F) | (((h.y >> j) & 0x01010101) << 4);
      const int2 sm = k4_scale_min_words(words, j);
      w.scale[s][r] = d * static_cast<float>(sm.x);
      w.min[s][r] = dmin * static_cast<float>(sm.y);
    }
  }
}

// The activation block that meets block s of unit u.
__device__ __forceinline__ int64_t act_block(int64_t u, int s) { return 2 * u + s; }

// Q6_K units follow q6_k_unit_dot: sub-blocks j0 = 4c + h and j0 + 2 of super-block u / 4
// share their ql bytes (low and high nibbles) and qh bytes; per sub-block s, half e and row r,
// one k16 A register of signed codes (code - 32) and its scale.
struct Unit16 {
  int a[2][2][2];  // [s][e][r]
  float scale[2][2][2];
};

__device__ __forceinline__ void load_unit_q6_k(const uint8_t* row, int64_t u, int q, int r,
                                               Unit16& w) {
  const uint8_t* block = row + (u / 4) * kQ6_KBytes;
  const int c = static_cast<int>(u % 4) / 2;
  const int h = static_cast<int>(u % 2);
  const float d = f16_bits_to_float(*reinterpret_cast<const uint16_t*>(block + 208));
  // The scales of sub-blocks j = 4c + h + 2s, both halves e: bytes 2j and 2j + 1, one 2-byte load
  // a sub-block.
  int8_t sc[2][2];
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    const uint16_t pair = *reinterpret_cast<const uint16_t*>(block + 192 + 2 * (4 * c + h + 2 * s));
    sc[s][0] = static_cast<int8_t>(pair & 0xFF);
    sc[s][1] = static_cast<int8_t>(pair >> 8);
  }
  // A block of 210 bytes starts 4-byte aligned or 2 bytes past: aligned, a code word is one
  // load.
  const bool words = (reinterpret_cast<uintptr_t>(block) & 3) == 0;
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const uint8_t* ql_at = block + 64 * c + 32 * h + 16 * e + 4 * q;
    const uint8_t* qh_at = block + 128 + 32 * c + 16 * e + 4 * q;
    const int ql = words ? *reinterpret_cast<const int*>(ql_at) : load_i32_b2(ql_at);
    const int qh = words ? *reinterpret_cast<const int*>(qh_at) : load_i32_b2(qh_at);
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int g = h + 2 * s;  // quarter of the 128-element half
      const int code = ((ql >> (4 * s)) & 0x0F0F0F0F) | (((qh >> (2 * g)) & 0x03030303) << 4);
      w.a[s][e][r] = __vsubss4(code, 0x20202020);
      w.scale[s][e][r] = d * static_cast<float>(sc[s][e]);
    }
  }
}

// The activation block that meets sub-block s of Q6_K unit u: j0 + 2 s of super-block u / 4.
__device__ __forceinline__ int64_t act_block_q6_k(int64_t u, int s) {
  return (u / 4) * 8 + 4 * ((u % 4) / 2) + u % 2 + 2 * s;
}

// c = a b for one m16n8k32 (k16) tile of 8-bit codes, 32-bit sums.
__device__ __forceinline__ void mma_k32(int* c, int a0, int a1, int a2, int a3, int b0, int b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%10, %10, %10, %10};\n"
      : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(0));
}

__device__ __forceinline__ void mma_k16(int* c, int a0, int a1, int b0) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
      "{%7, %7, %7, %7};\n"
      : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
      : "r"(a0), "r"(a1), "r"(b0), "r"(0));
}

}  // namespace pensieve::cuda::detail::q8
