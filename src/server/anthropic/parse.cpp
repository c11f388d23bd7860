#include "server/anthropic/parse.h"

#include "server/json_fields.h"

namespace pensieve::server::anthropic {
namespace {

Unexpected<Error> invalid(std::string message) {
  return Unexpected<Error>(Error{ErrorCode::kInvalidArgument, std::move(message)});
}

void append_paragraph(std::string* text, std::string_view part) {
  if (!text->empty()) text->push_back('\n');
  text->append(part);
}

// The text of a tool_result's content: a string, or text blocks.
Expected<std::string> tool_result_text(const Json& block, const std::string& path) {
  auto it = block.find("content");
  if (it == block.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) return invalid(path + ".content: expected a string or an array of blocks");
  std::string text;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& part = (*it)[i];
    const std::string part_path = field_path(path + ".content", i);
    if (!part.is_object()) return invalid(part_path + ": expected an object");
    PV_TRY(auto type, optional_string(part, "type", part_path));
    if (type.value_or("") != "text") {
      return invalid(
          fmt::format("{}: {} blocks in a tool_result are not supported: the loaded "
                      "model reads text only",
                      part_path, type.value_or("untyped")));
    }
    PV_TRY(auto part_text, optional_string(part, "text", part_path));
    append_paragraph(&text, part_text.value_or(""));
  }
  return text;
}

// One message's content blocks sorted into what the conversation holds: its text, an
// assistant's tool calls, and a user's tool results (each its own tool message, before the text).
struct Content {
  std::string text;
  std::vector<ChatToolCall> tool_calls;
  std::vector<ChatMessage> tool_results;
};

// Adds one content block to *content. Thinking blocks from earlier turns are dropped.
Expected<void> add_block(const Json& block, const std::string& path, ChatRole role,
                         Content* content) {
  if (!block.is_object()) return invalid(path + ": expected an object");
  PV_TRY(auto type, optional_string(block, "type", path));
  if (!type) return invalid(path + ".type: required");
  if (*type == "text") {
    PV_TRY(auto block_text, optional_string(block, "text", path));
    if (!block_text) return invalid(path + ".text: required");
    // Claude Code's first system block is billing metadata for Anthropic's API that changes
    // with every conversation; kept, it would make each one's prompt start differently and
    // miss the prefix cache.
    if (role == ChatRole::kSystem && block_text->starts_with("x-anthropic-billing-header:")) {
      return {};
    }
    append_paragraph(&content->text, *block_text);
  } else if (*type == "thinking" || *type == "redacted_thinking") {
    // Earlier reasoning is not part of the prompt.
  } else if (*type == "tool_use") {
    if (role != ChatRole::kAssistant) {
      return invalid(path + ": tool_use blocks belong in assistant messages");
    }
    PV_TRY(auto id, optional_string(block, "id", path));
    PV_TRY(auto name, optional_string(block, "name", path));
    if (!name) return invalid(path + ".name: required");
    auto input = block.find("input");
    if (input != block.end() && !input->is_object()) {
      return invalid(path + ".input: expected an object");
    }
    content->tool_calls.push_back(
        {id.value_or(""), *name, input == block.end() ? "{}" : dump_json(*input)});
  } else if (*type == "tool_result") {
    if (role != ChatRole::kUser) {
      return invalid(path + ": tool_result blocks belong in user messages");
    }
    PV_TRY(auto id, optional_string(block, "tool_use_id", path));
    PV_TRY(auto is_error, optional_bool(block, "is_error", path));
    PV_TRY(std::string result, tool_result_text(block, path));
    content->tool_results.push_back(
        {ChatRole::kTool, std::move(result), {}, id.value_or(""), is_error.value_or(false)});
  } else if (*type == "document") {
    auto source = block.find("source");
    const bool text_source = source != block.end() && source->is_object() &&
                             source->contains("type") && (*source)["type"] == "text";
    if (!text_source) {
      return invalid(path +
                     ": document blocks are supported only with a text source (the "
                     "loaded model reads text only)");
    }
    PV_TRY(auto data, optional_string(*source, "data", path + ".source"));
    append_paragraph(&content->text, data.value_or(""));
  } else {
    return invalid(fmt::format("{}: {} blocks are not supported: the loaded model reads text only",
                               path, *type));
  }
  return {};
}

// A message's or the system prompt's content: a string or an array of blocks.
Expected<Content> parse_content(const Json& json, const std::string& path, ChatRole role) {
  Content content;
  if (json.is_string()) {
    content.text = json.get<std::string>();
    return content;
  }
  if (!json.is_array()) return invalid(path + ": expected a string or an array of blocks");
  for (size_t i = 0; i < json.size(); ++i) {
    PV_TRY_VOID(add_block(json[i], field_path(path, i), role, &content));
  }
  return content;
}

Expected<ChatRole> parse_role(const Json& message, const std::string& path) {
  PV_TRY(auto role, optional_string(message, "role", path));
  if (role.value_or("") == "user") return ChatRole::kUser;
  if (role.value_or("") == "assistant") return ChatRole::kAssistant;
  if (role.value_or("") == "system") return ChatRole::kSystem;
  if (!role) return invalid(path + ".role: required");
  return invalid(fmt::format("{}.role: '{}' is not one of user, assistant, system", path, *role));
}

Expected<void> parse_messages(const Json& body, InferenceRequest* request) {
  auto it = body.find("system");
  if (it != body.end() && !it->is_null()) {
    PV_TRY(Content system, parse_content(*it, "system", ChatRole::kSystem));
    if (!system.text.empty()) {
      request->messages.push_back({ChatRole::kSystem, std::move(system.text), {}, {}, false});
    }
  }
  it = body.find("messages");
  if (it == body.end() || it->is_null()) return invalid("messages: required");
  if (!it->is_array() || it->empty()) return invalid("messages: expected a non-empty array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& message = (*it)[i];
    const std::string path = field_path("messages", i);
    if (!message.is_object()) return invalid(path + ": expected an object");
    PV_TRY(ChatRole role, parse_role(message, path));
    auto json = message.find("content");
    if (json == message.end() || json->is_null()) return invalid(path + ".content: required");
    PV_TRY(Content content, parse_content(*json, path + ".content", role));
    for (ChatMessage& result : content.tool_results) request->messages.push_back(std::move(result));
    if (!content.text.empty() || content.tool_results.empty() || !content.tool_calls.empty()) {
      request->messages.push_back(
          {role, std::move(content.text), std::move(content.tool_calls), {}, false});
    }
  }
  return {};
}

// {"type": "enabled", "budget_tokens": N}, {"type": "adaptive"} or {"type": "disabled"}; other
// types leave the template's default. The budget is not enforced separately: max_tokens bounds
// reasoning and answer together.
Expected<void> parse_thinking(const Json& body, InferenceRequest* request) {
  auto it = body.find("thinking");
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_object()) return invalid("thinking: expected an object");
  PV_TRY(auto type, optional_string(*it, "type", "thinking"));
  if (type.value_or("") == "enabled" || type.value_or("") == "adaptive") {
    request->thinking = true;
  } else if (type.value_or("") == "disabled") {
    request->thinking = false;
  }
  return {};
}

