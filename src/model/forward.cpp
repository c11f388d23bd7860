#include "model/forward.h"

#include <algorithm>
#include <cmath>

#include "sampling/draw.h"

namespace pensieve {

Expected<void> check_eval(std::span<const int32_t> tokens, int64_t n_past, int64_t room,
                          int64_t n_vocab) {
  if (tokens.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "forward: no tokens to evaluate");
  }
  if (n_past + static_cast<int64_t>(tokens.size()) > room) {
    return make_error(ErrorCode::kOutOfRange,
                      "forward: {} tokens do not fit: {} of the context's {} are used",
                      tokens.size(), n_past, room);
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "forward: token id {} is outside [0, {})", t,
                        n_vocab);
    }
  }
  return {};
}

int32_t greedy_pick(std::span<const float> logits) {
  size_t best = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!std::isfinite(logits[i])) return -1;
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

std::span<const int32_t> BatchForward::greedy_picks(std::span<const float> logits,
                                                    size_t n_segments) {
  const size_t n_vocab = logits.size() / n_segments;
  greedy_.resize(n_segments);
  for (size_t i = 0; i < n_segments; ++i) {
    greedy_[i] = greedy_pick(logits.subspan(i * n_vocab, n_vocab));
  }
  return greedy_;
}

Expected<std::span<const int32_t>> BatchForward::eval_batch_greedy(
    std::span<const BatchSegment> segments) {
  PV_TRY(std::span<const float> logits, eval_batch(segments));
  return greedy_picks(logits, segments.size());
}

int32_t pick_token(std::span<const float> logits, TokenDraw draw) {
  if (draw.temperature <= 0.0f) return greedy_pick(logits);
  return sampling::draw_token(logits, draw.temperature, draw.uniform);
}

std::span<const int32_t> BatchForward::drawn_picks(std::span<const float> logits,
                                                   std::span<const TokenDraw> draws) {
  const size_t n_vocab = logits.size() / draws.size();
  greedy_.resize(draws.size());
  for (size_t i = 0; i < draws.size(); ++i) {
    greedy_[i] = pick_token(logits.subspan(i * n_vocab, n_vocab), draws[i]);
  }
  return greedy_;
}

Expected<void> check_draws(std::span<const BatchSegment> segments,
                           std::span<const TokenDraw> draws) {
  if (draws.size() != segments.size()) {
    return make_error(ErrorCode::kInvalidArgument, "forward: {} token draws for {} segments",
                      draws.size(), segments.size());
  }
  return {};
}

Expected<std::span<const int32_t>> BatchForward::eval_batch_drawn(
    std::span<const BatchSegment> segments, std::span<const TokenDraw> draws) {
  PV_TRY_VOID(check_draws(segments, draws));
  PV_TRY(std::span<const float> logits, eval_batch(segments));
  return drawn_picks(logits, draws);
}

Expected<void> check_best_count(int64_t k, int64_t n_vocab) {
  if (k < 1 || k > std::min(BatchForward::kMaxBestTokens, n_vocab)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: {} best tokens asked for; between 1 and {} can come back", k,
                      std::min(BatchForward::kMaxBestTokens, n_vocab));
  }
  return {};
}

std::span<const TokenLogit> BatchForward::best_rows(std::span<const float> logits,
                                                    size_t n_segments, int64_t k,
                                                    std::span<double> exp_sums) {
  const size_t n_vocab = logits.size() / n_segments;
  const auto per_row = static_cast<size_t>(k);
  best_.resize(n_segments * per_row);
  for (size_t i = 0; i < n_segments; ++i) {
    const std::span<const float> row = logits.subspan(i * n_vocab, n_vocab);
    const std::span<TokenLogit> best = std::span<TokenLogit>(best_).subspan(i * per_row, per_row);
    best_tokens(row, per_row, best);
    if (!exp_sums.empty()) exp_sums[i] = best[0].id < 0 ? 0.0 : exp_sum(row, best[0].logit);
  }
  best_logits_ = logits;
  best_segments_ = n_segments;
  return best_;
}

namespace {

Expected<void> check_exp_sums(std::span<double> exp_sums, size_t n_segments) {
  if (!exp_sums.empty() && exp_sums.size() != n_segments) {
    return make_error(ErrorCode::kInvalidArgument, "forward: {} sums for {} segments",
                      exp_sums.size(), n_segments);
  }
  return {};
}

}  // namespace

