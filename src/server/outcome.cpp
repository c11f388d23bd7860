#include "server/outcome.h"

#include <algorithm>

namespace pensieve::server {

Outcome outcome_of(const GenerateResult& result, const std::vector<std::string>& client_stops,
                   std::optional<int64_t> requested_max_tokens) {
  Outcome outcome;
  outcome.input_tokens = result.n_prompt;
  outcome.cache_read_tokens = result.n_cached;
  constexpr int64_t kBlock = 32;  // KvBlocks::kBlockPositions: only whole blocks are cached
  outcome.cache_creation_tokens =
      std::max<int64_t>(0, result.n_prompt / kBlock * kBlock - result.n_cached);
  outcome.output_tokens = static_cast<int64_t>(result.tokens.size());
  switch (result.reason) {
    case StopReason::kEndOfGeneration:
      outcome.finish = Finish::kEndTurn;
      break;
    case StopReason::kStopString:
      if (std::find(client_stops.begin(), client_stops.end(), result.stop_string) !=
          client_stops.end()) {
        outcome.finish = Finish::kStopSequence;
        outcome.stop_sequence = result.stop_string;
      } else {
        outcome.finish = Finish::kEndTurn;
      }
      break;
    case StopReason::kMaxTokens:
      // max_tokens is clamped to the room left in the context; reaching the clamp is the
      // context's doing, not the client's limit.
      outcome.finish = requested_max_tokens && outcome.output_tokens < *requested_max_tokens
                           ? Finish::kContextWindow
                           : Finish::kMaxTokens;
      break;
    case StopReason::kContextFull:
      outcome.finish = Finish::kContextWindow;
      break;
    case StopReason::kCancelled:
      outcome.finish = Finish::kCancelled;
      break;
  }
  return outcome;
}

std::string_view anthropic_stop_reason(Finish finish) {
  switch (finish) {
    case Finish::kEndTurn:
      return "end_turn";
    case Finish::kMaxTokens:
      return "max_tokens";
    case Finish::kStopSequence:
      return "stop_sequence";
    case Finish::kContextWindow:
      return "model_context_window_exceeded";
    case Finish::kCancelled:
      return "cancelled";
    case Finish::kToolUse:
      return "tool_use";
  }
  return "end_turn";
}

std::string_view openai_finish_reason(Finish finish) {
  switch (finish) {
    case Finish::kMaxTokens:
    case Finish::kContextWindow:
      return "length";
    case Finish::kToolUse:
      return "tool_calls";
    default:
      return "stop";
  }
}

}  // namespace pensieve::server
