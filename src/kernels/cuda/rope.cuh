// RoPE's rotation of one pair of dimensions, shared by rope_kv.cu (every token of a pass) and the
// attention kernel (one new token, rotated where it is attended): both must write the same cache
// bits. The angle's sine and cosine in double, scaled by the attention factor, then the products
// in float, as the reference computes them.
#pragma once

#include <cstdint>

namespace pensieve::cuda::detail {

struct RopeAngle {
  float cos;
  float sin;
};

__device__ __forceinline__ RopeAngle rope_angle(int64_t pos, double freq, float attn_factor) {
  double sin_d, cos_d;
  sincos(static_cast<double>(pos) * freq, &sin_d, &cos_d);
  return {static_cast<float>(cos_d * attn_factor), static_cast<float>(sin_d * attn_factor)};
}

// The pair (x0, x1) rotated: its first dimension, and its second.
__device__ __forceinline__ float rope_first(float x0, float x1, RopeAngle a) {
  return x0 * a.cos - x1 * a.sin;
}
__device__ __forceinline__ float rope_second(float x0, float x1, RopeAngle a) {
  return x0 * a.sin + x1 * a.cos;
}

}  // namespace pensieve::cuda::detail
