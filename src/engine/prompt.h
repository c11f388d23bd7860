// Turns an InferenceRequest's conversation into prompt tokens with the model's chat template:
// the one path shared by generation and token counting, so the two always agree.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "engine/request.h"
#include "engine/tool_syntax.h"
#include "grammar/token_mask.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {

class PromptRenderer {
 public:
  // Both must outlive the renderer.
  PromptRenderer(const Tokenizer& tokenizer, const ChatTemplate& chat_template)
      : tokenizer_(tokenizer), template_(chat_template) {}

  // The conversation (tools described in a leading system message) rendered with the generation
  // prompt. Errors: no messages, template failures.
  Expected<std::string> render(const InferenceRequest& request) const;
  // render(), then tokenized as the template expects (BOS unless it renders one itself).
  // *opens_thinking (when given): the prompt leaves the reply inside a reasoning block.
  Expected<std::vector<int32_t>> tokens(const InferenceRequest& request,
                                        bool* opens_thinking = nullptr) const;

  // The prompt of a forced call of `tool`: the conversation, then an assistant turn in the
  // model's own format (or the text form) up to where the call's arguments begin.
  Expected<std::vector<int32_t>> tool_call_tokens(const InferenceRequest& request,
                                                  std::string_view tool) const;
  // The prompt of a forced call of any tool: up to where the call object begins.
  Expected<std::vector<int32_t>> call_start_tokens(const InferenceRequest& request) const;
  // How the template writes tool calls, read once on first use (thread-safe); nullopt when it
  // does not write them as JSON objects with a "name".
  const std::optional<ToolCallSyntax>& tool_call_syntax() const;
  // The vocabulary's mask for constrained sampling, built on first use (thread-safe).
  std::shared_ptr<const TokenMask> token_mask() const;

  const Tokenizer& tokenizer() const { return tokenizer_; }
  // The template's end-of-turn texts, to add to a request's stop strings.
  std::span<const std::string_view> stop_strings() const { return template_.stop_strings(); }

 private:
  Expected<std::string> render_chat(ChatRequest chat) const;
  std::vector<int32_t> encode(std::string_view text) const;
  ChatRequest chat_of(const InferenceRequest& request) const;
  // The rendered conversation followed by an assistant turn that calls `tool` with a marker
  // for its arguments.
  Expected<std::string> render_marker_call(const InferenceRequest& request,
                                           std::string_view tool) const;

  const Tokenizer& tokenizer_;
  const ChatTemplate& template_;
  mutable std::once_flag mask_once_;
  mutable std::shared_ptr<const TokenMask> mask_;
  mutable std::once_flag syntax_once_;
  mutable std::optional<ToolCallSyntax> syntax_;
};

}  // namespace pensieve
