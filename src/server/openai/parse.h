// OpenAI chat completions requests (POST /v1/chat/completions) -> InferenceRequest.
#pragma once

#include <string_view>

#include "core/result.h"
#include "engine/request.h"

namespace pensieve::server::openai {

Expected<InferenceRequest> parse_chat_request(std::string_view body);

}  // namespace pensieve::server::openai
