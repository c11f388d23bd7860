// Splits a model's streamed reply into reasoning and answer: models that think write
// "<think>...</think>" (or "<thinking>...</thinking>") before their answer, and some chat
// templates open the reasoning in the prompt so that the reply starts inside it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pensieve {

struct ReplyPart {
  // kToolCall opens a call (text: the tool's name), kToolInput carries a piece of its input
  // JSON, kToolEnd closes it.
  enum class Kind { kText, kThinking, kToolCall, kToolInput, kToolEnd };
  Kind kind = Kind::kText;
  std::string text;
};

class ReplySplitter {
 public:
  // starts_thinking: the prompt already opened the reasoning (it ends with "<think>").
  explicit ReplySplitter(bool starts_thinking = false);

  // The parts `piece` completes, in order; text that may be the start of a marker is held
  // back until the next piece (or finish()) tells.
  std::vector<ReplyPart> feed(std::string_view piece);
  // What is still held back, at the end of the reply.
  std::vector<ReplyPart> finish();

  // Whether the prompt text leaves the reply inside a reasoning block.
  static bool prompt_opens_thinking(std::string_view prompt);

 private:
  enum class State { kStart, kThinking, kText };
  void emit(ReplyPart::Kind kind, std::string_view text, std::vector<ReplyPart>* out);

  State state_;
  std::string held_;          // bytes not yet classified
  std::string close_;         // the marker that ends the open reasoning block
  bool skip_newline_ = true;  // drop the newlines right after a marker
};

// Splits a whole reply at once.
std::vector<ReplyPart> split_reply(std::string_view text, bool starts_thinking);

}  // namespace pensieve
