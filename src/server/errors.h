// The one table from pensieve's error codes to an HTTP status and an API error type, and the
// error bodies of both wire formats.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace pensieve::server {

struct ApiError {
  int status = 500;
  std::string type;  // Anthropic's error type: "invalid_request_error", ...
  std::string message;
  int retry_after_s = 0;  // > 0: sent as retry-after
  // More response headers (x-memory-status, ...); a streamed error cannot carry them.
  std::vector<std::pair<std::string, std::string>> headers;
};

// invalid_request_error, authentication_error, not_found_error, request_too_large,
// rate_limit_error, api_error, overloaded_error.
ApiError api_error(int status, std::string message);
// Expected failures from the engine and parsers: bad input is a 400, a full queue a 429, ...
ApiError api_error_from(const Error& error);

// {"type":"error","error":{"type":...,"message":...},"request_id":...}
std::string anthropic_error_body(const ApiError& error, std::string_view request_id);
// {"error":{"message":...,"type":...,"param":null,"code":null}}
std::string openai_error_body(const ApiError& error);

// A fresh random id: prefix + 24 base62 characters ("req_", "msg_", "chatcmpl-").
std::string random_id(std::string_view prefix);

}  // namespace pensieve::server
