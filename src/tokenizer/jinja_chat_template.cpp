#include "tokenizer/jinja_chat_template.h"

#include <array>
#include <unordered_map>

#include "core/log.h"

namespace pensieve {
namespace {

// End-of-turn texts of the common families; those a template writes are its stop strings.
constexpr std::array<std::string_view, 7> kTurnEnds = {
    "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "</s>"};

// Tool-call arguments as the template expects them: a dict (HF passes parsed JSON); the raw
// text when it is not JSON.
jinja::Value arguments_value(const std::string& json) {
  Expected<jinja::Value> parsed = jinja::parse_json(json);
  return parsed ? *parsed : jinja::Value(json);
}

jinja::Value message_value(const ChatMessage& message,
                           const std::unordered_map<std::string, std::string>& call_names) {
  jinja::Value m = jinja::Value::dict(
      {{"role", std::string(chat_role_name(message.role))}, {"content", message.content}});
  if (!message.tool_calls.empty()) {
    jinja::Value calls = jinja::Value::list();
    for (const ChatToolCall& call : message.tool_calls) {
      calls.push_back(jinja::Value::dict(
          {{"id", call.id},
           {"type", "function"},
           {"function",
            jinja::Value::dict(
                {{"name", call.name}, {"arguments", arguments_value(call.arguments_json)}})}}));
    }
    m.set("tool_calls", calls);
  }
  if (message.role == ChatRole::kTool) {
    m.set("tool_call_id", message.tool_call_id);
    if (auto it = call_names.find(message.tool_call_id); it != call_names.end()) {
      m.set("name", it->second);
    }
  }
  return m;
}

}  // namespace

jinja::Value chat_context(const ChatRequest& request) {
  std::unordered_map<std::string, std::string> call_names;  // tool call id -> tool name
  jinja::Value messages = jinja::Value::list();
  for (const ChatMessage& message : request.messages) {
    for (const ChatToolCall& call : message.tool_calls) call_names[call.id] = call.name;
    messages.push_back(message_value(message, call_names));
  }
  jinja::Value context =
      jinja::Value::dict({{"messages", messages},
                          {"add_generation_prompt", request.add_generation_prompt},
                          {"bos_token", request.bos_token},
                          {"eos_token", request.eos_token}});
  if (request.tools.empty()) {
    context.set("tools", jinja::Value::none());
  } else {
    jinja::Value tools = jinja::Value::list();
    for (const ChatTool& tool : request.tools) {
      tools.push_back(jinja::Value::dict(
          {{"type", "function"},
           {"function",
            jinja::Value::dict({{"name", tool.name},
                                {"description", tool.description},
                                {"parameters", arguments_value(tool.parameters_json)}})}}));
    }
    context.set("tools", tools);
  }
  if (request.enable_thinking) context.set("enable_thinking", *request.enable_thinking);
  return context;
}

Expected<std::unique_ptr<JinjaChatTemplate>> JinjaChatTemplate::make(
    std::string_view text, std::unique_ptr<ChatTemplate> fallback) {
  PV_TRY(jinja::Template parsed, jinja::Template::parse(text));
  return std::unique_ptr<JinjaChatTemplate>(
      new JinjaChatTemplate(std::move(parsed), text, std::move(fallback)));
}

JinjaChatTemplate::JinjaChatTemplate(jinja::Template parsed, std::string_view text,
                                     std::unique_ptr<ChatTemplate> fallback)
    : ChatTemplate(ChatTemplateSource::kModel),
      template_(std::move(parsed)),
      fallback_(std::move(fallback)),
      renders_bos_(text.find("bos_token") != std::string_view::npos),
      renders_tools_(text.find("tools") != std::string_view::npos) {
  for (std::string_view end : kTurnEnds) {
    if (text.find(end) != std::string_view::npos) stop_strings_.push_back(end);
  }
}

Expected<std::string> JinjaChatTemplate::render_validated(const ChatRequest& request) const {
  const jinja::Value context = chat_context(request);
  if (request.continue_final_message) context.set("add_generation_prompt", false);
  Expected<std::string> rendered = template_.render(context);
  if (!rendered) {
    if (rendered.error().code != ErrorCode::kInvalidFormat) {
      // The template refused the conversation (raise_exception) or hit a limit.
      return make_error(rendered.error().code, "chat template: {}", rendered.error().message);
    }
    log::warn("chat template: the model's template failed ({}); rendering with '{}' instead",
              rendered.error().message, fallback_->name());
    return fallback_->render(request.tools.empty() && !has_tool_messages(request)
                                 ? request
                                 : with_tools_as_text(request));
  }
  if (!request.continue_final_message) return rendered;
  // As apply_chat_template does: cut the text right after the final message's content.
  std::string_view final_text = request.messages.back().content;
  const size_t first = final_text.find_first_not_of(" \t\r\n");
  const size_t last = final_text.find_last_not_of(" \t\r\n");
  final_text = first == std::string_view::npos ? std::string_view()
                                               : final_text.substr(first, last - first + 1);
  const size_t at = rendered->rfind(final_text);
  if (at == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "chat template: the final assistant message does not appear in the "
                      "rendered prompt, so it cannot be continued");
  }
  rendered->resize(at + final_text.size());
  return rendered;
}

}  // namespace pensieve
