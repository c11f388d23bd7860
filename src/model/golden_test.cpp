// Greedy goldens of ../shared/models: prompt = BOS, argmax, 60 tokens, ids exactly equal.

#include <gtest/gtest.h>

#include "model/forward_ref.h"
#include "model/model.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

using model_test::kStories260KGreedy;
using model_test::kTinyStoriesF16LastToken;
using model_test::kTinyStoriesQ8Greedy;
using model_test::parse_ids;

// Returns the greedy continuation of BOS, n tokens.
std::vector<int32_t> greedy_from_bos(const std::string& model, int n) {
  auto loaded = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/" + model);
  EXPECT_TRUE(loaded.has_value()) << loaded.error().message;
  if (!loaded) return {};
  const Model& m = **loaded;
  ReferenceForward fwd(m.hparams(), m.weights(), 128);
  int32_t token = static_cast<int32_t>(m.file().get_uint_or("tokenizer.ggml.bos_token_id", 1));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    auto logits = fwd.step(token);
    EXPECT_TRUE(logits.has_value());
    if (!logits) break;
    token = model_test::argmax(*logits);
    out.push_back(token);
  }
  return out;
}

TEST(Golden, Stories260KGreedy) {
  EXPECT_EQ(greedy_from_bos("stories260K.gguf", 60), parse_ids(kStories260KGreedy));
}

TEST(Golden, TinyStories656KQ8_0Greedy) {
  EXPECT_EQ(greedy_from_bos("TinyStories-656K-Q8_0.gguf", 60), parse_ids(kTinyStoriesQ8Greedy));
}

TEST(Golden, TinyStories656KF16Greedy) {
  auto expected = parse_ids(kTinyStoriesQ8Greedy);
  expected.back() = kTinyStoriesF16LastToken;
  EXPECT_EQ(greedy_from_bos("TinyStories-656K-F16.gguf", 60), expected);
}

}  // namespace
}  // namespace pensieve
