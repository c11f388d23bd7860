// Shared pieces of the reference quantizers: per-type function tables, block loops that copy
// every block through a local (so rows need no alignment), rounding and sub-block fits.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gguf/types.h"

namespace pensieve::ref::detail {

using DequantizeFn = void (*)(const void* src, float* dst, int64_t n_blocks);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n_blocks);

struct QuantFns {
  DequantizeFn dequantize = nullptr;
  QuantizeFn quantize = nullptr;
};

// Each returns null functions for types outside its family.
QuantFns legacy_quant_fns(GgmlType type);  // F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
QuantFns k_quant_fns(GgmlType type);       // Q2_K .. Q6_K, Q8_K

template <class Block, int kBlockElements, void (*kDequantize)(const Block&, float*)>
void dequantize_blocks(const void* src, float* dst, int64_t n_blocks) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n_blocks; ++i) {
    Block block;
    std::memcpy(&block, bytes + static_cast<size_t>(i) * sizeof(Block), sizeof(Block));
    kDequantize(block, dst + i * kBlockElements);
  }
}

template <class Block, int kBlockElements, void (*kQuantize)(const float*, Block*)>
void quantize_blocks(const float* src, void* dst, int64_t n_blocks) {
  auto* bytes = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n_blocks; ++i) {
    Block block{};
    kQuantize(src + i * kBlockElements, &block);
    std::memcpy(bytes + static_cast<size_t>(i) * sizeof(Block), &block, sizeof(Block));
  }
}

// Nearest integer to v (ties to even) clamped to [lo, hi]; NaN maps to lo. |lo|, |hi| < 2^22.
inline int round_clamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  // Adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits (a libm-free lrintf).
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// The value of largest magnitude, keeping its sign (the first one on ties); 0 for n == 0.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

// Least-squares fit x[i] ~= scale * l[i] with integer l[i] in [lmin, lmax] (lmin < 0 < lmax).
// Tries a spread of scales that put the largest |x| near either end of the grid, keeps the one
// with the smallest squared error and refines it. Also keeps what the super-block stage needs to
// score another scale for the same levels without revisiting x (the error is quadratic in it).
struct SymmetricFit {
  float scale = 0.0f;  // signed; 0 for x == 0
  double grad = 0.0;   // sum of (scale * l - x) * l
  double sum_ll = 0.0;
  int l_lo = 0;  // smallest and largest level used
  int l_hi = 0;

  // Growth of the squared error when the scale becomes s, levels kept.
  double extra_error(double s) const {
    const double ds = s - scale;
    return 2 * ds * grad + ds * ds * sum_ll;
  }
};
SymmetricFit fit_symmetric(const float* x, int n, int lmin, int lmax);

// Least-squares fit x[i] ~= scale * l[i] - min with integer l[i] in [0, lmax], scale >= 0 and
// min >= 0 (the K-quant formats store mins as non-negative codes), with the same bookkeeping.
struct AffineFit {
  float scale = 0.0f;
  float min = 0.0f;
  int n = 0;
  double sum_l = 0.0;
  double sum_ll = 0.0;
  double grad_l = 0.0;  // sum of e * l for the residuals e = scale * l - min - x
  double grad_1 = 0.0;  // sum of e
  int l_hi = 0;         // largest level used

  // Growth of the squared error for scale s and min m with every level shifted up by k (k = 0:
  // the fitted levels; a shift with min + k * scale gives the same values, so a fit that leaves
  // the lowest levels unused has these twins, which may suit the min's grid better).
  double extra_error(double s, double m, int k) const {
    const double sl = sum_l + k * n;
    const double sll = sum_ll + 2.0 * k * sum_l + static_cast<double>(k) * k * n;
    const double ds = s - scale;
    const double dm = m - (static_cast<double>(min) + k * static_cast<double>(scale));
    return 2 * ds * (grad_l + k * grad_1) - 2 * dm * grad_1 + ds * ds * sll - 2 * ds * dm * sl +
           n * dm * dm;
  }
};
AffineFit fit_affine(const float* x, int n, int lmax);

}  // namespace pensieve::ref::detail
