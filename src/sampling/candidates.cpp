#include "sampling/candidates.h"

#include <algorithm>
#include <cmath>

namespace pensieve {

void Candidates::assign(std::span<const float> logits) {
  items_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    items_[i] = TokenCandidate{static_cast<int32_t>(i), logits[i], 0.0f};
  }
  sorted_ = false;
}

void Candidates::sort_descending() {
  if (sorted_) return;
  std::sort(items_.begin(), items_.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  });
  sorted_ = true;
}

void Candidates::softmax() {
  if (items_.empty()) return;
  float max = items_[0].logit;
  for (const TokenCandidate& c : items_) max = std::max(max, c.logit);
  double sum = 0;
  for (TokenCandidate& c : items_) {
    c.prob = std::exp(c.logit - max);
    sum += c.prob;
  }
  for (TokenCandidate& c : items_) c.prob = static_cast<float>(c.prob / sum);
}

}  // namespace pensieve
