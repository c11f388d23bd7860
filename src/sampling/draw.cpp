#include "sampling/draw.h"

#include <cmath>
#include <limits>

namespace pensieve::sampling {

// The arithmetic of Candidates::softmax after apply_temperature, in the same order and types:
// float logits divided by the temperature, float exponentials, a double sum, float
// probabilities, a double running sum.
int32_t draw_token(std::span<const float> logits, float temperature, double uniform,
                   std::span<float> scratch) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  float max = -kInf;
  for (const float logit : logits) {
    if (std::isnan(logit) || logit == kInf) return -1;
    max = std::max(max, logit / temperature);
  }
  if (max == -kInf) return -1;  // nothing may come next
  const bool keep = scratch.size() >= logits.size();
  double sum = 0;
  for (size_t id = 0; id < logits.size(); ++id) {
    const float e = std::exp(logits[id] / temperature - max);
    if (keep) scratch[id] = e;
    sum += e;
  }
  double cumulative = 0;
  for (size_t id = 0; id < logits.size(); ++id) {
    const float e = keep ? scratch[id] : std::exp(logits[id] / temperature - max);
    cumulative += static_cast<float>(e / sum);
    if (uniform < cumulative) return static_cast<int32_t>(id);
  }
  return static_cast<int32_t>(logits.size() - 1);
}

int32_t draw_token(std::span<const float> logits, float temperature, double uniform) {
  return draw_token(logits, temperature, uniform, {});
}

}  // namespace pensieve::sampling
