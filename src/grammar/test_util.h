// Helpers shared by the grammar tests: compile-or-fail and feed-text-and-report.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "grammar/json_matcher.h"

namespace pensieve::grammar_test {

inline JsonMatcher matcher_for(std::string_view schema_json) {
  auto schema = JsonSchema::compile(schema_json);
  if (!schema) ADD_FAILURE() << schema.error().message;
  return JsonMatcher(schema ? std::move(schema).value() : JsonSchema::compile("{}").value());
}

constexpr size_t kAccepted = static_cast<size_t>(-1);

// Byte by byte: the index of the first rejected byte, or kAccepted.
inline size_t first_reject(const JsonMatcher& m, std::string_view text) {
  auto state = m.start();
  for (size_t i = 0; i < text.size(); ++i) {
    if (!m.advance(state, text.substr(i, 1))) return i;
  }
  return kAccepted;
}

// Whole valid value: accepted byte by byte and in random chunks, and complete at the end.
inline bool accepts(const JsonMatcher& m, std::string_view text, uint32_t seed = 1) {
  auto state = m.start();
  if (first_reject(m, text) != kAccepted) return false;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min<size_t>(text.size() - i, 1 + rng() % 7);
    if (!m.advance(state, text.substr(i, n))) return false;
    i += n;
  }
  return m.complete(state);
}

inline bool complete_after(const JsonMatcher& m, std::string_view text) {
  auto state = m.start();
  return m.advance(state, text) && m.complete(state);
}

}  // namespace pensieve::grammar_test
