// How a generation ended, in the terms both wire formats report (stop_reason, finish_reason).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/generate.h"

namespace pensieve::server {

enum class Finish {
  kEndTurn,        // the model ended its turn (end-of-generation token or template stop text)
  kMaxTokens,      // the client's max_tokens
  kStopSequence,   // one of the client's stop sequences
  kContextWindow,  // the context window ran out before max_tokens
  kCancelled,      // the client went away
  kToolUse,        // a forced tool call was written whole
};

struct Outcome {
  Finish finish = Finish::kEndTurn;
  std::string stop_sequence;  // kStopSequence: which one
  int64_t input_tokens = 0;   // the whole prompt
  int64_t output_tokens = 0;
  // Of input_tokens: read from the prefix cache, and written to it (the prompt's whole KV blocks
  // that were not there yet); the rest was evaluated and not cached.
  int64_t cache_read_tokens = 0;
  int64_t cache_creation_tokens = 0;
};

// `client_stops`: the stop sequences the client gave (other matches are template end-of-turn
// texts); `requested_max_tokens`: what the client asked for before clamping to the context.
Outcome outcome_of(const GenerateResult& result, const std::vector<std::string>& client_stops,
                   std::optional<int64_t> requested_max_tokens);

std::string_view anthropic_stop_reason(Finish finish);  // "end_turn", ...
std::string_view openai_finish_reason(Finish finish);   // "stop", "length"

}  // namespace pensieve::server
