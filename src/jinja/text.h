// Text helpers with Python's semantics for the Jinja interpreter: strings index by code point,
// floats print like repr(), whitespace and case follow str methods (ASCII letters only).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::jinja {

// Byte offsets where each code point starts, plus a final entry at s.size(). A byte that does
// not start a valid UTF-8 sequence counts as one code point of its own.
std::vector<size_t> utf8_boundaries(std::string_view s);
size_t utf8_length(std::string_view s);
// The code points of s as separate strings.
std::vector<std::string> utf8_chars(std::string_view s);
// Appends code point cp as UTF-8 (replacement character for invalid values).
void append_utf8(std::string& out, uint32_t cp);

// Python float repr: "1.0", "0.1", "1e+16", "1.5e-05", "nan", "inf".
std::string python_float_repr(double v);
// Python repr of a str: 'text' with quotes chosen and escapes as Python does.
std::string python_string_repr(std::string_view s);

inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
// str.capitalize(): first character upper, the rest lower.
std::string capitalize(std::string_view s);
// str.title(): upper after a non-letter, lower after a letter.
std::string python_title(std::string_view s);

// str.strip/lstrip/rstrip; chars empty means whitespace.
std::string_view strip(std::string_view s, std::string_view chars, bool left, bool right);
// str.split(sep, maxsplit); sep empty means runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> split(std::string_view s, std::string_view sep, int64_t maxsplit);
// str.replace(old, new, count); count < 0: all.
std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);
// str.splitlines() (\n, \r\n and \r).
std::vector<std::string> splitlines(std::string_view s);

}  // namespace pensieve::jinja
