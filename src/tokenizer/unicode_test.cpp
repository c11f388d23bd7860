#include "tokenizer/unicode.h"

#include <set>

#include <gtest/gtest.h>

namespace pensieve {
namespace {

TEST(Utf8Next, DecodesEachSequenceLength) {
  const struct {
    std::string_view bytes;
    uint32_t cp;
  } cases[] = {
      {"A", 0x41}, {"\xC3\xA4", 0xE4}, {"\xE2\x96\x81", 0x2581}, {"\xF0\x9F\xA6\x99", 0x1F999}};
  for (const auto& c : cases) {
    const Utf8Char u = utf8_next(c.bytes);
    EXPECT_EQ(u.status, Utf8Char::kValid);
    EXPECT_EQ(u.length, c.bytes.size());
    EXPECT_EQ(u.cp, c.cp);
  }
}

TEST(Utf8Next, RejectsOverlongSurrogatesAndOutOfRange) {
  for (std::string_view bad :
       {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80", "\xF0\x80\x80\x80",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\x80"}) {
    const Utf8Char u = utf8_next(bad);
    EXPECT_EQ(u.status, Utf8Char::kInvalid) << testing::PrintToString(bad);
    EXPECT_EQ(u.length, 1) << testing::PrintToString(bad);
  }
}

TEST(Utf8Next, ReportsMaximalSubpartAndIncompleteTail) {
  // E2 82 is a valid start cut short by 'A': one invalid subpart of two bytes.
  const Utf8Char cut = utf8_next(
      "\xE2\x82"
      "A");
  EXPECT_EQ(cut.status, Utf8Char::kInvalid);
  EXPECT_EQ(cut.length, 2);
  const Utf8Char tail = utf8_next("\xF0\x9F\xA6");
  EXPECT_EQ(tail.status, Utf8Char::kIncomplete);
  EXPECT_EQ(tail.length, 3);
}

TEST(Utf8Sanitize, ReplacesEachInvalidSubpartOnce) {
  EXPECT_EQ(utf8_sanitize("ok"), "ok");
  EXPECT_EQ(utf8_sanitize("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8_sanitize("\xE2\x82"
                          "A"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(utf8_sanitize("x\xF0\x9F\xA6"), "x\xEF\xBF\xBD");
  EXPECT_EQ(utf8_sanitize("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8CompletePrefix, HoldsBackOnlyAnUnfinishedCharacter) {
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\xA6\x99"), 6u);
  EXPECT_EQ(utf8_complete_prefix("ab\xFF"), 3u);  // cannot be repaired: not held back
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
}

TEST(Utf8Append, EncodesAndReplacesSurrogates) {
  std::string s;
  utf8_append(0x41, &s);
  utf8_append(0xE4, &s);
  utf8_append(0x2581, &s);
  utf8_append(0x1F999, &s);
  EXPECT_EQ(s, "A\xC3\xA4\xE2\x96\x81\xF0\x9F\xA6\x99");
  std::string bad;
  utf8_append(0xD800, &bad);
  EXPECT_EQ(bad, "\xEF\xBF\xBD");
}

TEST(ByteLevelAlphabet, IsABijectionOnBytes) {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_unicode(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second);
    EXPECT_EQ(unicode_to_byte(cp), b);
  }
  EXPECT_EQ(byte_to_unicode(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(byte_to_unicode('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(byte_to_unicode('A'), 0x41u);
  EXPECT_EQ(unicode_to_byte(0x2581), -1);
  EXPECT_EQ(unicode_to_byte(0xAD), -1);  // soft hyphen byte maps elsewhere
}

}  // namespace
}  // namespace pensieve
