// The sampler chain: penalties -> top-k -> top-p -> min-p -> temperature -> draw, or greedy
// when temperature is 0. Seeded, so the same seed gives the same tokens. Allocates only at
// construction.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "sampling/candidates.h"
#include "sampling/rng.h"

namespace pensieve {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;  // how many recent tokens the penalties look at
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int64_t n_vocab);

  // Picks the next token from logits [n_vocab]; `history` is every token so far.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // Whether only the temperature applies (no penalties, top-k, top-p or min-p): sample() is then
  // sampling::draw_token with the next uniform(), and a backend may draw where the logits are.
  bool draws_only() const;
  // The next number of the seeded sequence that sample() draws from, for such a draw elsewhere.
  double uniform() { return rng_.uniform(); }
  // How many of a row's best tokens (best_tokens()) make the same pick as its whole logits, up to
  // `most`, without penalties (they change logits before the selection): 1 for greedy; top-k's k
  // when it applies (k below the vocabulary's size and at most `most`), as the top-p and min-p
  // after top-k see only those k; `most` (or the vocabulary) for a top-p or min-p over the whole
  // row, which also needs the row's exp_sum() and may find them too few; else 0, the whole row
  // is needed.
  int64_t best_needed(int64_t most) const;
  // Whether best_needed() counts on the row's exp_sum() too (a top-p or min-p without a top-k).
  bool needs_exp_sum() const;
  // sample() from the first best_needed() of a row's best tokens (or more), with the same result.
  int32_t sample_best(std::span<const TokenLogit> best, std::span<const int32_t> history);
  // The same from a row's best tokens and its exp_sum(); when needs_exp_sum() and they are too
  // few to tell, nothing (and no number drawn): sample() needs the row. The same result as
  // sample(), but where the sum's last bits (another order on a GPU) put top-p's mass or a
  // min-p threshold on the other side of a token.
  std::optional<int32_t> sample_best(std::span<const TokenLogit> best, double exp_sum,
                                     std::span<const int32_t> history);

 private:
  // The chain from the penalties on, over candidates_.
  int32_t sample_candidates(std::span<const int32_t> history);
  // Its end: temperature, softmax, a draw.
  int32_t draw_candidate();

  SamplingParams params_;
  Candidates candidates_;
  std::vector<int32_t> counts_;  // [n_vocab] scratch for the penalties
  std::vector<float> exps_;      // [n_vocab] scratch for a temperature-only draw
  Rng rng_;
};

}  // namespace pensieve
