#include "engine/prompt.h"

#include <fmt/format.h>

#include "engine/reply_parts.h"
#include "engine/tool_call.h"

namespace pensieve {

ChatRequest PromptRenderer::chat_of(const InferenceRequest& request) const {
  ChatRequest chat;
  chat.bos_token = std::string(tokenizer_.token_text(tokenizer_.bos()));
  chat.eos_token = std::string(tokenizer_.token_text(tokenizer_.eos()));
  chat.messages = request.messages;
  chat.tools = request.tools;
  chat.enable_thinking = request.thinking;
  return chat;
}

Expected<std::string> PromptRenderer::render_chat(ChatRequest chat) const {
  if (template_.renders_tools()) return template_.render(chat);
  return template_.render(with_tools_as_text(chat));
}

std::vector<int32_t> PromptRenderer::encode(std::string_view text) const {
  const bool add_bos = tokenizer_.add_bos_default() && !template_.renders_bos();
  std::vector<int32_t> ids =
      tokenizer_.encode(text, EncodeOptions{.add_bos = add_bos, .parse_special = true});
  if (ids.empty() && tokenizer_.bos() >= 0) ids.push_back(tokenizer_.bos());
  return ids;
}

Expected<std::string> PromptRenderer::render(const InferenceRequest& request) const {
  ChatRequest chat = chat_of(request);
  // A final assistant message is a prefill: the reply continues it.
  if (!chat.messages.empty() && chat.messages.back().role == ChatRole::kAssistant) {
    chat.continue_final_message = true;
    chat.add_generation_prompt = false;
  }
  return render_chat(std::move(chat));
}

Expected<std::vector<int32_t>> PromptRenderer::tokens(const InferenceRequest& request,
                                                      bool* opens_thinking) const {
  PV_TRY(std::string text, render(request));
  if (opens_thinking != nullptr) *opens_thinking = ReplySplitter::prompt_opens_thinking(text);
  return encode(text);
}

Expected<std::vector<int32_t>> PromptRenderer::tool_call_tokens(const InferenceRequest& request,
                                                                std::string_view tool) const {
  // The conversation with one more assistant turn that calls `tool` with a marker for its
  // arguments; the prompt is the rendered text up to the marker's opening brace.
  constexpr std::string_view kMarker = "pensieve_tool_arguments";
  ChatRequest chat = chat_of(request);
  chat.add_generation_prompt = false;
  chat.messages.push_back(
      {ChatRole::kAssistant,
       "",
       {{"toolu_pensieve", std::string(tool), fmt::format(R"({{"{}": 1}})", kMarker)}},
       {},
       false});
  PV_TRY(std::string text, render_chat(std::move(chat)));
  const size_t marker = text.rfind(kMarker);
  const size_t brace = marker == std::string::npos ? marker : text.rfind('{', marker);
  if (brace == std::string::npos) {
    return make_error(ErrorCode::kUnsupported,
                      "tool_choice: the model's chat template does not write tool call "
                      "arguments, so a call of '{}' cannot be forced",
                      tool);
  }
  text.resize(brace);
  return encode(text);
}

std::shared_ptr<const TokenMask> PromptRenderer::token_mask() const {
  std::call_once(mask_once_, [this] { mask_ = make_token_mask(tokenizer_); });
  return mask_;
}

}  // namespace pensieve
