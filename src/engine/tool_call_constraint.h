// Tool calls the model chooses to make, kept valid while it writes them. The reply is free text
// until the model writes its template's call opener ("<tool_call>", "[TOOL_CALLS]", or a '{' that
// starts a Llama 3.1 reply); from there sampling is masked so that what follows is
// {"name": "<one of the tools>", "<arguments key>": <input valid against that tool's schema>},
// then the text is free again (or the reply ends: one call when parallel calls are off).
// With tool_choice any the reply starts inside the call object.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "engine/request.h"
#include "engine/tool_syntax.h"
#include "grammar/json_matcher.h"
#include "grammar/token_mask.h"
#include "sampling/token_constraint.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {

// What every call of a request's tools may look like: per tool, the texts that start its call
// object and a matcher for the whole object. Immutable; shared by the constraint and tests.
class ToolCallGrammar {
 public:
  // Errors: a tool schema the grammar cannot compile, no tools.
  static Expected<std::shared_ptr<const ToolCallGrammar>> make(const std::vector<ToolSpec>& tools,
                                                               const ToolCallSyntax& syntax);

  struct Head {
    std::string text;  // e.g. {"name": "Read"  (the object up to the name's closing quote)
    size_t tool = 0;
    JsonMatcher::State state;  // the tool's matcher after `text`
  };
  const ToolCallSyntax& syntax() const { return syntax_; }
  const std::vector<Head>& heads() const { return heads_; }
  const JsonMatcher& matcher(size_t tool) const { return matchers_[tool]; }

 private:
  ToolCallSyntax syntax_;
  std::vector<JsonMatcher> matchers_;
  std::vector<Head> heads_;
};

class ToolCallConstraint final : public TokenConstraint {
 public:
  enum class Start { kFree, kInCall };  // kInCall: the prompt ends where a call object begins
  ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar,
                     std::shared_ptr<const TokenMask> mask, const Tokenizer& tokenizer, Start start,
                     bool parallel);

  void allowed(std::vector<uint8_t>* mask) const override;
  bool complete() const override;
  void accept(int32_t token) override;
  bool constrains() const override { return state_ != State::kFree; }
  void set_tokens_left(int64_t left) override { tokens_left_ = left; }

  // Calls written whole so far.
  int calls() const { return calls_; }

 private:
  enum class State { kFree, kHead, kCall, kDone };
  // A text the head may still become: a lead (e.g. "[", or "</tool_call>\n<tool_call>" after
  // a call) + a head text; or an end text after a call (e.g. "]" or "</tool_call>") where the
  // reply may end.
  struct Candidate {
    std::string text;
    std::optional<size_t> head;  // index into grammar heads; nullopt: an end text
  };
  // Candidates: every lead followed by every head, and the end texts.
  void enter_head(const std::vector<std::string>& leads, const std::vector<std::string>& ends);
  // Appends to the head; false when no candidate starts with it any more.
  bool feed_head(std::string_view bytes);
  // Whether head_ + bytes can still become (or has become, with a valid rest) a candidate.
  bool head_accepts(std::string_view bytes) const;
  // Whether the reply may end with the head as it is.
  bool head_may_end() const;
  void call_done();

  std::shared_ptr<const ToolCallGrammar> grammar_;
  std::shared_ptr<const TokenMask> mask_;
  const Tokenizer& tokenizer_;
  bool parallel_;
  State state_;
  std::string tail_;       // kFree: the latest bytes, to spot the opener
  bool at_start_ = true;   // kFree, no opener: nothing but whitespace written yet
  std::string head_;       // kHead: bytes since the opener, leading whitespace dropped
  size_t head_space_ = 0;  // whitespace dropped before the head
  std::vector<Candidate> candidates_;
  size_t tool_ = 0;  // kCall
  JsonMatcher::State call_state_;
  int calls_ = 0;
  int64_t tokens_left_ = INT64_MAX;
};

}  // namespace pensieve
