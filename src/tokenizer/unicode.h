// UTF-8 helpers for the tokenizers: strict decoding, repair of invalid bytes, and the GPT-2
// byte-level alphabet that maps each byte to a printable code point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pensieve {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// The result of reading one UTF-8 sequence at the start of a buffer.
struct Utf8Char {
  enum Status : uint8_t {
    kValid,       // `length` bytes form code point `cp`
    kIncomplete,  // the buffer ends inside a sequence that could still become valid
    kInvalid,     // `length` bytes (the maximal invalid subpart, >= 1) are not UTF-8
  };
  Status status = kInvalid;
  uint8_t length = 1;
  uint32_t cp = kReplacementChar;
};

// Reads the sequence at s[0..]: no overlong forms, no surrogates, nothing above U+10FFFF.
// `s` must not be empty.
Utf8Char utf8_next(std::string_view s);

void utf8_append(uint32_t cp, std::string* out);

// `s` with each maximal invalid subpart replaced by U+FFFD (the Unicode-recommended practice).
std::string utf8_sanitize(std::string_view s);
// The same, appended to *out.
void utf8_append_sanitized(std::string_view s, std::string* out);

// Number of leading bytes of `s` that form complete, valid sequences or invalid subparts that no
// further bytes could repair; the rest is an incomplete tail (at most 3 bytes).
size_t utf8_complete_prefix(std::string_view s);

// GPT-2 byte-level alphabet: bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF map to themselves; the
// other 68 bytes map, in order, to U+0100..U+0143.
uint32_t byte_to_unicode(uint8_t byte);
// The byte a code point of that alphabet stands for, or -1 when it is not in the alphabet.
int unicode_to_byte(uint32_t cp);

}  // namespace pensieve
