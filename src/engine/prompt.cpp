#include "engine/prompt.h"

#include <fmt/format.h>

#include "engine/reply_parts.h"

namespace pensieve {

Expected<std::string> PromptRenderer::render(const InferenceRequest& request) const {
  ChatRequest chat;
  chat.bos_token = std::string(tokenizer_.token_text(tokenizer_.bos()));
  chat.eos_token = std::string(tokenizer_.token_text(tokenizer_.eos()));
  chat.messages = request.messages;
  chat.tools = request.tools;
  chat.enable_thinking = request.thinking;
  // A final assistant message is a prefill: the reply continues it.
  if (!chat.messages.empty() && chat.messages.back().role == ChatRole::kAssistant) {
    chat.continue_final_message = true;
    chat.add_generation_prompt = false;
  }
  if (template_.renders_tools()) return template_.render(chat);
  return template_.render(with_tools_as_text(chat));
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
