#include "kernels/ref/ops.h"

#include <cmath>

#include "core/check.h"
#include "kernels/ref/quants.h"

namespace pensieve::ref {

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum_sq / n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void matrix_row(const Matrix& w, int64_t r, float* out) {
  PV_CHECK(r >= 0 && r < w.n_rows, "row {} of {}", r, w.n_rows);
  dequantize_row(w.type, w.row(r), out, w.n_cols);
}

void matvec(const Matrix& w, const float* x, float* out, float* scratch) {
  for (int64_t r = 0; r < w.n_rows; ++r) {
    dequantize_row(w.type, w.row(r), scratch, w.n_cols);
    double sum = 0;
    for (int64_t c = 0; c < w.n_cols; ++c) sum += static_cast<double>(scratch[c]) * x[c];
    out[r] = static_cast<float>(sum);
  }
}

void rope_angles(const RopeParams& p, int64_t pos, float* cos, float* sin) {
  PV_CHECK(p.n_rot > 0 && p.n_rot % 2 == 0, "rope: n_rot {}", p.n_rot);
  for (int64_t i = 0; i < p.n_rot / 2; ++i) {
    double freq = std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.n_rot) * p.freq_scale;
    if (p.freq_factors != nullptr) freq /= p.freq_factors[i];
    const double theta = static_cast<double>(pos) * freq;
    cos[i] = static_cast<float>(std::cos(theta) * p.attn_factor);
    sin[i] = static_cast<float>(std::sin(theta) * p.attn_factor);
  }
}

void rope_rotate(const RopeParams& p, const float* cos, const float* sin, float* head) {
  const int64_t half = p.n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t a = p.style == RopeStyle::kAdjacentPairs ? 2 * i : i;
    const int64_t b = p.style == RopeStyle::kAdjacentPairs ? 2 * i + 1 : i + half;
    const float x0 = head[a];
    const float x1 = head[b];
    head[a] = x0 * cos[i] - x1 * sin[i];
    head[b] = x0 * sin[i] + x1 * cos[i];
  }
}

void rope(const RopeParams& p, int64_t pos, float* head, float* scratch) {
  rope_angles(p, pos, scratch, scratch + p.n_rot / 2);
  rope_rotate(p, scratch, scratch + p.n_rot / 2, head);
}

void softmax(float* x, int64_t n) {
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] / sum);
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace pensieve::ref
