#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace pensieve {
namespace {

// Room for one token's text: longer than any piece of a real vocabulary.
constexpr size_t kTextReserve = 256;

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Unexpected<Error> non_finite(int64_t position) {
  return make_error(ErrorCode::kInternal,
                    "generate: the model produced a non-finite logit at position {} (the "
                    "weights may be corrupt)",
                    position);
}

Expected<void> check_finite(std::span<const float> logits, int64_t position) {
  for (float v : logits) {
    if (!std::isfinite(v)) return non_finite(position);
  }
  return {};
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kEndOfGeneration:
      return "end_of_generation";
    case StopReason::kMaxTokens:
      return "max_tokens";
    case StopReason::kStopString:
      return "stop_string";
    case StopReason::kContextFull:
      return "context_full";
    case StopReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Generation::Generation(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                       const GenerateOptions& options, int64_t room)
    : tokenizer_(tokenizer),
      options_(options),
      room_(room),
      sampler_(options.sampling, tokenizer.n_vocab()),
      stops_(options.stop_strings),
      decoder_(tokenizer),
      started_(std::chrono::steady_clock::now()) {
  result_.n_prompt = static_cast<int64_t>(prompt.size());
  result_.reason = StopReason::kMaxTokens;
  // At most room - prompt + 1 tokens come out (the last one is sampled but not evaluated).
  const int64_t max_new =
      std::clamp<int64_t>(options.max_tokens, 0, room - static_cast<int64_t>(prompt.size()) + 1);
  result_.tokens.reserve(static_cast<size_t>(max_new));
  history_.reserve(prompt.size() + static_cast<size_t>(max_new));
  history_.assign(prompt.begin(), prompt.end());
  piece_.reserve(kTextReserve);
  text_.reserve(kTextReserve);
  if (options.constraint) {
    mask_.resize(static_cast<size_t>(tokenizer.n_vocab()));
    masked_.resize(static_cast<size_t>(tokenizer.n_vocab()));
  }
}

bool Generation::greedy() const {
  const SamplingParams& p = options_.sampling;
  const bool constrained = options_.constraint && options_.constraint->constrains();
  return p.temperature <= 0.0f && p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f &&
         p.presence_penalty == 0.0f && !constrained;
}

bool Generation::drawable() const {
  const bool constrained = options_.constraint && options_.constraint->constrains();
  return greedy() || (sampler_.draws_only() && !constrained);
}

TokenDraw Generation::next_draw() {
  if (greedy()) return {};
  return {options_.sampling.temperature, sampler_.uniform()};
}

bool Generation::begin_step(const TextCallback& on_text) {
  if (finished_) return false;
  const auto i = static_cast<int64_t>(result_.tokens.size());
  if (i == 0) {
    first_logits_ = std::chrono::steady_clock::now();
    result_.prefill_ms =
        std::chrono::duration<double, std::milli>(first_logits_ - started_).count();
  }
  if (i >= options_.max_tokens) {
    end(StopReason::kMaxTokens, on_text);
    return false;
  }
  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
    end(StopReason::kCancelled, on_text);
    return false;
  }
  return true;
}

Expected<std::optional<int32_t>> Generation::step_picked(int32_t token,
                                                         const TextCallback& on_text) {
  if (!begin_step(on_text)) return std::optional<int32_t>();
  if (token < 0) return non_finite(static_cast<int64_t>(history_.size()));
  return take(token, on_text);
}

int64_t Generation::best_needed(int64_t most) const {
  if (options_.constraint && options_.constraint->constrains()) return 0;
  if (rows_before_best_ > 0) return 0;  // the best fell short lately: the row, for a while
  return sampler_.best_needed(most);
}

Expected<std::optional<int32_t>> Generation::step_best(std::span<const TokenLogit> best,
                                                       double exp_sum, const RowSource& row,
                                                       const TextCallback& on_text) {
  if (!begin_step(on_text)) return std::optional<int32_t>();
  const auto position = static_cast<int64_t>(history_.size());
  if (best.empty() || best[0].id < 0) return non_finite(position);
  if (const std::optional<int32_t> token = sampler_.sample_best(best, exp_sum, history_)) {
    return take(*token, on_text);
  }
  // A flat distribution tends to stay flat: the next steps bring the row straight away.
  rows_before_best_ = kRowsAfterShortBest;
  PV_TRY(const std::span<const float> logits, row());
  PV_TRY_VOID(check_finite(logits, position));
  return take(sampler_.sample(logits, history_), on_text);
}

Expected<std::optional<int32_t>> Generation::step(std::span<const float> logits,
                                                  const TextCallback& on_text) {
  if (!begin_step(on_text)) return std::optional<int32_t>();
  const auto i = static_cast<int64_t>(result_.tokens.size());
  const int64_t position = static_cast<int64_t>(history_.size());
  if (rows_before_best_ > 0) --rows_before_best_;
  PV_TRY_VOID(check_finite(logits, position));
  if (options_.constraint && options_.constraint->constrains()) {
    // Only tokens the constraint allows; end tokens too once its output is whole.
    TokenConstraint& constraint = *options_.constraint;
    constraint.set_tokens_left(std::min(options_.max_tokens - i, room_ - position + 1));
    constraint.allowed(&mask_);
    const bool whole = constraint.complete();
    bool any = false;
    for (size_t id = 0; id < masked_.size() && id < logits.size(); ++id) {
      const bool ok = mask_[id] != 0 || (whole && tokenizer_.is_eog(static_cast<int32_t>(id)));
      masked_[id] = ok ? logits[id] : -std::numeric_limits<float>::infinity();
      any = any || mask_[id] != 0;
    }
    if (!any && whole) {  // nothing may follow: the output is done
      end(StopReason::kEndOfGeneration, on_text);
      return std::optional<int32_t>();
    }
    if (!any) {
      return make_error(ErrorCode::kUnsupported,
                        "generate: no token of this model's vocabulary can continue the "
                        "constrained output (it cannot spell the required JSON)");
    }
    logits = masked_;
  }
  return take(sampler_.sample(logits, history_), on_text);
}

Expected<std::optional<int32_t>> Generation::take(int32_t token, const TextCallback& on_text) {
  const auto i = static_cast<int64_t>(result_.tokens.size());
  const int64_t position = static_cast<int64_t>(history_.size());
  if (options_.constraint && !tokenizer_.is_eog(token)) options_.constraint->accept(token);
  if (tokenizer_.is_eog(token)) {
    end(StopReason::kEndOfGeneration, on_text);
    return std::optional<int32_t>();
  }
  result_.tokens.push_back(token);
  history_.push_back(token);
  piece_.clear();
  decoder_.push(token, &piece_);
  text_.clear();
  const bool stopped = stops_.feed(piece_, &text_);
  if (!text_.empty() && !on_text(text_)) {
    end(StopReason::kCancelled, on_text);
    return std::optional<int32_t>();
  }
  if (stopped) {
    end(StopReason::kStopString, on_text);
  } else if (i + 1 == options_.max_tokens) {
    end(StopReason::kMaxTokens, on_text);
  } else if (position >= room_) {
    end(StopReason::kContextFull, on_text);
  }
  if (finished_) return std::optional<int32_t>();
  return std::optional<int32_t>(token);
}

void Generation::end(StopReason reason, const TextCallback& on_text) {
  result_.reason = reason;
  finished_ = true;
  if (reason != StopReason::kStopString && reason != StopReason::kCancelled) {
    piece_.clear();
    decoder_.flush(&piece_);
    text_.clear();
    if (stops_.feed(piece_, &text_)) result_.reason = StopReason::kStopString;
    stops_.flush(&text_);
    if (!text_.empty()) on_text(text_);
  }
  result_.stop_string = std::string(stops_.matched());
  if (first_logits_ != std::chrono::steady_clock::time_point{}) {
    result_.decode_ms = ms_since(first_logits_);
  }
}

Expected<GenerateResult> generate(Forward& forward, const Tokenizer& tokenizer,
                                  std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const TextCallback& on_text) {
  if (prompt.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "generate: the prompt has no tokens");
  }
  const int64_t room = forward.n_ctx() - forward.n_past();
  if (static_cast<int64_t>(prompt.size()) > room) {
    return make_error(ErrorCode::kOutOfRange,
                      "generate: prompt is too long: {} tokens > {} maximum", prompt.size(), room);
  }
  Generation generation(tokenizer, prompt, options, room);
  PV_TRY(std::span<const float> logits, forward.eval(prompt));
  while (true) {
    PV_TRY(std::optional<int32_t> next, generation.step(logits, on_text));
    if (!next) break;
    PV_TRY(logits, forward.eval(std::span<const int32_t>(&*next, 1)));
  }
  return std::move(generation.result());
}

}  // namespace pensieve
