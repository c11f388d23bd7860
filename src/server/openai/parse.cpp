#include "server/openai/parse.h"

#include "server/json_fields.h"

namespace pensieve::server::openai {
namespace {

Unexpected<Error> invalid(std::string message) {
  return Unexpected<Error>(Error{ErrorCode::kInvalidArgument, std::move(message)});
}

// content: a string, null, or an array of parts of which only text is supported.
Expected<std::string> content_text(const Json& message, const std::string& path) {
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) return invalid(path + ".content: expected a string or an array of parts");
  std::string text;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& part = (*it)[i];
    const std::string part_path = field_path(path + ".content", i);
    if (!part.is_object()) return invalid(part_path + ": expected an object");
    PV_TRY(auto type, optional_string(part, "type", part_path));
    if (type.value_or("") != "text") {
      return invalid(fmt::format("{}: {} parts are not supported: the loaded model reads text only",
                                 part_path, type.value_or("untyped")));
    }
    PV_TRY(auto part_text, optional_string(part, "text", part_path));
    if (!text.empty()) text.push_back('\n');
    text += part_text.value_or("");
  }
  return text;
}

// An assistant message's tool_calls.
Expected<void> parse_tool_calls(const Json& message, const std::string& path,
                                std::vector<ChatToolCall>* calls) {
  auto it = message.find("tool_calls");
  if (it == message.end() || it->is_null()) return {};
  if (!it->is_array()) return invalid(path + ".tool_calls: expected an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& call = (*it)[i];
    const std::string call_path = field_path(path + ".tool_calls", i);
    if (!call.is_object()) return invalid(call_path + ": expected an object");
    PV_TRY(auto id, optional_string(call, "id", call_path));
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) {
      return invalid(call_path + ".function: required");
    }
    PV_TRY(auto name, optional_string(*function, "name", call_path + ".function"));
    PV_TRY(auto arguments, optional_string(*function, "arguments", call_path + ".function"));
    if (!name) return invalid(call_path + ".function.name: required");
    calls->push_back({id.value_or(""), *name, arguments.value_or("{}")});
  }
  return {};
}

Expected<void> parse_messages(const Json& body, InferenceRequest* request) {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) return invalid("messages: required");
  if (!it->is_array() || it->empty()) return invalid("messages: expected a non-empty array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& message = (*it)[i];
    const std::string path = field_path("messages", i);
    if (!message.is_object()) return invalid(path + ": expected an object");
    PV_TRY(auto role, optional_string(message, "role", path));
    PV_TRY(std::string text, content_text(message, path));
    if (role.value_or("") == "system" || role.value_or("") == "developer") {
      request->messages.push_back({ChatRole::kSystem, std::move(text), {}, {}, false});
    } else if (role.value_or("") == "user") {
      request->messages.push_back({ChatRole::kUser, std::move(text), {}, {}, false});
    } else if (role.value_or("") == "assistant") {
      std::vector<ChatToolCall> calls;
      PV_TRY_VOID(parse_tool_calls(message, path, &calls));
      request->messages.push_back(
          {ChatRole::kAssistant, std::move(text), std::move(calls), {}, false});
    } else if (role.value_or("") == "tool") {
      PV_TRY(auto id, optional_string(message, "tool_call_id", path));
      request->messages.push_back({ChatRole::kTool, std::move(text), {}, id.value_or(""), false});
    } else if (!role) {
      return invalid(path + ".role: required");
    } else {
      return invalid(fmt::format(
          "{}.role: '{}' is not one of system, developer, user, assistant, tool", path, *role));
    }
  }
  return {};
}

// [{"type": "function", "function": {"name", "description", "parameters"}}]
Expected<void> parse_tools(const Json& body, InferenceRequest* request) {
  auto it = body.find("tools");
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_array()) return invalid("tools: expected an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& tool = (*it)[i];
    const std::string path = field_path("tools", i);
    if (!tool.is_object()) return invalid(path + ": expected an object");
    PV_TRY(auto type, optional_string(tool, "type", path));
    if (type.value_or("function") != "function") {
      return invalid(
          fmt::format("{}.type: '{}' is not supported (only function tools)", path, *type));
    }
    auto function = tool.find("function");
    if (function == tool.end() || !function->is_object()) {
      return invalid(path + ".function: required");
    }
    const std::string fpath = path + ".function";
    PV_TRY(auto name, optional_string(*function, "name", fpath));
    if (!name || name->empty()) return invalid(fpath + ".name: required");
    PV_TRY(auto description, optional_string(*function, "description", fpath));
    auto parameters = function->find("parameters");
    if (parameters != function->end() && !parameters->is_object()) {
      return invalid(fpath + ".parameters: expected an object");
    }
    request->tools.push_back({*name, description.value_or(""),
                              parameters == function->end() ? "{}" : dump_json(*parameters)});
  }
  return {};
}

