// OpenAI wire JSON for replies: chat completions (whole and as `data:` chunks), models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/outcome.h"

namespace pensieve::server::openai {

std::string completion_body(std::string_view id, std::string_view model, int64_t created,
                            std::string_view text, const Outcome& outcome);

// The `data:` lines of one streamed completion: a first chunk with the role, content deltas, a
// last chunk with finish_reason, optionally a usage chunk, then `data: [DONE]`.
class CompletionStream {
 public:
  CompletionStream(std::string id, std::string model, int64_t created)
      : id_(std::move(id)), model_(std::move(model)), created_(created) {}

  std::string start();
  std::string text(std::string_view delta);
  std::string finish(const Outcome& outcome, bool include_usage);
  // A failure after the 200: an error object as a data line.
  static std::string error(std::string_view error_body);

 private:
  std::string chunk(const std::string& choice_delta_json, std::string_view finish_reason);
  std::string id_;
  std::string model_;
  int64_t created_;
};

// GET /v1/models in OpenAI's shape.
std::string models_list_body(std::string_view id, int64_t created);

}  // namespace pensieve::server::openai
