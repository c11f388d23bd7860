#include "engine/chat_session.h"

#include <algorithm>
#include <utility>

namespace pensieve {
namespace {

ChatMessage message(ChatRole role, std::string_view content) {
  return {role, std::string(content), {}, {}, false};
}

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Whether `text` is exactly the tokens' pieces in order: no control token left out of it and no
// bytes replaced on the way to valid UTF-8, as the stream decoder may do.
bool spells(const Tokenizer& tokenizer, std::span<const int32_t> tokens, std::string_view text) {
  size_t at = 0;
  for (const int32_t id : tokens) {
    if (tokenizer.is_control(id)) return false;
    const std::string& piece = tokenizer.token_piece(id);
    if (!text.substr(at).starts_with(piece)) return false;
    at += piece.size();
  }
  return at == text.size();
}

}  // namespace

ChatSession::ChatSession(Forward& forward, const Tokenizer& tokenizer,
                         const ChatTemplate& chat_template, std::string system_prompt)
    : forward_(forward),
      tokenizer_(tokenizer),
      template_(chat_template),
      system_prompt_(std::move(system_prompt)) {
  reset();
}

void ChatSession::reset() {
  clear_messages();
  forward_.reset();
  cached_.clear();
}

void ChatSession::clear_messages() {
  messages_.clear();
  if (!system_prompt_.empty()) messages_.push_back(message(ChatRole::kSystem, system_prompt_));
  anchor_text_.clear();
  anchor_tokens_.clear();
}

Expected<ChatSession::Prompt> ChatSession::render_prompt() const {
  ChatRequest request;
  request.messages = messages_;
  request.add_generation_prompt = true;
  request.bos_token = std::string(tokenizer_.token_text(tokenizer_.bos()));
  request.eos_token = std::string(tokenizer_.token_text(tokenizer_.eos()));
  PV_TRY(std::string text, template_.render(request));
  Prompt prompt;
  if (!anchor_text_.empty() && text.starts_with(anchor_text_)) {
    const std::string_view rest_text = std::string_view(text).substr(anchor_text_.size());
    std::vector<int32_t> rest = tokenizer_.encode(rest_text, EncodeOptions{.parse_special = true});
    // SentencePiece puts a space before the text it starts with; that is only harmless when the
    // rest starts with a special token.
    if (!rest.empty() &&
        (!tokenizer_.vocab().add_space_prefix() || tokenizer_.vocab().is_special(rest.front()))) {
      prompt.tokens = anchor_tokens_;
      prompt.tokens.insert(prompt.tokens.end(), rest.begin(), rest.end());
    }
  }
  if (prompt.tokens.empty()) {
    const bool add_bos = tokenizer_.add_bos_default() && !template_.renders_bos();
    prompt.tokens = tokenizer_.encode(text, {.add_bos = add_bos, .parse_special = true});
  }
  prompt.text = std::move(text);
  return prompt;
}

Expected<ChatSession::Prompt> ChatSession::fit_prompt(std::string_view user_text,
                                                      ChatTurnResult* result) {
  const std::vector<ChatMessage> before = messages_;
  const bool had_turns = messages_.size() > (system_prompt_.empty() ? 0u : 1u);
  messages_.push_back(message(ChatRole::kUser, user_text));
  Expected<Prompt> prompt = render_prompt();
  // A prompt must leave room for at least one token of reply.
  if (prompt && had_turns && std::ssize(prompt->tokens) >= n_ctx()) {
    result->restarted = true;
    result->n_dropped_tokens = std::ssize(prompt->tokens);
    clear_messages();
    messages_.push_back(message(ChatRole::kUser, user_text));
    prompt = render_prompt();
  }
  if (!prompt) {
    messages_ = before;
    return prompt;
  }
  if (std::ssize(prompt->tokens) >= n_ctx()) {
    clear_messages();
    return make_error(ErrorCode::kOutOfRange,
                      "chat: the message does not fit the context: the prompt needs {} tokens "
                      "and room to reply, the context holds {}",
                      prompt->tokens.size(), n_ctx());
  }
  return prompt;
}

size_t ChatSession::reuse_cache(std::span<const int32_t> tokens) {
  const size_t n_common = common_prefix(cached_, tokens);
  if (n_common == cached_.size() && n_common < tokens.size()) return n_common;
  // The rendering changed tokens that were evaluated (or adds none to feed): start over.
  forward_.reset();
  cached_.clear();
  return 0;
}

void ChatSession::remember(Prompt prompt, const ChatTurnResult& result, bool stripped) {
  // generate() does not evaluate the last token it returns unless it stopped at end of generation.
  const std::vector<int32_t>& out = result.generation.tokens;
  const int64_t n_evaluated = forward_.n_past() - std::ssize(prompt.tokens);
  PV_CHECK(n_evaluated >= 0 && n_evaluated <= std::ssize(out), "chat: {} of {} reply tokens cached",
           n_evaluated, out.size());
  cached_ = prompt.tokens;
  cached_.insert(cached_.end(), out.begin(), out.begin() + n_evaluated);
  messages_.push_back(message(ChatRole::kAssistant, result.reply));
  prompt_text_ = std::move(prompt.text);
  prompt_tokens_ = std::move(prompt.tokens);
  anchor_text_ = prompt_text_;
  anchor_tokens_ = prompt_tokens_;
  if (spells(tokenizer_, out, stripped ? " " + result.reply : result.reply)) {
    anchor_text_ += result.reply;
    anchor_tokens_.insert(anchor_tokens_.end(), out.begin(), out.end());
  }
}

Expected<ChatTurnResult> ChatSession::send(std::string_view user_text,
                                           const GenerateOptions& options,
                                           const TextCallback& on_text) {
  if (user_text.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "chat: the message is empty");
  }
  const std::vector<ChatMessage> before = messages_;
  ChatTurnResult result;
  PV_TRY(Prompt prompt, fit_prompt(user_text, &result));
  const size_t n_reused = reuse_cache(prompt.tokens);
  result.n_prompt_tokens = std::ssize(prompt.tokens);
  result.n_reused_tokens = static_cast<int64_t>(n_reused);

  GenerateOptions o = options;
  for (std::string_view stop : template_.stop_strings()) o.stop_strings.emplace_back(stop);
  // SentencePiece marks the start of the text with a space (as encode() adds one): the reply
  // starts without it, as Tokenizer::decode gives it.
  bool at_start = tokenizer_.vocab().add_space_prefix();
  bool stripped = false;
  const auto fed = std::span<const int32_t>(prompt.tokens).subspan(n_reused);
  auto generated = generate(forward_, tokenizer_, fed, o, [&](std::string_view text) {
    if (at_start) {
      stripped = text.starts_with(' ');
      if (stripped) text.remove_prefix(1);
      at_start = false;
    }
    result.reply += text;
    return text.empty() || on_text(text);
  });
  if (!generated) {
    forward_.reset();  // whatever was evaluated before the failure is unknown
    cached_.clear();
    messages_ = before;
    return Unexpected<Error>(generated.error());
  }
  result.generation = std::move(*generated);
  remember(std::move(prompt), result, stripped);
  if (result.generation.reason == StopReason::kContextFull) {
    result.context_full = true;
    reset();
  }
  return result;
}

}  // namespace pensieve
