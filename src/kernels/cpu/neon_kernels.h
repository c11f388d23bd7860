// Entry points of the ARM64 NEON kernel units; call only when isa_supported(kNeon).
#pragma once

#include "kernels/cpu/gemm_kernels.h"

namespace pensieve::cpu::neon {

void quantize_block32_split(const float* x, int64_t n_cols, int offset, uint8_t* dst);
void quantize_block_k(const float* x, int64_t n_cols, int offset, uint8_t* dst);

// Each fills its types' entries of the table.
void add_float_kernels(IsaKernels& k);
void add_legacy_kernels(IsaKernels& k);
void add_k_kernels(IsaKernels& k);

}  // namespace pensieve::cpu::neon
