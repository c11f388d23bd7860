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

namespace {

constexpr std::string_view kArgumentsMarker = "pensieve_tool_arguments";
constexpr std::string_view kNameMarker = "pensieve_tool_name";

}  // namespace

Expected<std::string> PromptRenderer::render_marker_call(const InferenceRequest& request,
                                                         std::string_view tool) const {
  ChatRequest chat = chat_of(request);
  chat.add_generation_prompt = false;
  // Nine alphanumerics: the id form Mistral's templates insist on.
  chat.messages.push_back(
      {ChatRole::kAssistant,
       "",
       {{"pensieve0", std::string(tool), fmt::format(R"({{"{}": 1}})", kArgumentsMarker)}},
       {},
       false});
  return render_chat(std::move(chat));
}

Expected<std::vector<int32_t>> PromptRenderer::tool_call_tokens(const InferenceRequest& request,
                                                                std::string_view tool) const {
  // The prompt is the rendered text up to the marker's opening brace.
  PV_TRY(std::string text, render_marker_call(request, tool));
  const size_t marker = text.rfind(kArgumentsMarker);
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

Expected<std::vector<int32_t>> PromptRenderer::call_start_tokens(
    const InferenceRequest& request) const {
  if (!tool_call_syntax()) {
    return make_error(ErrorCode::kUnsupported,
                      "tool_choice any: the model's chat template does not write tool calls as "
                      "JSON objects with a name");
  }
  // The prompt is the rendered text up to the call object's opening brace.
  PV_TRY(std::string text, render_marker_call(request, kNameMarker));
  const size_t name = text.rfind(json_quote(kNameMarker));
  const size_t brace = name == std::string::npos ? name : text.rfind('{', name);
  if (brace == std::string::npos) {
    return make_error(ErrorCode::kInternal, "tool_choice any: the call object was not found");
  }
  text.resize(brace);
  return encode(text);
}

const std::optional<ToolCallSyntax>& PromptRenderer::tool_call_syntax() const {
  std::call_once(syntax_once_, [this] {
    InferenceRequest request;
    request.messages.push_back({ChatRole::kUser, "Call the tool.", {}, {}, false});
    request.tools.push_back(
        {std::string(kNameMarker), "A tool.", R"({"type":"object","properties":{}})"});
    auto prompt = render(request);
    auto with_call = render_marker_call(request, kNameMarker);
    if (!prompt || !with_call) return;
    syntax_ = read_tool_call_syntax(*prompt, *with_call, kNameMarker, kArgumentsMarker,
                                    template_.stop_strings());
  });
  return syntax_;
}

std::shared_ptr<const TokenMask> PromptRenderer::token_mask() const {
  std::call_once(mask_once_, [this] { mask_ = make_token_mask(tokenizer_); });
  return mask_;
}

}  // namespace pensieve
