// Forced tool calls: when a request's tool_choice names a tool, the reply is that tool's call.
// The prompt ends where the model's own format starts the call's arguments, and the arguments
// are sampled under a JSON Schema constraint, so what comes back is always valid input.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "grammar/json_matcher.h"
#include "grammar/token_mask.h"
#include "sampling/token_constraint.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {

// The vocabulary's tokens as bytes for the grammar's mask (control tokens never allowed); built
// once per tokenizer, shared by every constrained sequence.
std::shared_ptr<const TokenMask> make_token_mask(const Tokenizer& tokenizer);

// Tokens left when a constrained JSON value starts steering to its end.
inline constexpr int64_t kClosingTokens = 32;

// Narrows `mask` (what the matcher allows) to the tokens that bring the value closer to its end:
// inside a string, those that close it; elsewhere those that close an object or array, else
// those that start a key or string. Unchanged when none of them is allowed. With few tokens
// left this keeps a model that rambles inside a string from running out of tokens mid-call.
void steer_to_close(const JsonMatcher::State& state, const Tokenizer& tokenizer,
                    std::vector<uint8_t>* mask);

// Output that must be one JSON value valid against a schema.
class JsonConstraint final : public TokenConstraint {
 public:
  // Errors: a schema the grammar cannot compile.
  static Expected<std::shared_ptr<JsonConstraint>> make(std::string_view schema_json,
                                                        std::shared_ptr<const TokenMask> mask,
                                                        const Tokenizer& tokenizer);
  void allowed(std::vector<uint8_t>* mask) const override;
  bool complete() const override;
  void accept(int32_t token) override;
  void set_tokens_left(int64_t left) override { tokens_left_ = left; }

 private:
  JsonConstraint(JsonMatcher matcher, std::shared_ptr<const TokenMask> mask,
                 const Tokenizer& tokenizer);
  JsonMatcher matcher_;
  JsonMatcher::State state_;
  std::shared_ptr<const TokenMask> mask_;
  const Tokenizer& tokenizer_;
  int64_t tokens_left_ = INT64_MAX;
};

}  // namespace pensieve
