#include "sampling/stages.h"

#include <algorithm>

namespace pensieve::sampling {

void apply_penalties(Candidates& c, std::span<const int32_t> recent, float repeat_penalty,
                     float frequency_penalty, float presence_penalty, std::span<int32_t> counts) {
  if (recent.empty() ||
      (repeat_penalty == 1.0f && frequency_penalty == 0.0f && presence_penalty == 0.0f)) {
    return;
  }
  for (int32_t t : recent) {
    if (t >= 0 && static_cast<size_t>(t) < counts.size()) ++counts[static_cast<size_t>(t)];
  }
  for (TokenCandidate& cand : c.items()) {
    const int32_t n = counts[static_cast<size_t>(cand.id)];
    if (n == 0) continue;
    cand.logit = cand.logit > 0 ? cand.logit / repeat_penalty : cand.logit * repeat_penalty;
    cand.logit -= static_cast<float>(n) * frequency_penalty + presence_penalty;
  }
  for (int32_t t : recent) {
    if (t >= 0 && static_cast<size_t>(t) < counts.size()) counts[static_cast<size_t>(t)] = 0;
  }
}

void apply_top_k(Candidates& c, int32_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= c.size()) return;
  c.sort_descending();
  c.truncate(static_cast<size_t>(k));
}

void apply_top_p(Candidates& c, float p) {
  if (p >= 1.0f || c.size() <= 1) return;
  c.sort_descending();
  c.softmax();
  double mass = 0;
  size_t keep = c.size();
  for (size_t i = 0; i < c.size(); ++i) {
    mass += c.items()[i].prob;
    if (mass >= p) {
      keep = i + 1;
      break;
    }
  }
  c.truncate(keep);
}

void apply_min_p(Candidates& c, float min_p) {
  if (min_p <= 0.0f || c.size() <= 1) return;
  c.sort_descending();
  c.softmax();
  const float threshold = c.items()[0].prob * min_p;
  size_t keep = 1;
  while (keep < c.size() && c.items()[keep].prob >= threshold) ++keep;
  c.truncate(keep);
}

void apply_temperature(Candidates& c, float t) {
  for (TokenCandidate& cand : c.items()) cand.logit /= t;
}

}  // namespace pensieve::sampling
