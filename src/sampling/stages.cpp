#include "sampling/stages.h"

#include <algorithm>
#include <cmath>

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
  c.sort_prefix(static_cast<size_t>(k));
  c.truncate(static_cast<size_t>(k));
}

// The probabilities of every candidate first (their sum in the candidates' order), then a sorted
// prefix that grows until its mass reaches p: a peaked distribution sorts a few dozen tokens, not
// the vocabulary (a flat one still sorts most of it).
void apply_top_p(Candidates& c, float p) {
  if (p >= 1.0f || c.size() <= 1) return;
  c.softmax();
  constexpr size_t kFirstPrefix = 64;
  size_t sorted = 0;
  double mass = 0;
  // Each round sorts 16 times more; once that would be a quarter of the candidates, all of them.
  auto next = [&c](size_t prefix) { return prefix * 64 > c.size() ? c.size() : prefix * 16; };
  for (size_t prefix = std::min(kFirstPrefix, c.size());; prefix = next(prefix)) {
    c.sort_prefix(prefix);
    for (; sorted < prefix; ++sorted) {
      mass += c.items()[sorted].prob;
      if (mass >= p) {
        c.truncate(sorted + 1);
        return;
      }
    }
    if (prefix == c.size()) return;  // rounding kept the mass under p: every candidate stays
  }
}

// The candidates whose probability is at least min_p times the largest, sorted.
void apply_min_p(Candidates& c, float min_p) {
  if (min_p <= 0.0f || c.size() <= 1) return;
  c.softmax();
  float top = 0.0f;
  for (const TokenCandidate& cand : c.items()) top = std::max(top, cand.prob);
  const float threshold = top * min_p;
  const auto kept = static_cast<size_t>(
      std::count_if(c.items().begin(), c.items().end(),
                    [threshold](const TokenCandidate& cand) { return cand.prob >= threshold; }));
  // The kept ones are the best max(kept, 1), as probabilities follow the logits.
  c.sort_prefix(std::max<size_t>(kept, 1));
  c.truncate(std::max<size_t>(kept, 1));
}

bool apply_top_p_min_p_of_row(Candidates& c, float p, float min_p, double exp_sum) {
  std::vector<TokenCandidate>& items = c.items();
  const float top = items[0].logit;
  for (TokenCandidate& cand : items) {
    cand.prob = static_cast<float>(static_cast<double>(std::exp(cand.logit - top)) / exp_sum);
  }
  if (p < 1.0f) {  // the chain's min-p then sees only what top-p keeps: apply_min_p as usual
    double mass = 0;
    for (size_t kept = 0; kept < items.size(); ++kept) {
      mass += items[kept].prob;
      if (mass >= p) {
        c.truncate(kept + 1);
        apply_min_p(c, min_p);
        return true;
      }
    }
    return false;
  }
  if (min_p <= 0.0f) return true;
  // Probabilities fall with the logits: past the best, none reaches a threshold the last misses.
  const float threshold = items[0].prob * min_p;
  const auto kept = static_cast<size_t>(
      std::count_if(items.begin(), items.end(),
                    [threshold](const TokenCandidate& cand) { return cand.prob >= threshold; }));
  if (kept == items.size()) return false;
  c.truncate(std::max<size_t>(kept, 1));
  return true;
}

void apply_temperature(Candidates& c, float t) {
  for (TokenCandidate& cand : c.items()) cand.logit /= t;
}

}  // namespace pensieve::sampling
