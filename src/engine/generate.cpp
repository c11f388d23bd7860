#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "sampling/stop_strings.h"
#include "tokenizer/unicode.h"

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

// Generated ids to text with tokenizer/stream_decoder.h's rules (complete UTF-8 only, invalid
// bytes as U+FFFD, control tokens silent), appending to the caller's buffer: StreamDecoder
// returns a new string per token, which allocates for every piece longer than 15 bytes.
class PieceDecoder {
 public:
  explicit PieceDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
    pending_.reserve(kReservedBytes);
  }
  // Appends to *out the text that became complete with `id`.
  void push(int32_t id, std::string* out) {
    if (!tokenizer_.contains(id) || tokenizer_.is_control(id)) return;
    pending_.append(tokenizer_.token_piece(id));
    const size_t complete = utf8_complete_prefix(pending_);
    append_sanitized(std::string_view(pending_).substr(0, complete), out);
    pending_.erase(0, complete);
  }
  // The rest at the end; an unfinished character becomes U+FFFD.
  void flush(std::string* out) {
    append_sanitized(pending_, out);
    pending_.clear();
  }
  static constexpr size_t kReservedBytes = 256;  // longer than any piece of a real vocabulary

 private:
  static void append_sanitized(std::string_view s, std::string* out) {
    for (size_t i = 0; i < s.size();) {
      const Utf8Char c = utf8_next(s.substr(i));
      if (c.status == Utf8Char::kValid) {
        out->append(s.substr(i, c.length));
      } else {
        utf8_append(kReplacementChar, out);
      }
      i += c.length;
    }
  }

  const Tokenizer& tokenizer_;
  std::string pending_;
};

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
  // Everything the loop appends to is sized here, so the token loop allocates nothing: at most
  // room - prompt + 1 tokens come out (the last one is sampled but not evaluated).
  const int64_t max_new =
      std::clamp<int64_t>(options.max_tokens, 0, room - static_cast<int64_t>(prompt.size()) + 1);
  result.tokens.reserve(static_cast<size_t>(max_new));
  std::vector<int32_t> history;
  history.reserve(prompt.size() + static_cast<size_t>(max_new));
  history.assign(prompt.begin(), prompt.end());
  Sampler sampler(options.sampling, tokenizer.n_vocab());
  StopMatcher stops(options.stop_strings);
  PieceDecoder decoder(tokenizer);
  std::string piece;  // the token's complete text, before the stop strings see it
  std::string text;   // what the stop strings let out
  piece.reserve(PieceDecoder::kReservedBytes);
  text.reserve(PieceDecoder::kReservedBytes);

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
    piece.clear();
    decoder.push(token, &piece);
    text.clear();
    if (stops.feed(piece, &text)) result.reason = StopReason::kStopString;
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
    piece.clear();
    decoder.flush(&piece);
    text.clear();
    if (stops.feed(piece, &text)) result.reason = StopReason::kStopString;
    stops.flush(&text);
    if (!text.empty()) on_text(text);
  }
  result.stop_string = std::string(stops.matched());
  result.decode_ms = ms_since(start);
  return result;
}

}  // namespace pensieve
