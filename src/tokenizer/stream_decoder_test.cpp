#include "tokenizer/stream_decoder.h"

#include <gtest/gtest.h>

#include "tokenizer/test_support.h"
#include "tokenizer/unicode.h"

namespace pensieve {
namespace {

std::unique_ptr<Tokenizer> load(const std::string& name) {
  std::string error;
  auto t = testing_support::load_vocab(name, &error);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

// Feeds `ids` one at a time; every chunk must be valid UTF-8 on its own.
std::string stream(const Tokenizer& t, const std::vector<int32_t>& ids, int* n_held_back) {
  StreamDecoder decoder(t);
  std::string out;
  *n_held_back = 0;
  for (const int32_t id : ids) {
    const std::string chunk = decoder.push(id);
    EXPECT_EQ(utf8_sanitize(chunk), chunk) << "chunk is not valid UTF-8";
    if (decoder.pending_bytes() > 0) ++*n_held_back;
    out += chunk;
  }
  out += decoder.flush();
  return out;
}

TEST(StreamDecoder, HoldsBackEmojiSplitAcrossTokens) {
  // Phi-3 spells the llama emoji with four byte-fallback tokens, GPT-2 with three tokens.
  for (const char* name : {"phi-3", "gpt-2", "starcoder"}) {
    const auto t = load(name);
    ASSERT_NE(t, nullptr);
    const std::string text = "a \xF0\x9F\xA6\x99 b \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80!";
    const std::vector<int32_t> ids = t->encode(text, EncodeOptions{});
    int n_held_back = 0;
    const std::string out = stream(*t, ids, &n_held_back);
    EXPECT_GT(n_held_back, 0) << name << ": no token ended inside a character";
    // Streaming keeps SentencePiece's leading space; decode() drops it.
    EXPECT_EQ(out, name == std::string("phi-3") ? " " + text : text) << name;
  }
}

TEST(StreamDecoder, FlushReplacesAnUnfinishedCharacter) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  const int32_t f0 = t->find_token("<0xF0>");
  const int32_t x9f = t->find_token("<0x9F>");
  const int32_t a = t->find_token("a");
  ASSERT_TRUE(f0 >= 0 && x9f >= 0 && a >= 0);
  StreamDecoder decoder(*t);
  EXPECT_EQ(decoder.push(a), "a");
  EXPECT_EQ(decoder.push(f0), "");
  EXPECT_EQ(decoder.push(x9f), "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  EXPECT_EQ(decoder.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  // An unfinished character followed by something else is replaced right away.
  EXPECT_EQ(decoder.push(f0), "");
  EXPECT_EQ(decoder.push(a),
            "\xEF\xBF\xBD"
            "a");
}

TEST(StreamDecoder, InvalidBytesComeOutAsReplacementCharacters) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  StreamDecoder decoder(*t);
  EXPECT_EQ(decoder.push(t->find_token("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.push(t->find_token("<0x80>")), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.flush(), "");
}

TEST(StreamDecoder, SkipsControlTokensUnlessAsked) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  StreamDecoder quiet(*t);
  EXPECT_EQ(quiet.push(32007), "");
  EXPECT_EQ(quiet.push(-3), "");
  EXPECT_EQ(quiet.push(1 << 20), "");
  StreamDecoder verbose(*t, /*skip_special=*/false);
  EXPECT_EQ(verbose.push(32007), "<|end|>");
  EXPECT_EQ(verbose.push(15043), " Hello");
}

}  // namespace
}  // namespace pensieve
