// OpenAI wire JSON for replies: chat completions (whole and as `data:` chunks), models.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/reply_parts.h"

#include "server/outcome.h"

namespace pensieve::server::openai {

// The reply's parts: text as `content`, reasoning as `reasoning_content`, calls as `tool_calls`
// (ids from `tool_id`).
std::string completion_body(std::string_view id, std::string_view model, int64_t created,
                            const std::vector<ReplyPart>& parts, const Outcome& outcome,
                            const std::function<std::string()>& tool_id);

// The `data:` lines of one streamed completion: a first chunk with the role, content deltas, a
// last chunk with finish_reason, optionally a usage chunk, then `data: [DONE]`.
class CompletionStream {
 public:
  CompletionStream(std::string id, std::string model, int64_t created)
      : id_(std::move(id)), model_(std::move(model)), created_(created) {}

  std::string start();
  std::string text(std::string_view delta);
  // Any part of a reply: reasoning as reasoning_content deltas, a call as a tool_calls entry
  // (id from `tool_id`, then its arguments in pieces).
  std::string part(const ReplyPart& part, const std::function<std::string()>& tool_id);
  std::string finish(const Outcome& outcome, bool include_usage);
  // A failure after the 200: an error object as a data line.
  static std::string error(std::string_view error_body);

 private:
  std::string chunk(const std::string& choice_delta_json, std::string_view finish_reason);
  std::string id_;
  std::string model_;
  int64_t created_;
  int calls_ = 0;  // tool calls opened so far
};

// GET /v1/models in OpenAI's shape.
std::string models_list_body(std::string_view id, int64_t created);

}  // namespace pensieve::server::openai
