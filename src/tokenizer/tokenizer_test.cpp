#include "tokenizer/tokenizer.h"

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "gguf/writer.h"
#include "tokenizer/test_support.h"
#include "tokenizer/unicode.h"

namespace pensieve {
namespace {

using Ids = std::vector<int32_t>;

std::unique_ptr<Tokenizer> load(const std::string& name) {
  std::string error;
  auto t = testing_support::load_vocab(name, &error);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

// A tokenizer from metadata written in memory; the bytes are gone when it is returned.
Expected<std::unique_ptr<Tokenizer>> from_writer(const GgufWriter& w) {
  const std::vector<uint8_t> bytes = w.to_bytes();
  PV_TRY(auto file, GgufFile::parse(bytes, "memory.gguf"));
  return Tokenizer::from_gguf(*file);
}

bool contains_id(const Ids& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

constexpr EncodeOptions kPlain{false, false};
constexpr EncodeOptions kSpecial{false, true};

// Phi-3 ids: <s> 1, </s> 2 (user-defined), <|endoftext|> 32000, <|end|> 32007, <|user|> 32010.
TEST(Tokenizer, ParseSpecialOffEncodesControlTokenTextAsText) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  const Ids ids = t->encode("<|user|>Hi<s>", kPlain);
  EXPECT_FALSE(contains_id(ids, 32010));
  EXPECT_FALSE(contains_id(ids, 1));
  EXPECT_GT(ids.size(), 4u);
  EXPECT_EQ(t->decode(ids, true), "<|user|>Hi<s>");
}

TEST(Tokenizer, ParseSpecialOnMapsControlTokenText) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  Ids expected{32010};
  for (const int32_t id : t->encode("Hi", kPlain)) expected.push_back(id);  // "▁Hi"
  expected.push_back(32007);
  EXPECT_EQ(t->encode("<|user|>Hi<|end|>", kSpecial), expected);
  // Phi-3 strips whitespace after its special tokens (rstrip), as its tokenizer.json says.
  EXPECT_EQ(t->encode("<|user|>\n  Hi<|end|>", kSpecial), expected);
  EXPECT_EQ(t->decode(expected, false), "<|user|>Hi<|end|>");
  EXPECT_EQ(t->decode(expected, true), "Hi");
}

TEST(Tokenizer, UserDefinedTokensAreSplitOutEvenWithoutParseSpecial) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(contains_id(t->encode("a</s>b", kPlain), 2));
  EXPECT_EQ(t->decode(t->encode("a</s>b", kPlain), true), "a</s>b");
}

TEST(Tokenizer, BosFollowsTheOptionAndTheModelDefault) {
  const auto phi = load("phi-3");
  const auto gpt2 = load("gpt-2");
  const auto deepseek = load("deepseek-coder");
  ASSERT_TRUE(phi && gpt2 && deepseek);
  EXPECT_TRUE(phi->add_bos_default());
  EXPECT_FALSE(gpt2->add_bos_default());
  EXPECT_TRUE(deepseek->add_bos_default());
  EXPECT_EQ(phi->bos(), 1);
  EXPECT_EQ(deepseek->bos(), 32013);
  EXPECT_EQ(phi->encode("Hello world", {true, false}), (Ids{1, 15043, 3186}));
  EXPECT_EQ(phi->encode("Hello world", kPlain), (Ids{15043, 3186}));
  EXPECT_EQ(phi->encode("", {true, false}), (Ids{1}));
  EXPECT_EQ(phi->encode("", kPlain), (Ids{}));
  EXPECT_EQ(deepseek->encode("x", {true, false}).front(), 32013);
  // decode() leaves BOS out with skip_special and keeps it otherwise.
  EXPECT_EQ(phi->decode(Ids{1, 15043, 3186}, true), "Hello world");
  EXPECT_EQ(phi->decode(Ids{1, 15043, 3186}, false), "<s>Hello world");
}

// Vocabularies with a token for every byte (SentencePiece byte fallback, GPT-2's alphabet) give
// invalid UTF-8 back byte for byte.
TEST(Tokenizer, InvalidUtf8IsKeptAsByteTokens) {
  for (const char* name : {"phi-3", "gpt-2", "llama-spm"}) {
    const auto t = load(name);
    ASSERT_NE(t, nullptr);
    for (const std::string s : {"a\xFF"
                                "b",
                                "\xE2\x82", "\xC0\xAF x", "end\xF0\x9F\x98", "\x80"}) {
      const Ids ids = t->encode(s, kPlain);
      EXPECT_FALSE(ids.empty()) << name;
      EXPECT_EQ(t->decode(ids, true), s) << name << " " << testing::PrintToString(s);
    }
  }
}

// Some byte-level vocabularies have no token for bytes that never occur in UTF-8 text (C0, C1,
// F5-FF; StarCoder also F1, Falcon also F2 and some control characters): those bytes are dropped,
// as llama.cpp drops them. DeepSeek-Coder has them as user-defined tokens whose text is the
// alphabet character, so they decode as that character.
TEST(Tokenizer, BytesWithoutTokensInByteLevelVocabularies) {
  const auto starcoder = load("starcoder");
  const auto falcon = load("falcon");
  const auto deepseek = load("deepseek-coder");
  ASSERT_TRUE(starcoder && falcon && deepseek);
  EXPECT_EQ(starcoder->decode(starcoder->encode("a\xFF"
                                                "b",
                                                kPlain),
                              true),
            "ab");
  EXPECT_EQ(falcon->decode(falcon->encode("a\x04"
                                          "b\xC0",
                                          kPlain),
                           true),
            "ab");
  EXPECT_EQ(deepseek->decode(deepseek->encode("a\xFF"
                                              "b",
                                              kPlain),
                             true),
            "a\xC3\xBF"
            "b");
}

TEST(Tokenizer, RandomBytesRoundTrip) {
  std::mt19937 rng(7);
  for (const char* name : {"phi-3", "gpt-2", "llama-spm"}) {
    const auto t = load(name);
    ASSERT_NE(t, nullptr);
    for (int i = 0; i < 300; ++i) {
      std::string s(rng() % 40, '\0');
      // Not 0xE2: a literal U+2581 in the input reads back as a space under SentencePiece.
      for (char& c : s) c = static_cast<char>(rng() % 2 ? 0x20 + rng() % 0x60 : rng() % 0xE2);
      EXPECT_EQ(t->decode(t->encode(s, kPlain), true), s) << name << " " << i;
    }
  }
}

TEST(Tokenizer, RandomTextRoundTrip) {
  const uint32_t pool[] = {'a',    'Z',    '0',    '7',    ' ',     ' ',     ' ',    '\n',
                           '\t',   '\r',   '\'',   '.',    '{',     '<',     '|',    0xE9,
                           0xDF,   0x416,  0x5D0,  0x627,  0x915,   0x1780,  0x4F60, 0x597D,
                           0xAC00, 0x3042, 0xFF01, 0x2026, 0x1F600, 0x1F999, 0x10348};
  std::mt19937 rng(11);
  for (const char* name :
       {"phi-3", "llama-spm", "gpt-2", "starcoder", "deepseek-coder", "falcon"}) {
    const auto t = load(name);
    ASSERT_NE(t, nullptr);
    for (int i = 0; i < 300; ++i) {
      std::string s;
      const size_t n = rng() % 30;
      for (size_t k = 0; k < n; ++k) utf8_append(pool[rng() % std::size(pool)], &s);
      EXPECT_EQ(t->decode(t->encode(s, kPlain), true), s)
          << name << " " << testing::PrintToString(s);
    }
  }
}

// gpt-neox (no tokenizer.ggml.pre: the GPT-2 pattern) and baichuan have no vectors; they must
// load and give text back. gpt-neox's user-defined tokens for runs of spaces are split out first.
TEST(Tokenizer, VocabulariesWithoutVectorsRoundTrip) {
  const std::string text =
      "Hello  world!\n    indented\tcode();  // \xC3\x84pfel \xE4\xBD\xA0\xE5\xA5\xBD";
  for (const char* name : {"gpt-neox", "baichuan"}) {
    const auto t = load(name);
    ASSERT_NE(t, nullptr);
    const Ids ids = t->encode(text, kPlain);
    EXPECT_LT(ids.size(), text.size()) << name;
    EXPECT_EQ(t->decode(ids, true), text) << name;
  }
  const auto neox = load("gpt-neox");
  ASSERT_NE(neox, nullptr);
  EXPECT_TRUE(contains_id(neox->encode("a    b", kPlain), neox->find_token("    ")));
}

TEST(Tokenizer, DecodeSkipsIdsOutsideTheVocabulary) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->decode(Ids{-5, 15043, 999999, 3186, 32064}, true), "Hello world");
  EXPECT_EQ(t->token_piece(-1), "");
  EXPECT_EQ(t->token_piece(t->n_vocab()), "");
  EXPECT_EQ(t->token_text(1 << 30), "");
}