// {"type": "auto" | "any" | "none"} or {"type": "tool", "name": N}, after the tools.
Expected<void> parse_tool_choice(const Json& body, InferenceRequest* request) {
  auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_object()) return invalid("tool_choice: expected an object");
  PV_TRY(auto type, optional_string(*it, "type", "tool_choice"));
  PV_TRY(auto no_parallel, optional_bool(*it, "disable_parallel_tool_use", "tool_choice"));
  request->tool_choice.parallel = !no_parallel.value_or(false);
  const std::string kind = type.value_or("");
  if (kind == "auto") return {};
  if (kind == "none") {
    request->tool_choice.kind = ToolChoice::Kind::kNone;
    return {};
  }
  if (kind != "any" && kind != "tool") {
    return invalid(fmt::format("tool_choice.type: '{}' is not one of auto, any, tool, none", kind));
  }
  if (request->tools.empty()) return invalid("tool_choice: '" + kind + "' needs tools");
  if (kind == "any") {
    request->tool_choice.kind = ToolChoice::Kind::kAny;
    return {};
  }
  PV_TRY(auto name, optional_string(*it, "name", "tool_choice"));
  if (!name) return invalid("tool_choice.name: required");
  for (const ToolSpec& tool : request->tools) {
    if (tool.name == *name) {
      request->tool_choice.kind = ToolChoice::Kind::kTool;
      request->tool_choice.name = *name;
      return {};
    }
  }
  return invalid(fmt::format("tool_choice.name: '{}' is not one of the tools", *name));
}

Expected<void> parse_tools(const Json& body, InferenceRequest* request) {
  auto it = body.find("tools");
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_array()) return invalid("tools: expected an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& tool = (*it)[i];
    const std::string path = field_path("tools", i);
    if (!tool.is_object()) return invalid(path + ": expected an object");
    PV_TRY(auto name, optional_string(tool, "name", path));
    if (!name) return invalid(path + ".name: required");
    auto schema = tool.find("input_schema");
    if (schema == tool.end()) continue;  // a server tool (web search, ...): nothing to render
    PV_TRY(auto description, optional_string(tool, "description", path));
    request->tools.push_back({*name, description.value_or(""), dump_json(*schema)});
  }
  return {};
}

Expected<void> parse_sampling(const Json& body, InferenceRequest* request) {
  SamplingParams& s = request->sampling;
  PV_TRY(auto temperature, optional_number(body, "temperature", "", 0.0, 2.0));
  PV_TRY(auto top_p, optional_number(body, "top_p", "", 0.0, 1.0));
  PV_TRY(auto top_k, optional_integer(body, "top_k", "", 0, INT32_MAX));
  s.temperature = static_cast<float>(temperature.value_or(1.0));
  s.top_p = static_cast<float>(top_p.value_or(1.0));
  s.top_k = static_cast<int32_t>(top_k.value_or(0));
  s.min_p = 0.0f;
  auto it = body.find("stop_sequences");
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_array()) return invalid("stop_sequences: expected an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& stop = (*it)[i];
    if (!stop.is_string() || stop.get_ref<const std::string&>().empty()) {
      return invalid(field_path("stop_sequences", i) + ": expected a non-empty string");
    }
    request->stop_sequences.push_back(stop.get<std::string>());
  }
  return {};
}

}  // namespace

Expected<InferenceRequest> parse_messages_request(std::string_view body, Endpoint endpoint) {
  PV_TRY(Json json, parse_json_object(body));
  InferenceRequest request;
  PV_TRY(auto model, optional_string(json, "model", ""));
  request.model = model.value_or("");
  if (endpoint == Endpoint::kMessages) {
    PV_TRY(auto max_tokens, optional_integer(json, "max_tokens", "", 1, INT64_MAX));
    if (!max_tokens) return invalid("max_tokens: required");
    request.max_tokens = max_tokens;
    PV_TRY(auto stream, optional_bool(json, "stream", ""));
    request.stream = stream.value_or(false);
  }
  PV_TRY_VOID(parse_messages(json, &request));
  PV_TRY_VOID(parse_tools(json, &request));
  PV_TRY_VOID(parse_tool_choice(json, &request));
  PV_TRY_VOID(parse_thinking(json, &request));
  PV_TRY_VOID(parse_sampling(json, &request));
  return request;
}

}  // namespace pensieve::server::anthropic