Expected<void> parse_stop(const Json& body, InferenceRequest* request) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return {};
  if (it->is_string()) {
    if (!it->get_ref<const std::string&>().empty()) request->stop_sequences.push_back(*it);
    return {};
  }
  if (!it->is_array()) return invalid("stop: expected a string or an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) return invalid(field_path("stop", i) + ": expected a string");
    if (!(*it)[i].get_ref<const std::string&>().empty()) {
      request->stop_sequences.push_back((*it)[i]);
    }
  }
  return {};
}

Expected<void> parse_sampling(const Json& body, InferenceRequest* request) {
  SamplingParams& s = request->sampling;
  PV_TRY(auto temperature, optional_number(body, "temperature", "", 0.0, 2.0));
  PV_TRY(auto top_p, optional_number(body, "top_p", "", 0.0, 1.0));
  PV_TRY(auto frequency, optional_number(body, "frequency_penalty", "", -2.0, 2.0));
  PV_TRY(auto presence, optional_number(body, "presence_penalty", "", -2.0, 2.0));
  PV_TRY(auto seed, optional_integer(body, "seed", "", INT64_MIN, INT64_MAX));
  s.temperature = static_cast<float>(temperature.value_or(1.0));
  s.top_p = static_cast<float>(top_p.value_or(1.0));
  s.top_k = 0;
  s.min_p = 0.0f;
  s.frequency_penalty = static_cast<float>(frequency.value_or(0.0));
  s.presence_penalty = static_cast<float>(presence.value_or(0.0));
  if (seed) s.seed = static_cast<uint64_t>(*seed);
  return {};
}

// "auto" | "none" | "required" or {"type": "function", "function": {"name": N}}, after the
// tools; parallel_tool_calls false allows one call per reply.
Expected<void> parse_tool_choice(const Json& body, InferenceRequest* request) {
  PV_TRY(auto parallel, optional_bool(body, "parallel_tool_calls", ""));
  request->tool_choice.parallel = parallel.value_or(true);
  auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return {};
  if (it->is_string()) {
    const std::string kind = it->get<std::string>();
    if (kind == "auto") return {};
    if (kind == "none") {
      request->tool_choice.kind = ToolChoice::Kind::kNone;
      return {};
    }
    if (kind != "required") {
      return invalid(fmt::format("tool_choice: '{}' is not one of auto, none, required", kind));
    }
    if (request->tools.empty()) return invalid("tool_choice: 'required' needs tools");
    request->tool_choice.kind = ToolChoice::Kind::kAny;
    return {};
  }
  if (!it->is_object()) return invalid("tool_choice: expected a string or an object");
  auto function = it->find("function");
  if (function == it->end() || !function->is_object()) {
    return invalid("tool_choice.function: required");
  }
  PV_TRY(auto name, optional_string(*function, "name", "tool_choice.function"));
  if (!name) return invalid("tool_choice.function.name: required");
  for (const ToolSpec& tool : request->tools) {
    if (tool.name == *name) {
      request->tool_choice.kind = ToolChoice::Kind::kTool;
      request->tool_choice.name = *name;
      return {};
    }
  }
  return invalid(fmt::format("tool_choice.function.name: '{}' is not one of the tools", *name));
}

}  // namespace

Expected<InferenceRequest> parse_chat_request(std::string_view body) {
  PV_TRY(Json json, parse_json_object(body));
  InferenceRequest request;
  PV_TRY(auto model, optional_string(json, "model", ""));
  request.model = model.value_or("");
  PV_TRY(auto max_completion, optional_integer(json, "max_completion_tokens", "", 1, INT64_MAX));
  PV_TRY(auto max_tokens, optional_integer(json, "max_tokens", "", 1, INT64_MAX));
  request.max_tokens = max_completion ? max_completion : max_tokens;
  PV_TRY(auto n, optional_integer(json, "n", "", 1, 1));
  (void)n;
  PV_TRY(auto stream, optional_bool(json, "stream", ""));
  request.stream = stream.value_or(false);
  auto options = json.find("stream_options");
  if (options != json.end() && options->is_object()) {
    PV_TRY(auto include_usage, optional_bool(*options, "include_usage", "stream_options"));
    request.include_usage = include_usage.value_or(false);
  }
  PV_TRY_VOID(parse_messages(json, &request));
  PV_TRY_VOID(parse_tools(json, &request));
  PV_TRY_VOID(parse_tool_choice(json, &request));
  PV_TRY_VOID(parse_stop(json, &request));
  PV_TRY_VOID(parse_sampling(json, &request));
  return request;
}

}  // namespace pensieve::server::openai
