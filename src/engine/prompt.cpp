#include "engine/prompt.h"

#include <fmt/format.h>

#include "engine/reply_parts.h"

namespace pensieve {

std::string describe_tools(const std::vector<ToolSpec>& tools) {
  if (tools.empty()) return {};
  std::string text = "You can use these tools:\n";
  for (const ToolSpec& tool : tools) {
    fmt::format_to(std::back_inserter(text), "\n- {}: {}\n  input schema: {}\n", tool.name,
                   tool.description, tool.parameters_json);
  }
  return text;
}

std::vector<ChatMessage> tools_as_text(const std::vector<ChatMessage>& messages) {
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    ChatMessage m{message.role, message.content, {}, {}, false};
    for (const ChatToolCall& call : message.tool_calls) {
      if (!m.content.empty()) m.content.push_back('\n');
      fmt::format_to(std::back_inserter(m.content), "[tool_use id={} name={}] {}", call.id,
                     call.name, call.arguments_json);
    }
    if (message.role == ChatRole::kTool) {
      m.role = ChatRole::kUser;
      m.content = fmt::format("[tool_result id={}{}] {}", message.tool_call_id,
                              message.tool_error ? " error" : "", message.content);
    }
    // A turn's tool results and its text: one user message, as the client sent them.
    if (m.role == ChatRole::kUser && i > 0 && messages[i - 1].role == ChatRole::kTool) {
      out.back().content += "\n" + m.content;
    } else {
      out.push_back(std::move(m));
    }
  }
  return out;
}

Expected<std::string> PromptRenderer::render(const InferenceRequest& request) const {
  ChatRequest chat;
  chat.bos_token = std::string(tokenizer_.token_text(tokenizer_.bos()));
  chat.eos_token = std::string(tokenizer_.token_text(tokenizer_.eos()));
  if (template_.renders_tools()) {
    chat.messages = request.messages;
    chat.tools = request.tools;
    return template_.render(chat);
  }
  const std::vector<ChatMessage> messages = tools_as_text(request.messages);
  chat.messages.reserve(messages.size() + 1);
  const std::string tools = describe_tools(request.tools);
  if (!tools.empty()) {
    // Joined to the system prompt, since several templates keep only one system message.
    auto first = messages.begin();
    if (first != messages.end() && first->role == ChatRole::kSystem) {
      chat.messages.push_back({ChatRole::kSystem, first->content + "\n\n" + tools, {}, {}, false});
      ++first;
    } else {
      chat.messages.push_back({ChatRole::kSystem, tools, {}, {}, false});
    }
    chat.messages.insert(chat.messages.end(), first, messages.end());
  } else {
    chat.messages = messages;
  }
  return template_.render(chat);
}

Expected<std::vector<int32_t>> PromptRenderer::tokens(const InferenceRequest& request,
                                                      bool* opens_thinking) const {
  PV_TRY(std::string text, render(request));
  if (opens_thinking != nullptr) *opens_thinking = ReplySplitter::prompt_opens_thinking(text);
  const bool add_bos = tokenizer_.add_bos_default() && !template_.renders_bos();
  std::vector<int32_t> ids =
      tokenizer_.encode(text, EncodeOptions{.add_bos = add_bos, .parse_special = true});
  if (ids.empty() && tokenizer_.bos() >= 0) ids.push_back(tokenizer_.bos());
  return ids;
}

}  // namespace pensieve
