// The contract between the matmul driver and the per-ISA kernels. Everything here is plain data
// and function pointers, so ISA translation units share no inline code with baseline ones.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace pensieve::cpu {

// How one token's activations are laid out for a kernel (see act_layout.h).
enum class ActFormat : uint8_t {
  kF32,             // the caller's floats, used in place
  kQ8Block32Split,  // int8 per element, scale and sums per 32, four blocks' halves apart
  kQ8BlockK,        // int8 per element, scale per 256, sums per 16 (Q8_K)
};

struct GemmArgs {
  const uint8_t* w = nullptr;  // row 0 of the weights
  size_t w_row_bytes = 0;
  int64_t n_cols = 0;
  const uint8_t* act = nullptr;  // token t starts at act + t * act_stride
  size_t act_stride = 0;
  float* y = nullptr;  // [n_tokens, ldy]
  int64_t ldy = 0;
};

// y[t * ldy + r] = dot(weight row r, token t) for r in [r0, r1), t in [t0, t1).
// Every (r, t) is summed in the same order whatever the range, so splitting the work among
// threads or batching tokens never changes a result bit.
using GemmFn = void (*)(const GemmArgs& args, int64_t r0, int64_t r1, int64_t t0, int64_t t1);

// Writes one token's activations x [n_cols] into a quantized format at dst. `offset` is the
// weights' zero point as the kernel stores them (x = d * (q - offset)), folded into each block's
// integer bias (kQ8Block32Split).
using QuantizeFn = void (*)(const float* x, int64_t n_cols, int offset, uint8_t* dst);

struct TypeKernel {
  GemmFn gemm = nullptr;
  ActFormat act = ActFormat::kF32;
  int act_offset = 0;
};

// GgmlType ids run 0..30; the table is indexed by id.
inline constexpr int kMaxTypeId = 31;

struct IsaKernels {
  TypeKernel types[kMaxTypeId];
  QuantizeFn quantize_block32_split = nullptr;
  QuantizeFn quantize_block_k = nullptr;
};

// Per-ISA tables, each defined in that ISA's translation units; only call the ones
// isa_supported() allows. Entries a level does not implement are null (the driver falls back).
const IsaKernels& scalar_kernels();
const IsaKernels* avx2_kernels();    // null where the target is not x86-64
const IsaKernels* avx512_kernels();  // null where the target is not x86-64
const IsaKernels* neon_kernels();    // null where the target is not ARM64

}  // namespace pensieve::cpu
