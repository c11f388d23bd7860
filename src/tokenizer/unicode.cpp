#include "tokenizer/unicode.h"

#include <array>

namespace pensieve {
namespace {

// Allowed range of the second byte for a lead byte (Unicode Table 3-7); later bytes are 80..BF.
struct LeadInfo {
  uint8_t length;  // 0: not a lead byte
  uint8_t lo;
  uint8_t hi;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

struct ByteTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 0x144> to_byte{};
};

const ByteTables& byte_tables() {
  static const ByteTables tables = [] {
    ByteTables t;
    t.to_byte.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      t.to_cp[b] = cp;
      t.to_byte[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

Utf8Char utf8_next(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  const LeadInfo info = lead_info(b0);
  if (info.length == 1) return {Utf8Char::kValid, 1, b0};
  if (info.length == 0) return {Utf8Char::kInvalid, 1, kReplacementChar};
  uint32_t cp = b0 & (0x7F >> info.length);
  for (uint8_t i = 1; i < info.length; ++i) {
    if (i >= s.size()) return {Utf8Char::kIncomplete, i, kReplacementChar};
    const auto b = static_cast<uint8_t>(s[i]);
    const uint8_t lo = i == 1 ? info.lo : 0x80;
    const uint8_t hi = i == 1 ? info.hi : 0xBF;
    if (b < lo || b > hi) return {Utf8Char::kInvalid, i, kReplacementChar};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Char::kValid, info.length, cp};
}

void utf8_append(uint32_t cp, std::string* out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementChar;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void utf8_append_sanitized(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    const Utf8Char c = utf8_next(s.substr(i));
    if (c.status == Utf8Char::kValid) {
      out->append(s.substr(i, c.length));
    } else {
      utf8_append(kReplacementChar, out);
    }
    i += c.length;
  }
}

std::string utf8_sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  utf8_append_sanitized(s, &out);
  return out;
}

size_t utf8_complete_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const Utf8Char c = utf8_next(s.substr(i));
    if (c.status == Utf8Char::kIncomplete) break;
    i += c.length;
  }
  return i;
}

uint32_t byte_to_unicode(uint8_t byte) { return byte_tables().to_cp[byte]; }

int unicode_to_byte(uint32_t cp) {
  const auto& t = byte_tables();
  return cp < t.to_byte.size() ? t.to_byte[cp] : -1;
}

}  // namespace pensieve
