#include "engine/generate.h"

#include <chrono>
#include <cmath>

#include "sampling/stop_strings.h"
#include "tokenizer/stream_decoder.h"

namespace pensieve {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Expected<void> check_finite(std::span<const float> logits, int64_t position) {
  for (float v : logits) {
    if (!std::isfinite(v)) {
      return make_error(ErrorCode::kInternal,
                        "generate: the model produced a non-finite logit at position {} (the "
                        "weights may be corrupt)",
                        position);
    }
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
  GenerateResult result;
  result.n_prompt = static_cast<int64_t>(prompt.size());
  result.tokens.reserve(static_cast<size_t>(std::max<int64_t>(0, options.max_tokens)));
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  Sampler sampler(options.sampling, tokenizer.n_vocab());
  StopMatcher stops(options.stop_strings);
  StreamDecoder decoder(tokenizer);
  std::string text;

  auto start = std::chrono::steady_clock::now();
  PV_TRY(std::span<const float> logits, forward.eval(prompt));
  result.prefill_ms = ms_since(start);
  start = std::chrono::steady_clock::now();
  result.reason = StopReason::kMaxTokens;
  for (int64_t i = 0; i < options.max_tokens; ++i) {
    if (options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed)) {
      result.reason = StopReason::kCancelled;
      break;
    }
    PV_TRY_VOID(check_finite(logits, forward.n_past()));
    const int32_t token = sampler.sample(logits, history);
    if (tokenizer.is_eog(token)) {
      result.reason = StopReason::kEndOfGeneration;
      break;
    }
    result.tokens.push_back(token);
    history.push_back(token);
    text.clear();
    if (stops.feed(decoder.push(token), &text)) result.reason = StopReason::kStopString;
    if (!text.empty() && !on_text(text)) {
      result.reason = StopReason::kCancelled;
      break;
    }
    if (result.reason == StopReason::kStopString) break;
    if (i + 1 == options.max_tokens) break;
    if (forward.n_past() >= forward.n_ctx()) {
      result.reason = StopReason::kContextFull;
      break;
    }
    PV_TRY(logits, forward.eval(std::span<const int32_t>(&token, 1)));
  }
  if (result.reason != StopReason::kStopString && result.reason != StopReason::kCancelled) {
    text.clear();
    if (stops.feed(decoder.flush(), &text)) result.reason = StopReason::kStopString;
    stops.flush(&text);
    if (!text.empty()) on_text(text);
  }
  result.stop_string = std::string(stops.matched());
  result.decode_ms = ms_since(start);
  return result;
}

}  // namespace pensieve
