// Device helpers the CUDA ops share: F16 and BF16 bits, warp reductions, launch sizes and element
// access to the block layouts: ggml's (kernels/ref/quant_blocks.h) for the K-quants, and for Q8_0
// and Q4_0 the device layout of ops.h (a row's codes first, then its scales).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

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

// Q8_0 and Q4_0 rows on the device (ops.h, to_device_layout): the codes of blocks 0..n-1, then
// their F16 scales, in the same row_bytes.
template <GgmlType T>
__host__ __device__ constexpr int code_bytes() {
  static_assert(T == GgmlType::kQ8_0 || T == GgmlType::kQ4_0);
  return T == GgmlType::kQ8_0 ? kQk : kQk / 2;
}

template <GgmlType T>
__device__ __forceinline__ const uint8_t* block_codes(const uint8_t* row, int64_t b) {
  return row + b * code_bytes<T>();
}

template <GgmlType T>
__device__ __forceinline__ float block_scale(const uint8_t* row, int64_t n_blocks, int64_t b) {
  return f16_bits_to_float(reinterpret_cast<const uint16_t*>(row + n_blocks * code_bytes<T>())[b]);
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

// Activation block quantization (ops.h, Q8Act): lane l holds element l of a block of 32; writes
// the block's codes and (d, d * sum of codes). The whole warp takes part.
__device__ __forceinline__ void quantize_block_q8(float v, int lane, int8_t* qs, float2* ds) {
  const float amax = warp_max(fabsf(v));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = static_cast<int>(roundf(v * id));
  const int sum = __reduce_add_sync(kFullMask, q);
  qs[lane] = static_cast<int8_t>(q);
  if (lane == 0) *ds = make_float2(d, d * static_cast<float>(sum));
}

// Asks for the L2 cache lines of the first bytes of [p, p + n_bytes) (at most kPrefetchBytes),
// the lanes of a warp sharing the lines: weights do not depend on the kernel before, so a kernel
// asks for them before begin_dependent() and finds them in L2 after. Only a row's start: the
// blocks that run while the kernel before finishes are a few thousand rows, and whole rows of a
// large model would be more than L2 holds.
inline constexpr size_t kPrefetchBytes = 2048;
__device__ __forceinline__ void prefetch_l2(const void* p, size_t n_bytes, int lane) {
  constexpr uintptr_t kLine = 128;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1);
  const uintptr_t end =
      reinterpret_cast<uintptr_t>(p) + (n_bytes < kPrefetchBytes ? n_bytes : kPrefetchBytes);
  for (uintptr_t a = first + lane * kLine; a < end; a += kWarp * kLine) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(a));
  }
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

// The same from the 12 scale bytes held as 3 words (byte i in word i / 4, lowest byte first).
__device__ __forceinline__ int2 k4_scale_min_words(const int* words, int j) {
  auto byte = [&](int i) {
    const int w = i < 4 ? words[0] : i < 8 ? words[1] : words[2];  // selects keep them registers
    return (static_cast<unsigned>(w) >> (8 * (i % 4))) & 0xFFu;
  };
  if (j < 4) return make_int2(static_cast<int>(byte(j) & 63), static_cast<int>(byte(j + 4) & 63));
  return make_int2(static_cast<int>((byte(j + 4) & 0xF) | ((byte(j - 4) >> 6) << 4)),
                   static_cast<int>((byte(j + 4) >> 4) | ((byte(j) >> 6) << 4)));
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

// Element i of a row of n_cols of type T as F32, with the reference dequantizer's arithmetic.
template <GgmlType T>
__device__ __forceinline__ float load_element(const uint8_t* row, int64_t n_cols, int64_t i) {
  if constexpr (T == GgmlType::kF32) {
    return reinterpret_cast<const float*>(row)[i];
  } else if constexpr (T == GgmlType::kF16) {
    return f16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  } else if constexpr (T == GgmlType::kBF16) {
    return bf16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  } else if constexpr (is_k_quant(T)) {
    return k_quant_element<T>(row + (i / kQkK) * k_block_bytes<T>(), static_cast<int>(i % kQkK));
  } else {
    static_assert(T == GgmlType::kQ8_0 || T == GgmlType::kQ4_0);
    const int64_t b = i / kQk;
    const float d = block_scale<T>(row, n_cols / kQk, b);
    const uint8_t* codes = block_codes<T>(row, b);
    const int j = static_cast<int>(i % kQk);
    if constexpr (T == GgmlType::kQ8_0) {
      return static_cast<float>(static_cast<int8_t>(codes[j])) * d;
    } else {
      const uint8_t byte = codes[j % (kQk / 2)];
      const int q = j < kQk / 2 ? (byte & 0xF) : (byte >> 4);
      return static_cast<float>(q - 8) * d;
    }
  }
}

// A weight type no kernel reads reached a launcher: callers check matrix_type_supported().
[[noreturn]] inline void unsupported_type(const char* op, GgmlType type) {
  std::fprintf(stderr, "cuda %s: weight type %u is not supported\n", op,
               static_cast<unsigned>(type));
  std::abort();
}

// Programmatic dependent launch (sm_90 on): a kernel started by launch_dependent() may be
// scheduled while the kernel before it on the stream finishes. It calls begin_dependent() before
// touching memory: that waits until the previous kernel is done and its writes are visible, and
// lets the next kernel be scheduled in turn. Elsewhere both are no-ops.
__device__ __forceinline__ void begin_dependent() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

template <class... Params, class... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args... args) {
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attribute;
  config.numAttrs = 1;
  cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

inline unsigned grid_for(int64_t n, int64_t per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace pensieve::cuda::detail
