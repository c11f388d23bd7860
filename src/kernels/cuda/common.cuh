// Device helpers the CUDA ops share: F16 bits, warp reductions, launch sizes and element access
// to the GGUF block layouts (ggml's, as kernels/ref/quant_blocks.h describes them).
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

// Element i of a row of type T as F32, with the reference dequantizer's arithmetic.
template <GgmlType T>
__device__ __forceinline__ float load_element(const uint8_t* row, int64_t i) {
  if constexpr (T == GgmlType::kF32) {
    return reinterpret_cast<const float*>(row)[i];
  } else if constexpr (T == GgmlType::kF16) {
    return f16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
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
