// Jinja lexer: splits template text into literal text and the tokens inside {{ }} and {% %},
// applying whitespace control ({%- -%}, trim_blocks, lstrip_blocks) and {% raw %} as it goes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pensieve::jinja {

struct Options;

enum class TokenKind : uint8_t {
  kText,        // literal template text (already whitespace-controlled)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifiers and keywords
  kString,      // string literal, escapes decoded
  kInt,
  kFloat,
  kOp,  // operators and punctuation: + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { }
  kEof,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  int line = 1;
  std::string text;  // text, name, decoded string or operator
  int64_t int_value = 0;
  double float_value = 0;
};

// Errors: "jinja: line N: unterminated comment" and the like.
Expected<std::vector<Token>> tokenize(std::string_view source, const Options& options);

}  // namespace pensieve::jinja
