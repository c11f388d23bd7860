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

void steer_to_close(const JsonMatcher::State& state, const Tokenizer& tokenizer,
                    std::vector<uint8_t>* mask) {
  const bool in_string = JsonMatcher::in_plain_string(state);
  // Preference order: the first class that has an allowed token wins.
  const std::string_view classes[] = {in_string ? "\"" : "}]", in_string ? "" : "\""};
  for (std::string_view chars : classes) {
    if (chars.empty()) continue;
    std::vector<size_t> chosen;
    for (size_t id = 0; id < mask->size(); ++id) {
      if ((*mask)[id] == 0) continue;
      const std::string& piece = tokenizer.token_piece(static_cast<int32_t>(id));
      if (piece.find_first_of(chars) != std::string::npos) chosen.push_back(id);
    }
    if (chosen.empty()) continue;
    std::fill(mask->begin(), mask->end(), uint8_t{0});
    for (size_t id : chosen) (*mask)[id] = 1;
    return;
  }
}

void JsonConstraint::allowed(std::vector<uint8_t>* mask) const {
  mask_->allowed(matcher_, state_, mask);
  if (tokens_left_ <= kClosingTokens) steer_to_close(state_, tokenizer_, mask);
}

bool JsonConstraint::complete() const { return matcher_.complete(state_); }

void JsonConstraint::accept(int32_t token) {
  matcher_.advance(state_, tokenizer_.token_piece(token));
}

}  // namespace pensieve
