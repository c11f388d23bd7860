// Device helpers the CUDA ops share: F16 and BF16 bits, warp reductions, launch sizes and element
// access to the GGUF block layouts (ggml's, as kernels/ref/quant_blocks.h describes them).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "gguf/types.h"

namespace pensieve::cuda::detail {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Blocks of 32 elements: an F16 scale, then the codes.
constexpr int kQk = 32;
constexpr int kQ8_0Bytes = 2 + kQk;      // d, qs[32]: x[j] = qs[j] * d
constexpr int kQ4_0Bytes = 2 + kQk / 2;  // d, qs[16]: low nibble x[j], high x[j + 16]; (q - 8) * d

// K-quant super-blocks of 256 elements (ref::BlockQ4_K, BlockQ5_K, BlockQ6_K).
constexpr int kQkK = 256;
constexpr int kQ4_KBytes = 144;  // d, dmin, scales[12], qs[128]
constexpr int kQ5_KBytes = 176;  // d, dmin, scales[12], qh[32], qs[128]
constexpr int kQ6_KBytes = 210;  // ql[128], qh[64], scales[16] (int8), d

__device__ __forceinline__ float f16_bits_to_float(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ uint16_t float_to_f16_bits(float x) {
  return __half_as_ushort(__float2half_rn(x));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

__device__ __forceinline__ float bf16_bits_to_float(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

__host__ __device__ constexpr bool is_k_quant(GgmlType t) {
  return t == GgmlType::kQ4_K || t == GgmlType::kQ5_K || t == GgmlType::kQ6_K;
}

template <GgmlType T>
__host__ __device__ constexpr int k_block_bytes() {
  static_assert(is_k_quant(T));
  return T == GgmlType::kQ4_K ? kQ4_KBytes : T == GgmlType::kQ5_K ? kQ5_KBytes : kQ6_KBytes;
}

// Scale (x) and min (y), 6 bits each, of sub-block j (0..7) of a Q4_K/Q5_K: ref::k4_scale_min.
__device__ __forceinline__ int2 k4_scale_min(const uint8_t* scales, int j) {
  if (j < 4) return make_int2(scales[j] & 63, scales[j + 4] & 63);
  return make_int2((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4),
                   (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
}

// d * scale * q - dmin * min rounded as the reference rounds it: the intrinsics keep the
// compiler from fusing the multiply and the subtraction.
__device__ __forceinline__ float k4_value(float d, float dmin, int2 sm, int q) {
  const float ds = __fmul_rn(d, static_cast<float>(sm.x));
  const float dm = __fmul_rn(dmin, static_cast<float>(sm.y));
  return __fsub_rn(__fmul_rn(ds, static_cast<float>(q)), dm);
}

// Element e (0..255) of a K-quant super-block.
template <GgmlType T>
__device__ __forceinline__ float k_quant_element(const uint8_t* block, int e) {
  const int l = e % 32;
  if constexpr (T == GgmlType::kQ6_K) {
    const int c = e / 128;
    const int g = e % 128 / 32;
    const int low = (block[64 * c + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 0xF;
    const int high = (block[128 + 32 * c + l] >> (2 * g)) & 3;
    const float d = f16_bits_to_float(*reinterpret_cast<const uint16_t*>(block + 208));
    const auto sc = static_cast<int8_t>(block[192 + e / 16]);
    return __fmul_rn(__fmul_rn(d, static_cast<float>(sc)),
                     static_cast<float>((low | high << 4) - 32));
  } else {
    static_assert(T == GgmlType::kQ4_K || T == GgmlType::kQ5_K);
    const auto* h = reinterpret_cast<const uint16_t*>(block);
    const int j = e / 32;
    const uint8_t* qs = block + (T == GgmlType::kQ4_K ? 16 : 48);
    int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
    if constexpr (T == GgmlType::kQ5_K) q |= ((block[16 + l] >> j) & 1) << 4;
    return k4_value(f16_bits_to_float(h[0]), f16_bits_to_float(h[1]), k4_scale_min(block + 4, j),
                    q);
  }
}

// Element i of a row of type T as F32, with the reference dequantizer's arithmetic.
template <GgmlType T>
__device__ __forceinline__ float load_element(const uint8_t* row, int64_t i) {
  if constexpr (T == GgmlType::kF32) {
    return reinterpret_cast<const float*>(row)[i];
  } else if constexpr (T == GgmlType::kF16) {
    return f16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  } else if constexpr (T == GgmlType::kBF16) {
    return bf16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  } else if constexpr (is_k_quant(T)) {
    return k_quant_element<T>(row + (i / kQkK) * k_block_bytes<T>(), static_cast<int>(i % kQkK));
  } else if constexpr (T == GgmlType::kQ8_0) {
    const uint8_t* block = row + (i / kQk) * kQ8_0Bytes;
    const float d = f16_bits_to_float(*reinterpret_cast<const uint16_t*>(block));
    return static_cast<float>(static_cast<int8_t>(block[2 + i % kQk])) * d;
  } else {
    static_assert(T == GgmlType::kQ4_0);
    const uint8_t* block = row + (i / kQk) * kQ4_0Bytes;
    const float d = f16_bits_to_float(*reinterpret_cast<const uint16_t*>(block));
    const int j = static_cast<int>(i % kQk);
    const uint8_t byte = block[2 + j % (kQk / 2)];
    const int q = j < kQk / 2 ? (byte & 0xF) : (byte >> 4);
    return static_cast<float>(q - 8) * d;
  }
}

// A weight type no kernel reads reached a launcher: callers check matrix_type_supported().
[[noreturn]] inline void unsupported_type(const char* op, GgmlType type) {
  std::fprintf(stderr, "cuda %s: weight type %u is not supported\n", op,
               static_cast<unsigned>(type));
  std::abort();
}

inline unsigned grid_for(int64_t n, int64_t per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace pensieve::cuda::detail
