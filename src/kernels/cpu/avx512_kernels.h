// Entry points of the AVX-512 (F/BW/VL/VNNI) kernel units; call only when isa_supported(kAvx512).
#pragma once

#include "kernels/cpu/gemm_kernels.h"

namespace pensieve::cpu::avx512 {

void quantize_block32_split(const float* x, int64_t n_cols, int offset, uint8_t* dst);
void quantize_block_k(const float* x, int64_t n_cols, int offset, uint8_t* dst);

// Each fills its types' entries of the table.
void add_float_kernels(IsaKernels& k);
void add_legacy_kernels(IsaKernels& k);
void add_k_kernels(IsaKernels& k);
// Replaces add_legacy_kernels' Q4_0 entry (avx512_row_lanes.cpp).
void add_row_lane_kernels(IsaKernels& k);

}  // namespace pensieve::cpu::avx512
