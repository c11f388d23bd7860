// Anthropic wire JSON for replies: messages (whole and streamed as SSE frames), token counts,
// models.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "engine/reply_parts.h"
#include "server/errors.h"
#include "server/outcome.h"

namespace pensieve::server::anthropic {

// The non-streaming reply to POST /v1/messages: the reply's parts as content blocks in order
// (thinking with its signature, text, tool_use with ids from `tool_id`).
std::string message_body(std::string_view id, std::string_view model,
                         const std::vector<ReplyPart>& parts, const Outcome& outcome,
                         const std::function<std::string()>& tool_id);

// The opaque signature of a thinking block: it lets a client send the block back unchanged;
// pensieve drops earlier reasoning from prompts, so it only has to be stable.
std::string thinking_signature(std::string_view thinking);
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
  // A reasoning delta; opens a thinking block first. The block ends with a signature_delta.
  std::string thinking(std::string_view delta);
  // Opens a tool_use block (input {} at the start, as the protocol has it).
  std::string tool_use(std::string_view id, std::string_view name);
  // A piece of the open tool_use block's input JSON.
  std::string input_json(std::string_view partial);
  // Any part of a reply: kToolCall opens a tool_use block with an id from `tool_id`.
  std::string part(const ReplyPart& part, const std::function<std::string()>& tool_id);
  std::string finish(const Outcome& outcome);

  static std::string ping();
  // `event: error` after the 200, for a failure mid-stream.
  static std::string error(const ApiError& error);

 private:
  std::string id_;
  std::string model_;
  enum class Block { kNone, kText, kThinking, kToolUse };
  // Opens a block of `kind` unless one is open; closes a block of another kind first.
  std::string open(Block kind);
  std::string close();

  int block_index_ = -1;  // the open block; -1 before the first
  Block open_ = Block::kNone;
  std::string thinking_;  // the open thinking block's text, for its signature
};

}  // namespace pensieve::server::anthropic
