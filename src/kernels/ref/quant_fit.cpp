// Sub-block fits for the K-quant quantizers: pick integer levels and the least-squares scale
// (and min) for them, trying a spread of starting scales and keeping the lowest squared error.
// Each candidate costs one pass over the sub-block; its error comes from the sums in closed form.
#include <algorithm>
#include <cmath>

#include "kernels/ref/quants_internal.h"

namespace pensieve::ref::detail {
namespace {

constexpr int kSteps = 5;      // fractional candidates on each side of the nominal scale
constexpr float kStep = 0.2f;  // in units of one grid level at the largest |x|
constexpr int kRefineIters = 3;
// Errors closer than this (relative to |x|^2) count as equal, so that exact fits, whose
// closed-form errors are rounding noise, tie and the earlier candidate wins.
constexpr double kTie = 1e-10;

struct Sums {
  double l = 0, ll = 0, x = 0, lx = 0;
  int l_lo = 0, l_hi = 0;
};

// Sums over levels round(iscale * (x - lo)) clamped to [lmin, lmax].
Sums level_sums(const float* x, int n, float iscale, float lo, int lmin, int lmax) {
  Sums s;
  s.l_lo = lmax;
  s.l_hi = lmin;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp(iscale * (x[i] - lo), lmin, lmax);
    s.l += l;
    s.ll += static_cast<double>(l) * l;
    s.x += x[i];
    s.lx += static_cast<double>(l) * x[i];
    s.l_lo = std::min(s.l_lo, l);
    s.l_hi = std::max(s.l_hi, l);
  }
  return s;
}

struct SymmetricSolve {
  double scale = 0, err = 0;
  Sums sums;
};

SymmetricSolve solve_symmetric(const float* x, int n, float iscale, int lmin, int lmax,
                               double sum_xx) {
  SymmetricSolve r;
  r.sums = level_sums(x, n, iscale, 0.0f, lmin, lmax);
  if (r.sums.ll > 0) r.scale = r.sums.lx / r.sums.ll;
  r.err = std::max(0.0, sum_xx - r.scale * r.sums.lx);  // |x|^2 - <l,x>^2 / <l,l>
  return r;
}

struct AffineSolve {
  double scale = 0, offset = 0, err = 0;  // x ~= scale * l + offset, offset <= 0
  Sums sums;
};

AffineSolve solve_affine(const float* x, int n, float iscale, float lo, int lmax, double sum_xx) {
  AffineSolve r;
  r.sums = level_sums(x, n, iscale, lo, 0, lmax);
  const Sums& s = r.sums;
  const double det = n * s.ll - s.l * s.l;
  if (det > 0) {
    r.scale = (n * s.lx - s.l * s.x) / det;
    r.offset = (s.ll * s.x - s.l * s.lx) / det;
  }
  if (det <= 0 || r.offset > 0 || r.scale < 0) {
    // All levels equal, or the free fit leaves the allowed region: the best fit on its edge,
    // offset 0 (scale alone) or scale 0 (offset alone).
    if (s.ll > 0 && s.lx > 0) {
      r.offset = 0;
      r.scale = s.lx / s.ll;
    } else {
      r.scale = 0;
      r.offset = std::min(0.0, s.x / n);
    }
  }
  const double a = r.scale;
  const double b = r.offset;
  r.err = std::max(
      0.0, a * a * s.ll + 2 * a * b * s.l + n * b * b - 2 * a * s.lx - 2 * b * s.x + sum_xx);
  return r;
}

double sum_squares(const float* x, int n) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

}  // namespace

SymmetricFit fit_symmetric(const float* x, int n, int lmin, int lmax) {
  const float max = signed_absmax(x, n);
  if (max == 0.0f) return {};
  const double sum_xx = sum_squares(x, n);
  const double tie = kTie * sum_xx;
  SymmetricSolve best;
  best.err = INFINITY;
  auto try_iscale = [&](float iscale) {
    const SymmetricSolve c = solve_symmetric(x, n, iscale, lmin, lmax, sum_xx);
    if (c.err < best.err - tie) best = c;
  };
  // First the largest |x| near either end of the grid (near lmin the scale takes the opposite
  // sign), so that among equally good fits (a lone outlier) the finest scale wins; then whole
  // levels over the outer half of the grid, so that an exactly representable block is found
  // exactly even when its largest level is short of the ends.
  for (const int end : {lmin, lmax}) {
    for (int k = -kSteps; k <= kSteps; ++k) {
      try_iscale((static_cast<float>(end) + kStep * static_cast<float>(k)) / max);
    }
  }
  for (int t = lmin / 2; t >= lmin; --t) try_iscale(static_cast<float>(t) / max);
  for (int t = (lmax + 1) / 2; t <= lmax; ++t) try_iscale(static_cast<float>(t) / max);
  // Re-assign levels for the fitted scale and re-fit while that helps.
  for (int it = 0; it < kRefineIters && best.scale != 0; ++it) {
    const SymmetricSolve c =
        solve_symmetric(x, n, static_cast<float>(1.0 / best.scale), lmin, lmax, sum_xx);
    if (!(c.err < best.err - tie)) break;
    best = c;
  }
  SymmetricFit fit;
  fit.scale = static_cast<float>(best.scale);
  fit.sum_ll = best.sums.ll;
  fit.grad = fit.scale * best.sums.ll - best.sums.lx;
  fit.l_lo = best.sums.l_lo;
  fit.l_hi = best.sums.l_hi;
  return fit;
}

AffineFit fit_affine(const float* x, int n, int lmax) {
  const float lo = std::min(0.0f, *std::min_element(x, x + n));
  const float hi = *std::max_element(x, x + n);
  const double sum_xx = sum_squares(x, n);
  const double tie = kTie * sum_xx;
  AffineSolve best;
  best.err = INFINITY;
  auto try_span = [&](float span) {  // the levels spanned by [lo, hi]
    const AffineSolve c = solve_affine(x, n, hi > lo ? span / (hi - lo) : 0.0f, lo, lmax, sum_xx);
    if (c.err < best.err - tie) best = c;
  };
  // As in fit_symmetric: spans around lmax first, then whole spans over the upper half.
  for (int k = -kSteps; k <= kSteps; ++k) {
    try_span(static_cast<float>(lmax) + kStep * static_cast<float>(k));
  }
  for (int t = (lmax + 1) / 2; t < lmax; ++t) try_span(static_cast<float>(t));
  for (int it = 0; it < kRefineIters && best.scale > 0; ++it) {
    const AffineSolve c = solve_affine(x, n, static_cast<float>(1.0 / best.scale),
                                       static_cast<float>(best.offset), lmax, sum_xx);
    if (!(c.err < best.err - tie)) break;
    best = c;
  }
  AffineFit fit;
  fit.scale = static_cast<float>(best.scale);
  fit.min = static_cast<float>(-best.offset);
  fit.n = n;
  fit.sum_l = best.sums.l;
  fit.sum_ll = best.sums.ll;
  fit.grad_l = static_cast<double>(fit.scale) * best.sums.ll -
               static_cast<double>(fit.min) * best.sums.l - best.sums.lx;
  fit.grad_1 =
      static_cast<double>(fit.scale) * best.sums.l - static_cast<double>(fit.min) * n - best.sums.x;
  fit.l_hi = best.sums.l_hi;
  return fit;
}

}  // namespace pensieve::ref::detail
