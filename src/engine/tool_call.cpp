#include "engine/tool_call.h"

#include <string>

namespace pensieve {

std::shared_ptr<const TokenMask> make_token_mask(const Tokenizer& tokenizer) {
  std::vector<std::string> texts(static_cast<size_t>(tokenizer.n_vocab()));
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
    if (tokenizer.is_control(id) || tokenizer.is_eog(id)) continue;  // empty: never allowed
    texts[static_cast<size_t>(id)] = tokenizer.token_piece(id);
  }
  return std::make_shared<const TokenMask>(texts);
}

Expected<std::shared_ptr<JsonConstraint>> JsonConstraint::make(
    std::string_view schema_json, std::shared_ptr<const TokenMask> mask,
    const Tokenizer& tokenizer) {
  PV_TRY(JsonSchema schema, JsonSchema::compile(schema_json));
  return std::shared_ptr<JsonConstraint>(
      new JsonConstraint(JsonMatcher(std::move(schema)), std::move(mask), tokenizer));
}

JsonConstraint::JsonConstraint(JsonMatcher matcher, std::shared_ptr<const TokenMask> mask,
                               const Tokenizer& tokenizer)
    : matcher_(std::move(matcher)),
      state_(matcher_.start()),
      mask_(std::move(mask)),
      tokenizer_(tokenizer) {}

void JsonConstraint::allowed(std::vector<uint8_t>* mask) const {
  mask_->allowed(matcher_, state_, mask);
}

bool JsonConstraint::complete() const { return matcher_.complete(state_); }

void JsonConstraint::accept(int32_t token) {
  matcher_.advance(state_, tokenizer_.token_piece(token));
}

}  // namespace pensieve