TEST(Tokenizer, LooksUpTokensAndPieces) {
  const auto phi = load("phi-3");
  const auto gpt2 = load("gpt-2");
  ASSERT_TRUE(phi && gpt2);
  EXPECT_EQ(phi->n_vocab(), 32064);
  EXPECT_EQ(phi->find_token("<|end|>"), 32007);
  EXPECT_EQ(phi->find_token("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(phi->find_token("no such token"), kNoToken);
  EXPECT_EQ(phi->token_piece(15043), " Hello");
  EXPECT_EQ(phi->token_piece(13), "\n");  // <0x0A>
  EXPECT_EQ(phi->token_piece(32007), "<|end|>");
  EXPECT_EQ(phi->token_text(13), "<0x0A>");
  EXPECT_EQ(gpt2->token_piece(gpt2->find_token("\xC4\xA0world")), " world");  // "Ġworld"
}

TEST(Tokenizer, KnowsEndOfGenerationTokens) {
  const auto phi = load("phi-3");
  const auto gpt2 = load("gpt-2");
  ASSERT_TRUE(phi && gpt2);
  EXPECT_EQ(phi->eos(), 32000);
  EXPECT_EQ(phi->eot(), 32007);
  EXPECT_TRUE(phi->is_eog(32000));
  EXPECT_TRUE(phi->is_eog(32007));
  EXPECT_FALSE(phi->is_eog(1));
  EXPECT_FALSE(phi->is_eog(-1));
  EXPECT_TRUE(gpt2->is_eog(50256));
  EXPECT_FALSE(gpt2->is_eog(0));
}

TEST(Tokenizer, ServesSeveralThreadsAtOnce) {
  const auto t = load("gpt-2");
  ASSERT_NE(t, nullptr);
  const std::string text =
      testing_support::read_file(testing_support::vocab_path("gpt-2") + ".inp");
  const Ids expected = t->encode(text, kPlain);
  std::vector<std::thread> threads;
  std::vector<Ids> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) results[i] = t->encode(text, kPlain);
    });
  }
  for (auto& th : threads) th.join();
  for (const Ids& r : results) EXPECT_EQ(r, expected);
}

