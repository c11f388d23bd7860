// Scalar reference (de)quantization for GGUF tensor types in ggml's exact block layouts: the
// oracle every fast kernel is tested against, and the quantizer for F32 -> any supported type.
#pragma once

#include <cstdint>

#include "gguf/types.h"

namespace pensieve::ref {

// Types with a reference dequantizer / quantizer: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K (the activation format of K-quant dot products).
bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);

// Converts n elements of `type` at src to F32.                              dst: [n]
// n must be a multiple of the type's block size and the type supported (can_dequantize); both
// are checked with PV_CHECK. src needs no alignment (blocks are copied out byte-wise).
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Quantizes n F32 values into `type` at dst (n / block_elements blocks).    src: [n]
// Deterministic: the same input gives the same bytes. dst needs no alignment. Values must lie
// within the F16 range scaled by the type's largest code (block scales are stored as F16).
//
// Relative RMS error |deq(q(x)) - x| / |x| on N(0, 1) data, measured by the tests
// (quants_roundtrip_test.cpp holds the asserted per-type bounds, also for uniform data and
// outliers):
//   F16 2.1e-4  BF16 1.7e-3  Q8_0 5.4e-3  Q8_K 7.0e-3  Q6_K 0.016  Q5_K 0.034  Q5_1 0.038
//   Q5_0 0.043  Q4_K 0.070  Q4_1 0.078  Q4_0 0.086  Q3_K 0.144  Q2_K 0.263
// Q4_0 .. Q8_0 follow ggml's reference arithmetic to produce llama.cpp's bytes (checked for Q8_0
// on a real model). The K-quant quantizers search scales per sub-block (about 7-10 M values/s on
// one core, against 200+ for the legacy types) and produce their own bytes.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace pensieve::ref
