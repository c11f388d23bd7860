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

void rope(float* head, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, RopeStyle style) {
  PV_CHECK(n_rot <= head_dim && n_rot % 2 == 0, "n_rot {} head_dim {}", n_rot, head_dim);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double theta =
        pos * freq_scale * std::pow(static_cast<double>(freq_base), -2.0 * i / n_rot);
    const float c = static_cast<float>(std::cos(theta));
    const float s = static_cast<float>(std::sin(theta));
    const int64_t a = style == RopeStyle::kAdjacentPairs ? 2 * i : i;
    const int64_t b = style == RopeStyle::kAdjacentPairs ? 2 * i + 1 : i + n_rot / 2;
    const float x0 = head[a];
    const float x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
  }
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