TEST(Tokenizer, LongTextWithoutSpacesIsFast) {
  const auto t = load("phi-3");
  ASSERT_NE(t, nullptr);
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "\xE4\xBD\xA0\xE5\xA5\xBD";  // 你好, 600 KB
  const Ids ids = t->encode(text, kPlain);
  EXPECT_EQ(t->decode(ids, true), text);
  const std::string spaces(1 << 20, ' ');
  EXPECT_EQ(t->decode(t->encode(spaces, kPlain), true), spaces);
}

TEST(Tokenizer, UnknownPreTokenizerIsAnErrorNamingIt) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "no-such-pre");
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  const std::vector<std::string> merges = {"a b"};
  w.set_strings("tokenizer.ggml.tokens", tokens);
  w.set_strings("tokenizer.ggml.merges", merges);
  auto t = from_writer(w);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(t.error().message.find("'no-such-pre'"), std::string::npos) << t.error().message;
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  auto ok = from_writer(w);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ((*ok)->encode("abab", kPlain), (Ids{2, 2}));
}

TEST(Tokenizer, RejectsUnsupportedAndMalformedVocabularies) {
  std::string error;
  EXPECT_EQ(testing_support::load_vocab("bert-bge", &error), nullptr);
  EXPECT_NE(error.find("'bert'"), std::string::npos) << error;

  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  auto missing = from_writer(w);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("tokenizer.ggml.tokens"), std::string::npos);

  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "a"};
  const std::vector<float> scores = {0, 0, 0};
  w.set_strings("tokenizer.ggml.tokens", tokens);
  w.set_f32s("tokenizer.ggml.scores", scores);
  auto short_scores = from_writer(w);
  ASSERT_FALSE(short_scores);
  EXPECT_NE(short_scores.error().message.find("3 entries for 4 tokens"), std::string::npos)
      << short_scores.error().message;

  const std::vector<float> four_scores = {0, 0, 0, 0};
  w.set_f32s("tokenizer.ggml.scores", four_scores);
  w.set_string("tokenizer.ggml.model", "gpt2");
  auto no_merges = from_writer(w);
  ASSERT_FALSE(no_merges);
  EXPECT_NE(no_merges.error().message.find("tokenizer.ggml.merges"), std::string::npos);
}

// A small SentencePiece vocabulary where merge order decides the result: "▁a" and "ab" compete
// for the 'a' of "▁ab", and "xy" is a token although 'x' and 'y' are not.
GgufWriter tiny_spm(float score_space_a, float score_ab) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens = {"<unk>",
                                     "<s>",
                                     "</s>",
                                     "\xE2\x96\x81",
                                     "a",
                                     "b",
                                     "\xE2\x96\x81"
                                     "a",
                                     "ab",
                                     "xy",
                                     "<0x7A>"};
  std::vector<float> scores = {0, 0, 0, -1, -1, -1, score_space_a, score_ab, -3, 0};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1, 1, 6};
  w.set_strings("tokenizer.ggml.tokens", tokens);
  w.set_f32s("tokenizer.ggml.scores", scores);
  w.set_i32s("tokenizer.ggml.token_type", types);
  return w;
}

TEST(SpmModel, MergesTheHighestScoringPairFirst) {
  auto ab_first = from_writer(tiny_spm(-2, -1));
  auto space_a_first = from_writer(tiny_spm(-1, -2));
  ASSERT_TRUE(ab_first && space_a_first);
  EXPECT_EQ((*ab_first)->encode("ab", kPlain), (Ids{3, 7}));       // ▁ ab
  EXPECT_EQ((*space_a_first)->encode("ab", kPlain), (Ids{6, 5}));  // ▁a b
}

TEST(SpmModel, MergesCharactersThatAreNotTokensAndFallsBackToBytes) {
  auto t = from_writer(tiny_spm(-1, -2));
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)->encode("xy", kPlain), (Ids{3, 8}));  // ▁ xy
  // 'z' has the byte token <0x7A>; 'q' has none and becomes <unk>.
  EXPECT_EQ((*t)->encode("z q", kPlain), (Ids{3, 9, 3, 0}));
}

}  // namespace
}  // namespace pensieve
