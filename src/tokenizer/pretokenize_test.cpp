#include "tokenizer/pretokenize.h"

#include <gtest/gtest.h>

namespace pensieve {
namespace {

std::vector<std::string> pieces(const PreTokenizer& pre, std::string_view text) {
  std::vector<std::string_view> views;
  pre.split(text, &views);
  std::string joined;
  std::vector<std::string> out;
  for (const std::string_view v : views) {
    joined += v;
    out.emplace_back(v);
  }
  EXPECT_EQ(joined, text) << "pieces must cover the text exactly";
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2SplitsWordsNumbersPunctuationAndSpaces) {
  auto pre = PreTokenizer::for_name("gpt-2");
  ASSERT_TRUE(pre) << pre.error().message;
  EXPECT_EQ(pieces(*pre, "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces(*pre, "I've 123 apples!!"), (Pieces{"I", "'ve", " 123", " apples", "!!"}));
  // \s+(?!\S): the last space of a run stays with the next word.
  EXPECT_EQ(pieces(*pre, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(pieces(*pre, "x\n\ny"), (Pieces{"x", "\n", "\n", "y"}));
  EXPECT_EQ(pieces(*pre, "Äpfel über"), (Pieces{"Äpfel", " über"}));
  EXPECT_EQ(pieces(*pre, ""), (Pieces{}));
}

TEST(PreTokenizer, Llama3GroupsDigitsInThrees) {
  auto pre = PreTokenizer::for_name("llama-bpe");
  ASSERT_TRUE(pre) << pre.error().message;
  EXPECT_TRUE(pre->ignore_merges());
  EXPECT_TRUE(pre->add_bos());
  EXPECT_EQ(pieces(*pre, "1234567 HELLO's"), (Pieces{"123", "456", "7", " HELLO", "'s"}));
}

TEST(PreTokenizer, StarcoderSplitsEveryDigit) {
  auto pre = PreTokenizer::for_name("starcoder");
  ASSERT_TRUE(pre) << pre.error().message;
  EXPECT_EQ(pieces(*pre, "x=123"), (Pieces{"x", "=", "1", "2", "3"}));
}

TEST(PreTokenizer, EveryKnownNameCompiles) {
  for (const std::string_view name : known_pre_tokenizers()) {
    auto pre = PreTokenizer::for_name(name);
    ASSERT_TRUE(pre) << name << ": " << pre.error().message;
    pieces(*pre, "Hello, wörld 12345 ◊ 你好 \n\t  x");
  }
}

TEST(PreTokenizer, UnknownNameIsAnErrorNamingIt) {
  auto pre = PreTokenizer::for_name("no-such-pre");
  ASSERT_FALSE(pre);
  EXPECT_EQ(pre.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(pre.error().message.find("'no-such-pre'"), std::string::npos) << pre.error().message;
}

TEST(PreTokenizer, BadPatternIsAnError) {
  auto pre = PreTokenizer::from_patterns({"(unclosed"});
  ASSERT_FALSE(pre);
  EXPECT_NE(pre.error().message.find("(unclosed"), std::string::npos);
}

TEST(PreTokenizer, EmptyMatchesSplitNothing) {
  auto pre = PreTokenizer::from_patterns({"x*"});
  ASSERT_TRUE(pre) << pre.error().message;
  EXPECT_EQ(pieces(*pre, "abxxc\xC3\xA4"), (Pieces{"ab", "xx", "c\xC3\xA4"}));
}

TEST(PreTokenizer, InvalidUtf8BytesBecomePiecesOfTheirOwn) {
  auto pre = PreTokenizer::for_name("gpt-2");
  ASSERT_TRUE(pre) << pre.error().message;
  EXPECT_EQ(pieces(*pre,
                   "ab\xFF"
                   "cd"),
            (Pieces{"ab", "\xFF", "cd"}));
  pieces(*pre, "\xC3\x28 \xE2\x82 \xF0\x9F\x98 end\xF0");
}

TEST(PreTokenizer, LongRunsDoNotExhaustTheMatcher) {
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "deepseek-coder", "falcon"}) {
    auto pre = PreTokenizer::for_name(name);
    ASSERT_TRUE(pre) << pre.error().message;
    for (const char c : {' ', 'a', '7', '!', '\n'}) {
      const std::string text(1 << 20, c);
      std::vector<std::string_view> views;
      pre->split(text, &views);
      size_t total = 0;
      for (const auto v : views) total += v.size();
      EXPECT_EQ(total, text.size()) << name << " run of '" << c << "'";
    }
  }
}

}  // namespace
}  // namespace pensieve
