// Scalar reference (de)quantization for every GGUF tensor type: the oracle for fast kernels.
#pragma once

#include <cstdint>

#include "gguf/types.h"

namespace pensieve::ref {

bool can_dequantize(GgmlType type);

// Converts n elements (a multiple of the type's block size) of `type` at src to F32.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

bool can_quantize(GgmlType type);

// Converts n F32 elements (a multiple of the block size) at src to `type` at dst.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace pensieve::ref
