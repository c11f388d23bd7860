// The model's own chat template: the GGUF's tokenizer.chat_template run by the Jinja engine with
// the variables Hugging Face's apply_chat_template passes (messages, tools, add_generation_prompt,
// bos_token, eos_token, enable_thinking), so a model gets exactly the prompt it was trained on,
// tool definitions and tool calls in its own format included.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jinja/jinja.h"
#include "tokenizer/chat_template.h"

namespace pensieve {

class JinjaChatTemplate final : public ChatTemplate {
 public:
  // Parses `text`; `fallback` (a built-in for the same family, or ChatML) renders when the
  // template fails at run time on something the engine does not support.
  static Expected<std::unique_ptr<JinjaChatTemplate>> make(std::string_view text,
                                                           std::unique_ptr<ChatTemplate> fallback);

  std::string_view name() const override { return "model"; }
  bool renders_bos() const override { return renders_bos_; }
  std::span<const std::string_view> stop_strings() const override { return stop_strings_; }
  bool renders_tools() const override { return renders_tools_; }
  // The built-in used when rendering fails; its name says which family the template looks like.
  const ChatTemplate& fallback() const { return *fallback_; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override;

 private:
  JinjaChatTemplate(jinja::Template parsed, std::string_view text,
                    std::unique_ptr<ChatTemplate> fallback);

  jinja::Template template_;
  std::unique_ptr<ChatTemplate> fallback_;
  bool renders_bos_ = false;
  bool renders_tools_ = false;
  std::vector<std::string_view> stop_strings_;
};

// The template's variables for one request (exposed for tests).
jinja::Value chat_context(const ChatRequest& request);

}  // namespace pensieve
