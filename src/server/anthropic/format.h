// Anthropic wire JSON for replies: messages (whole and streamed as SSE frames), token counts,
// models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/errors.h"
#include "server/outcome.h"

namespace pensieve::server::anthropic {

// The non-streaming reply to POST /v1/messages.
std::string message_body(std::string_view id, std::string_view model, std::string_view text,
                         const Outcome& outcome);
// {"input_tokens":N}
std::string count_tokens_body(int64_t input_tokens);

struct ModelInfo {
  std::string id;
  std::string display_name;
  std::string created_at;  // RFC 3339
};
std::string model_body(const ModelInfo& model);
// GET /v1/models with one model (limit, after_id and before_id page through a list of one).
std::string models_list_body(const ModelInfo& model, bool include);

// The SSE frames of one streamed message, in the order the protocol requires: message_start,
// then per content block start/deltas/stop (one block open at a time), message_delta with the
// cumulative usage, message_stop. Each call returns complete frames to write and flush.
class MessageStream {
 public:
  MessageStream(std::string id, std::string model) : id_(std::move(id)), model_(std::move(model)) {}

  std::string start(int64_t input_tokens);
  // A text delta; opens a text block first when none is open.
  std::string text(std::string_view delta);
  std::string finish(const Outcome& outcome);

  static std::string ping();
  // `event: error` after the 200, for a failure mid-stream.
  static std::string error(const ApiError& error);

 private:
  std::string id_;
  std::string model_;
  int block_index_ = -1;  // the open block; -1 before the first
  bool block_open_ = false;
};

}  // namespace pensieve::server::anthropic
