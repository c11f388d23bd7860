// libFuzzer target: any bytes as a JSON Schema (before the first NUL) and as generated text
// (after it) never crash the compiler, the matcher or the token mask, and the mask agrees with
// the matcher on every token of a small vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/json_matcher.h"
#include "grammar/token_mask.h"

namespace {

const std::vector<std::string>& vocab() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (int c = 0; c < 256; ++c) out.push_back(std::string(1, static_cast<char>(c)));
    for (const char* t :
         {"{\"", "\":", "\", \"", "true", "null", "12", "e-3", "\\u00", "\xc3\xa9"}) {
      out.push_back(t);
    }
    return out;
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view schema_text = input.substr(0, split);
  const std::string_view text = split == std::string_view::npos ? "" : input.substr(split + 1);
  auto schema = pensieve::JsonSchema::compile(schema_text);
  if (!schema) return 0;
  const pensieve::JsonMatcher matcher(std::move(schema).value());
  static const pensieve::TokenMask mask(vocab());
  auto state = matcher.start();
  std::vector<uint8_t> allowed;
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    mask.allowed(matcher, state, &allowed);
    for (size_t id = 0; id < vocab().size(); ++id) {
      auto copy = state;
      if ((allowed[id] != 0) != matcher.advance(copy, vocab()[id])) std::abort();
    }
    if (!matcher.advance(state, text.substr(i, 1))) break;
  }
  (void)matcher.complete(state);
  return 0;
}
