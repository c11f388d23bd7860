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

// Rotary embedding. Pair i of a head's first n_rot dims turns by pos * freq_i with
//   freq_i = base^(-2i/n_rot) * freq_scale / freq_factors[i]
// and both cos and sin are multiplied by attn_factor. Adjacent pairs (x[2i], x[2i+1]) for
// llama-style weights; half-split pairs (x[i], x[i+n_rot/2]) for neox-style (qwen2, phi3).
// freq_factors come from the model: llama3's rope_freqs, phi3 LongRoPE's short/long factors.
enum class RopeStyle { kAdjacentPairs, kHalfSplit };
struct RopeParams {
  int64_t n_rot = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  RopeStyle style = RopeStyle::kAdjacentPairs;
  const float* freq_factors = nullptr;  // [n_rot / 2], or null for all 1
  float attn_factor = 1.0f;
};

// cos and sin of every pair's angle at pos, attn_factor included.   cos, sin: [n_rot / 2]
void rope_angles(const RopeParams& p, int64_t pos, float* cos, float* sin);

// Rotates one head in place by precomputed angles (rope_angles).            head: [>= n_rot]
void rope_rotate(const RopeParams& p, const float* cos, const float* sin, float* head);

// Both steps for one head at pos; scratch: [n_rot] (cos and sin halves).
void rope(const RopeParams& p, int64_t pos, float* head, float* scratch);

// In-place softmax over x[0..n).
void softmax(float* x, int64_t n);

// SwiGLU: out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, int64_t n, float* out);

}  // namespace pensieve::ref
