// Anthropic Messages API requests -> InferenceRequest, in one pass over the JSON. Unknown fields
// are ignored; every error names the field ("messages.1.content.0: image blocks are not ...").
#pragma once

#include <string_view>

#include "core/result.h"
#include "engine/request.h"

namespace pensieve::server::anthropic {

enum class Endpoint {
  kMessages,     // POST /v1/messages: max_tokens required
  kCountTokens,  // POST /v1/messages/count_tokens: no max_tokens
};

Expected<InferenceRequest> parse_messages_request(std::string_view body, Endpoint endpoint);

}  // namespace pensieve::server::anthropic
