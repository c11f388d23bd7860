#include "server/anthropic/format.h"

#include "server/json_fields.h"

namespace pensieve::server::anthropic {
namespace {

// Anthropic counts the prompt in three parts that add up to it: input_tokens (neither read from
// nor written to the cache), cache_creation_input_tokens and cache_read_input_tokens.
Json usage_json(const Outcome& o) {
  return {{"input_tokens", o.input_tokens - o.cache_read_tokens - o.cache_creation_tokens},
          {"output_tokens", o.output_tokens},
          {"cache_creation_input_tokens", o.cache_creation_tokens},
          {"cache_read_input_tokens", o.cache_read_tokens}};
}

// message_start's usage: the prompt is known, the cache's part of it not yet.
Outcome prompt_only(int64_t input_tokens) {
  Outcome o;
  o.input_tokens = input_tokens;
  return o;
}

Json stop_sequence_json(const Outcome& outcome) {
  if (outcome.finish != Finish::kStopSequence) return nullptr;
  return outcome.stop_sequence;
}

std::string frame(std::string_view event, const Json& data) {
  std::string out = "event: ";
  out += event;
  out += "\ndata: ";
  out += dump_json(data);
  out += "\n\n";
  return out;
}

}  // namespace

std::string thinking_signature(std::string_view thinking) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
  for (const char c : thinking) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  return fmt::format("pensieve-{:016x}", hash);
}

std::string message_body(std::string_view id, std::string_view model,
                         const std::vector<ReplyPart>& parts, const Outcome& outcome,
                         const std::function<std::string()>& tool_id) {
  Json content = Json::array();
  std::string call_name, call_input;
  for (const ReplyPart& part : parts) {
    switch (part.kind) {
      case ReplyPart::Kind::kThinking:
        content.push_back({{"type", "thinking"},
                           {"thinking", part.text},
                           {"signature", thinking_signature(part.text)}});
        break;
      case ReplyPart::Kind::kText:
        if (!part.text.empty()) content.push_back({{"type", "text"}, {"text", part.text}});
        break;
      case ReplyPart::Kind::kToolCall:
        call_name = part.text;
        call_input.clear();
        break;
      case ReplyPart::Kind::kToolInput:
        call_input += part.text;
        break;
      case ReplyPart::Kind::kToolEnd: {
        // The input was generated under its schema's grammar; a call cut short (max_tokens) is
        // not valid JSON and is left out: no invalid input leaves the server.
        Json input = Json::parse(call_input, nullptr, false);
        if (!input.is_discarded() && input.is_object()) {
          content.push_back(
              {{"type", "tool_use"}, {"id", tool_id()}, {"name", call_name}, {"input", input}});
        }
        break;
      }
    }
  }
  const Json body = {{"id", id},
                     {"type", "message"},
                     {"role", "assistant"},
                     {"model", model},
                     {"content", std::move(content)},
                     {"stop_reason", anthropic_stop_reason(outcome.finish)},
                     {"stop_sequence", stop_sequence_json(outcome)},
                     {"usage", usage_json(outcome)}};
  return dump_json(body);
}

std::string count_tokens_body(int64_t input_tokens) {
  return dump_json(Json{{"input_tokens", input_tokens}});
}

std::string model_body(const ModelInfo& model) {
  return dump_json(Json{{"type", "model"},
                        {"id", model.id},
                        {"display_name", model.display_name},
                        {"created_at", model.created_at}});
}

std::string models_list_body(const ModelInfo& model, bool include) {
  Json data = Json::array();
  if (include) data.push_back(Json::parse(model_body(model)));
  Json body = {{"data", std::move(data)}, {"has_more", false}};
  body["first_id"] = include ? Json(model.id) : Json(nullptr);
  body["last_id"] = include ? Json(model.id) : Json(nullptr);
  return dump_json(body);
}

