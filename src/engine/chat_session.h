// A multi-turn chat over one Forward: keeps the conversation, renders it with the model's chat
// template each turn, and keeps the KV cache between turns so a turn evaluates only what it adds.
// Used by `pensieve run --chat`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "engine/generate.h"
#include "model/forward.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {

struct ChatTurnResult {
  std::string reply;            // the assistant's text, as streamed
  GenerateResult generation;    // n_prompt: the tokens this turn fed to the model
  int64_t n_prompt_tokens = 0;  // the whole rendered conversation, in tokens
  int64_t n_reused_tokens = 0;  // of those, already in the KV cache from earlier turns
  // The earlier conversation did not fit the context with this message: it was dropped first,
  // and this turn started over. n_dropped_tokens is what the whole conversation needed.
  bool restarted = false;
  int64_t n_dropped_tokens = 0;
  // The reply filled the context; the conversation was cleared after it.
  bool context_full = false;
};

class ChatSession {
 public:
  // All three must outlive the session, which owns `forward`'s state from now on. An empty
  // system prompt sends no system message.
  ChatSession(Forward& forward, const Tokenizer& tokenizer, const ChatTemplate& chat_template,
              std::string system_prompt);

  // Adds the user's message, renders the conversation with the generation prompt, feeds the
  // tokens that are not in the KV cache yet (all of them, after a reset, when the rendering no
  // longer extends what was evaluated), generates the reply through `on_text` and adds it to the
  // conversation. The template's stop strings are added to options.stop_strings.
  // Errors: the message alone does not fit the context (the conversation is cleared), template
  // and forward failures (the conversation is left as it was before this call).
  Expected<ChatTurnResult> send(std::string_view user_text, const GenerateOptions& options,
                                const TextCallback& on_text);

  // Forgets the conversation (the system prompt stays) and the KV cache.
  void reset();

  const std::vector<ChatMessage>& messages() const { return messages_; }
  // The last turn's rendered conversation and its tokens (what a one-shot generate would take);
  // reset() leaves them.
  const std::string& prompt_text() const { return prompt_text_; }
  std::span<const int32_t> prompt_tokens() const { return prompt_tokens_; }
  // Tokens in the KV cache (always forward.n_past()), and the context they share.
  int64_t n_cached_tokens() const { return static_cast<int64_t>(cached_.size()); }
  int64_t n_ctx() const { return forward_.n_ctx(); }

 private:
  struct Prompt {
    std::string text;
    std::vector<int32_t> tokens;
  };
  // The conversation rendered with the generation prompt, as text and as tokens.
  Expected<Prompt> render_prompt() const;
  // Adds the user's message and renders. When the conversation does not fit, starts it over
  // from this message; when the message alone does not fit, clears it and fails.
  Expected<Prompt> fit_prompt(std::string_view user_text, ChatTurnResult* result);
  // How many of `tokens` the KV cache already holds; resets it when they do not extend it.
  size_t reuse_cache(std::span<const int32_t> tokens);
  // Records the finished turn: the KV cache's tokens, the reply and the next anchor.
  void remember(Prompt prompt, const ChatTurnResult& result, bool stripped);
  // Empties the conversation down to the system prompt; the KV cache is left alone.
  void clear_messages();

  Forward& forward_;
  const Tokenizer& tokenizer_;
  const ChatTemplate& template_;
  std::string system_prompt_;
  std::vector<ChatMessage> messages_;
  std::string prompt_text_;
  std::vector<int32_t> prompt_tokens_;
  // The tokens in the KV cache, in order.
  std::vector<int32_t> cached_;
  // A prefix of every later rendering as long as the conversation only grows, and its tokens:
  // the last prompt plus the reply exactly as generated. Later prompts start with these tokens
  // instead of re-encoding the text, which could split the reply differently than the model did.
  std::string anchor_text_;
  std::vector<int32_t> anchor_tokens_;
};

}  // namespace pensieve
