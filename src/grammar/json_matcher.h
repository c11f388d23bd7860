// JsonMatcher: a byte-level pushdown recognizer for the prefixes of JSON values valid against a
// compiled JsonSchema. The sampler uses it (through TokenMask) to constrain tool-call arguments.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "grammar/json_schema.h"

namespace pensieve {

// Accepted text: compact JSON with at most one optional space after ':' and ',' and no other
// whitespace (so generation cannot loop on spaces); strings must be valid UTF-8 with no raw
// control characters; numbers follow the JSON grammar ("integer": no fraction or exponent)
// with at most 20 integer, 30 fraction and 2 exponent digits (always finite as a double).
// Unions keep up to kMaxAlternatives parse stacks side by side; nesting is capped at kMaxDepth.
class JsonMatcher {
 public:
  static constexpr size_t kMaxDepth = 64;
  static constexpr size_t kMaxAlternatives = 8;

  // One parse frame: an open object/array/string/number/literal, or the root.
  struct Frame {
    uint32_t node = 0;
    uint8_t kind = 0;
    uint8_t phase = 0;
    uint8_t lex = 0;    // string lexer state (strings and object keys)
    uint8_t lex_n = 0;  // bytes left in a \u escape or a UTF-8 sequence
    uint8_t lo = 0;     // allowed range of the next UTF-8 continuation byte
    uint8_t hi = 0;
    uint16_t pos = 0;    // bytes matched of a key or literal (saturating)
    uint32_t count = 0;  // array: elements started; object: property of the current value
    uint64_t seen = 0;   // object: declared properties written so far
    uint64_t cand = 0;   // key or literal candidates still matching
    bool operator==(const Frame&) const = default;
  };

  // The parse state: up to kMaxAlternatives stacks stored back to back. Copying reuses capacity.
  struct State {
    std::vector<Frame> frames;
    std::array<uint16_t, kMaxAlternatives + 1> bounds{};  // stack i is [bounds[i], bounds[i+1])
    uint8_t n_stacks = 0;
    bool dead() const { return n_stacks == 0; }
  };

  explicit JsonMatcher(JsonSchema schema);

  State start() const;
  // Appends bytes; false (state unchanged) when they cannot continue a valid instance.
  bool advance(State& state, std::string_view bytes) const;
  // One byte from `in` into `out` (overwritten); false when `out` is dead. The hot path.
  bool advance_byte(const State& in, uint8_t byte, State& out, std::vector<Frame>& work) const;
  // A whole valid value has been written (a number may still continue).
  bool complete(const State& state) const;
  // Inside a string body (or an undeclared key), where any printable ASCII byte except '"' and '\\'
  // leaves the state exactly as it is (TokenMask skips those steps).
  static bool in_plain_string(const State& state);
  static bool is_plain_string_byte(uint8_t b) {
    return b >= 0x20 && b < 0x7f && b != '"' && b != '\\';
  }

 private:
  void step(std::vector<Frame>& stack, uint8_t byte, State& out) const;
  void start_value(std::vector<Frame>& stack, uint32_t node, uint8_t byte, State& out) const;
  bool step_object(std::vector<Frame>& stack, uint8_t byte, State& out) const;
  bool step_array(std::vector<Frame>& stack, uint8_t byte, State& out) const;

  JsonSchema schema_;
  const std::vector<grammar::Node>* nodes_;
};

}  // namespace pensieve
