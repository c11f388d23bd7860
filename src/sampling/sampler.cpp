#include "sampling/sampler.h"

#include <algorithm>

#include "sampling/draw.h"
#include "sampling/stages.h"

namespace pensieve {

Sampler::Sampler(const SamplingParams& params, int64_t n_vocab)
    : params_(params),
      candidates_(n_vocab),
      counts_(static_cast<size_t>(n_vocab), 0),
      exps_(static_cast<size_t>(n_vocab)),
      rng_(params.seed) {}

bool Sampler::draws_only() const {
  const SamplingParams& p = params_;
  return p.temperature > 0.0f && p.top_k <= 0 && p.top_p >= 1.0f && p.min_p <= 0.0f &&
         p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f;
}

int64_t Sampler::best_needed(int64_t most) const {
  const SamplingParams& p = params_;
  const bool penalties =
      p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  const auto n_vocab = static_cast<int64_t>(counts_.size());
  if (penalties || most < 1) return 0;
  if (p.temperature <= 0.0f) return 1;  // greedy: the best one
  if (p.top_k > 0 && p.top_k < n_vocab) return p.top_k <= most ? p.top_k : 0;
  return needs_exp_sum() ? std::min(most, n_vocab) : 0;
}

bool Sampler::needs_exp_sum() const {
  const SamplingParams& p = params_;
  const auto n_vocab = static_cast<int64_t>(counts_.size());
  return p.temperature > 0.0f && (p.top_k <= 0 || p.top_k >= n_vocab) &&
         (p.top_p < 1.0f || p.min_p > 0.0f);
}

int32_t Sampler::sample_best(std::span<const TokenLogit> best, std::span<const int32_t> history) {
  candidates_.assign_best(best);
  return sample_candidates(history);
}

std::optional<int32_t> Sampler::sample_best(std::span<const TokenLogit> best, double exp_sum,
                                            std::span<const int32_t> history) {
  // A top-k that decides, or every token: the usual chain.
  if (!needs_exp_sum() || best.size() >= counts_.size()) return sample_best(best, history);
  candidates_.assign_best(best);
  if (!sampling::apply_top_p_min_p_of_row(candidates_, params_.top_p, params_.min_p, exp_sum)) {
    return std::nullopt;
  }
  return draw_candidate();
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  // The chain below would leave every candidate in id order: draw from them directly.
  if (draws_only()) {
    return sampling::draw_token(logits, params_.temperature, rng_.uniform(), exps_);
  }
  candidates_.assign(logits);
  return sample_candidates(history);
}

int32_t Sampler::sample_candidates(std::span<const int32_t> history) {
  const size_t n_recent = std::min(history.size(), static_cast<size_t>(params_.penalty_last_n));
  sampling::apply_penalties(candidates_, history.last(n_recent), params_.repeat_penalty,
                            params_.frequency_penalty, params_.presence_penalty, counts_);
  if (params_.temperature <= 0.0f) {  // greedy: the highest logit, lowest id on ties
    const auto& items = candidates_.items();
    const auto best = std::max_element(
        items.begin(), items.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
          return a.logit != b.logit ? a.logit < b.logit : a.id > b.id;
        });
    return best->id;
  }
  sampling::apply_top_k(candidates_, params_.top_k);
  sampling::apply_top_p(candidates_, params_.top_p);
  sampling::apply_min_p(candidates_, params_.min_p);
  return draw_candidate();
}

int32_t Sampler::draw_candidate() {
  sampling::apply_temperature(candidates_, params_.temperature);
  candidates_.softmax();
  const double r = rng_.uniform();
  double cumulative = 0;
  for (const TokenCandidate& c : candidates_.items()) {
    cumulative += c.prob;
    if (r < cumulative) return c.id;
  }
  return candidates_.items().back().id;  // rounding left r just above the total
}

}  // namespace pensieve