std::string MessageStream::start(int64_t input_tokens) {
  const Json message = {{"id", id_},
                        {"type", "message"},
                        {"role", "assistant"},
                        {"model", model_},
                        {"content", Json::array()},
                        {"stop_reason", nullptr},
                        {"stop_sequence", nullptr},
                        {"usage", usage_json(prompt_only(input_tokens))}};
  return frame("message_start", {{"type", "message_start"}, {"message", message}});
}

std::string MessageStream::close() {
  std::string out;
  if (open_ == Block::kThinking) {
    out += frame(
        "content_block_delta",
        {{"type", "content_block_delta"},
         {"index", block_index_},
         {"delta", {{"type", "signature_delta"}, {"signature", thinking_signature(thinking_)}}}});
    thinking_.clear();
  }
  if (open_ != Block::kNone) {
    out += frame("content_block_stop", {{"type", "content_block_stop"}, {"index", block_index_}});
  }
  open_ = Block::kNone;
  return out;
}

std::string MessageStream::open(Block kind) {
  if (open_ == kind) return {};
  std::string out = close();
  ++block_index_;
  open_ = kind;
  const Json block = kind == Block::kThinking
                         ? Json{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}
                         : Json{{"type", "text"}, {"text", ""}};
  out +=
      frame("content_block_start",
            {{"type", "content_block_start"}, {"index", block_index_}, {"content_block", block}});
  return out;
}

std::string MessageStream::tool_use(std::string_view id, std::string_view name) {
  std::string out = close();
  ++block_index_;
  open_ = Block::kToolUse;
  out += frame("content_block_start",
               {{"type", "content_block_start"},
                {"index", block_index_},
                {"content_block",
                 {{"type", "tool_use"}, {"id", id}, {"name", name}, {"input", Json::object()}}}});
  return out;
}

std::string MessageStream::input_json(std::string_view partial) {
  return frame("content_block_delta",
               {{"type", "content_block_delta"},
                {"index", block_index_},
                {"delta", {{"type", "input_json_delta"}, {"partial_json", partial}}}});
}

std::string MessageStream::part(const ReplyPart& part,
                                const std::function<std::string()>& tool_id) {
  switch (part.kind) {
    case ReplyPart::Kind::kThinking:
      return thinking(part.text);
    case ReplyPart::Kind::kText:
      return part.text.empty() ? std::string() : text(part.text);
    case ReplyPart::Kind::kToolCall:
      return tool_use(tool_id(), part.text);
    case ReplyPart::Kind::kToolInput:
      return input_json(part.text);
    case ReplyPart::Kind::kToolEnd:
      return close();
  }
  return {};
}

std::string MessageStream::text(std::string_view delta) {
  std::string out = open(Block::kText);
  out += frame("content_block_delta", {{"type", "content_block_delta"},
                                       {"index", block_index_},
                                       {"delta", {{"type", "text_delta"}, {"text", delta}}}});
  return out;
}

std::string MessageStream::thinking(std::string_view delta) {
  std::string out = open(Block::kThinking);
  thinking_ += delta;
  out +=
      frame("content_block_delta", {{"type", "content_block_delta"},
                                    {"index", block_index_},
                                    {"delta", {{"type", "thinking_delta"}, {"thinking", delta}}}});
  return out;
}

std::string MessageStream::finish(const Outcome& outcome) {
  std::string out = close();
  out += frame("message_delta", {{"type", "message_delta"},
                                 {"delta",
                                  {{"stop_reason", anthropic_stop_reason(outcome.finish)},
                                   {"stop_sequence", stop_sequence_json(outcome)}}},
                                 {"usage", usage_json(outcome)}});
  out += frame("message_stop", {{"type", "message_stop"}});
  return out;
}

std::string MessageStream::ping() { return frame("ping", {{"type", "ping"}}); }

std::string MessageStream::error(const ApiError& error) {
  return frame("error",
               {{"type", "error"}, {"error", {{"type", error.type}, {"message", error.message}}}});
}

}  // namespace pensieve::server::anthropic