Expected<std::span<const TokenLogit>> BatchForward::eval_batch_best(
    std::span<const BatchSegment> segments, int64_t k, std::span<double> exp_sums) {
  PV_TRY_VOID(check_exp_sums(exp_sums, segments.size()));
  PV_TRY(std::span<const float> logits, eval_batch(segments));
  PV_TRY_VOID(check_best_count(k, static_cast<int64_t>(logits.size() / segments.size())));
  return best_rows(logits, segments.size(), k, exp_sums);
}

Expected<std::span<const float>> BatchForward::best_step_row(int64_t segment) {
  if (segment < 0 || static_cast<size_t>(segment) >= best_segments_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: row {} of a best-token step of {} segments", segment,
                      best_segments_);
  }
  const size_t n_vocab = best_logits_.size() / best_segments_;
  return best_logits_.subspan(static_cast<size_t>(segment) * n_vocab, n_vocab);
}

Expected<std::span<const TokenLogit>> LayerStage::eval_layers_best(
    std::span<const BatchSegment> segments, std::span<const float> hidden, int64_t k,
    std::span<double> exp_sums) {
  PV_TRY_VOID(check_exp_sums(exp_sums, segments.size()));
  PV_TRY(std::span<const float> logits, eval_layers(segments, hidden));
  PV_TRY_VOID(check_best_count(k, static_cast<int64_t>(logits.size() / segments.size())));
  return best_rows(logits, segments.size(), k, exp_sums);
}

Expected<std::span<const int32_t>> LayerStage::eval_layers_drawn(
    std::span<const BatchSegment> segments, std::span<const float> hidden,
    std::span<const TokenDraw> draws) {
  PV_TRY_VOID(check_draws(segments, draws));
  PV_TRY(std::span<const float> logits, eval_layers(segments, hidden));
  return drawn_picks(logits, draws);
}

Expected<std::span<const int32_t>> LayerStage::eval_layers_greedy(
    std::span<const BatchSegment> segments, std::span<const float> hidden) {
  PV_TRY(std::span<const float> logits, eval_layers(segments, hidden));
  return greedy_picks(logits, segments.size());
}

Unexpected<Error> only_part_of_model(LayerRange layers, int64_t n_layer) {
  return make_error(ErrorCode::kInvalidArgument,
                    "forward: this pass runs layers [{}, {}) of {}: use eval_layers", layers.first,
                    layers.end, n_layer);
}

Expected<int64_t> check_batch(std::span<const BatchSegment> segments, const BatchLimits& limits) {
  constexpr int64_t kBlock = BatchForward::kKvBlockPositions;
  const auto n_segments = static_cast<int64_t>(segments.size());
  if (n_segments == 0 || n_segments > limits.max_segments) {
    return make_error(ErrorCode::kInvalidArgument, "forward: {} sequences in a batch; 1..{} fit",
                      n_segments, limits.max_segments);
  }
  int64_t n_tokens = 0;
  for (const BatchSegment& s : segments) {
    const auto n = static_cast<int64_t>(s.tokens.size());
    if (n == 0) return make_error(ErrorCode::kInvalidArgument, "forward: a sequence has no tokens");
    if (s.first_pos < 0 || s.first_pos + n > limits.n_ctx) {
      return make_error(ErrorCode::kOutOfRange,
                        "forward: positions {}..{} are outside the context of {}", s.first_pos,
                        s.first_pos + n - 1, limits.n_ctx);
    }
    const int64_t blocks = (s.first_pos + n + kBlock - 1) / kBlock;
    if (static_cast<int64_t>(s.block_table.size()) < blocks) {
      return make_error(ErrorCode::kInvalidArgument,
                        "forward: a block table of {} blocks does not cover {} positions",
                        s.block_table.size(), s.first_pos + n);
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const int32_t id = s.block_table[static_cast<size_t>(b)];
      if (id < 0 || id >= limits.n_blocks) {
        return make_error(ErrorCode::kInvalidArgument,
                          "forward: block {} is outside the pool of {} blocks", id,
                          limits.n_blocks);
      }
    }
    for (int32_t t : s.tokens) {
      if (t < 0 || t >= limits.n_vocab) {
        return make_error(ErrorCode::kInvalidArgument, "forward: token id {} is outside [0, {})", t,
                          limits.n_vocab);
      }
    }
    n_tokens += n;
  }
  if (n_tokens > limits.max_batch) {
    return make_error(ErrorCode::kInvalidArgument, "forward: {} tokens in a batch; at most {} fit",
                      n_tokens, limits.max_batch);
  }
  return n_tokens;
}

}  // namespace pensieve
