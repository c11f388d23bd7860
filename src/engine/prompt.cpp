#include "engine/prompt.h"

#include <fmt/format.h>

namespace pensieve {

std::string describe_tools(const std::vector<ToolSpec>& tools) {
  if (tools.empty()) return {};
  std::string text = "You can use these tools:\n";
  for (const ToolSpec& tool : tools) {
    fmt::format_to(std::back_inserter(text), "\n- {}: {}\n  input schema: {}\n", tool.name,
                   tool.description, tool.input_schema_json);
  }
  return text;
}

Expected<std::string> PromptRenderer::render(const InferenceRequest& request) const {
  ChatRequest chat;
  chat.bos_token = std::string(tokenizer_.token_text(tokenizer_.bos()));
  chat.eos_token = std::string(tokenizer_.token_text(tokenizer_.eos()));
  chat.messages.reserve(request.messages.size() + 1);
  const std::string tools = describe_tools(request.tools);
  if (!tools.empty()) {
    // Joined to the system prompt, since several templates keep only one system message.
    auto first = request.messages.begin();
    if (first != request.messages.end() && first->role == ChatRole::kSystem) {
      chat.messages.push_back({ChatRole::kSystem, first->content + "\n\n" + tools, {}, {}});
      ++first;
    } else {
      chat.messages.push_back({ChatRole::kSystem, tools, {}, {}});
    }
    chat.messages.insert(chat.messages.end(), first, request.messages.end());
  } else {
    chat.messages = request.messages;
  }
  return template_.render(chat);
}

Expected<std::vector<int32_t>> PromptRenderer::tokens(const InferenceRequest& request) const {
  PV_TRY(std::string text, render(request));
  const bool add_bos = tokenizer_.add_bos_default() && !template_.renders_bos();
  std::vector<int32_t> ids =
      tokenizer_.encode(text, EncodeOptions{.add_bos = add_bos, .parse_special = true});
  if (ids.empty() && tokenizer_.bos() >= 0) ids.push_back(tokenizer_.bos());
  return ids;
}

}  // namespace pensieve
