// Golden vectors from ../shared/vocab: every test string must tokenize to exactly the ids that
// llama.cpp's test-tokenizer-0 expects (no BOS, special tokens not parsed).
#include <gtest/gtest.h>

#include "tokenizer/test_support.h"

namespace pensieve {
namespace {

using testing_support::escaped;
using testing_support::ids_string;

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, EveryStringTokenizesToTheExpectedIds) {
  const std::string name = GetParam();
  std::string error;
  const auto tokenizer = testing_support::load_vocab(name, &error);
  ASSERT_NE(tokenizer, nullptr) << error;
  const std::string base = testing_support::vocab_path(name);
  const auto inputs = testing_support::read_inputs(base + ".inp");
  const auto outputs = testing_support::read_outputs(base + ".out");
  ASSERT_EQ(inputs.size(), outputs.size()) << base;
  ASSERT_GE(inputs.size(), 40u);
  size_t n_bad = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> got = tokenizer->encode(inputs[i], EncodeOptions{});
    if (got != outputs[i]) {
      ++n_bad;
      ADD_FAILURE() << name << " string " << i << " '" << escaped(inputs[i]) << "'\n  expected "
                    << ids_string(outputs[i]) << "\n  got      " << ids_string(got);
    }
  }
  EXPECT_EQ(n_bad, 0u) << "of " << inputs.size() << " strings";
}

// Decoding gives the input back for every vector string: byte-level BPE is lossless, and
// SentencePiece decoding removes the space that encoding put in front.
TEST_P(VocabVectors, DecodingGivesTheInputBack) {
  const std::string name = GetParam();
  std::string error;
  const auto tokenizer = testing_support::load_vocab(name, &error);
  ASSERT_NE(tokenizer, nullptr) << error;
  const auto inputs = testing_support::read_inputs(testing_support::vocab_path(name) + ".inp");
  ASSERT_FALSE(inputs.empty());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer->encode(inputs[i], EncodeOptions{true, false});
    EXPECT_EQ(tokenizer->decode(ids, true), inputs[i]) << name << " string " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, VocabVectors,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "starcoder",
                                           "deepseek-coder", "falcon"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace pensieve
