// Sampling stages: each narrows or reshapes the candidates. One small function per stage, in
// the order the chain applies them: penalties, top-k, top-p, min-p, temperature.
#pragma once

#include <cstdint>
#include <span>

#include "sampling/candidates.h"

namespace pensieve::sampling {

// Repetition penalty (divides positive logits, multiplies negative ones, once per distinct
// token) plus OpenAI-style frequency (per occurrence) and presence (once) penalties, over
// `recent` tokens. `counts` is scratch of n_vocab zeros, left zeroed on return.
void apply_penalties(Candidates& c, std::span<const int32_t> recent, float repeat_penalty,
                     float frequency_penalty, float presence_penalty, std::span<int32_t> counts);

// Keeps the k most likely (k <= 0: all).
void apply_top_k(Candidates& c, int32_t k);

// Keeps the smallest set, in descending probability, whose mass reaches p (p >= 1: all).
void apply_top_p(Candidates& c, float p);

// Keeps tokens with prob >= min_p * max prob (min_p <= 0: all).
void apply_min_p(Candidates& c, float min_p);
// apply_top_p then apply_min_p over a whole row, from its best candidates (sorted, more than one
// and fewer than the row) and the row's sum of exp(logit - largest) (Candidates::softmax's
// denominator): each gets the probability softmax gives it over the row. Leaves what the two
// keep; false when the best are too few to tell (top-p's mass not reached, or a min-p over the
// row that keeps the last of them), and the row is needed.
bool apply_top_p_min_p_of_row(Candidates& c, float p, float min_p, double exp_sum);

// Divides logits by t (t > 0).
void apply_temperature(Candidates& c, float t);

}  // namespace pensieve::sampling
