// Scalar reference ops on F32 activations: simple, obviously correct, the oracle for fast paths.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/kernels.h"

namespace pensieve::ref {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]                         x, out: [n]
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);

// out[r] = dot(w.row(r), x) for every row, dequantizing rows one at a time.
// x: [w.n_cols], out: [w.n_rows]; scratch: [w.n_cols]
void matvec(const Matrix& w, const float* x, float* out, float* scratch);

// One row of a matrix as F32 (embedding lookup).                           out: [w.n_cols]
void matrix_row(const Matrix& w, int64_t r, float* out);

// Rotary embedding of one head in place at position pos, over the first n_rot dims.
// Adjacent pairs (x[2i], x[2i+1]) for llama-style weights; half-split pairs (x[i], x[i+n/2])
// for neox-style (qwen2, phi3). freq_i = base^(-2i/n_rot) * freq_scale.
enum class RopeStyle { kAdjacentPairs, kHalfSplit };
void rope(float* head, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, RopeStyle style);

// In-place softmax over x[0..n).
void softmax(float* x, int64_t n);

// SwiGLU: out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, int64_t n, float* out);

}  // namespace pensieve::ref
