// Greedy goldens of ../shared/models: prompt = BOS, argmax, 60 tokens, ids exactly equal.
#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

#include "model/forward_ref.h"
#include "model/model.h"

namespace pensieve {
namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

const char* kStories260K =
    "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 "
    "292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 "
    "266 267 337 335 312 432 398 312 286 267 414 270 333 415";
const char* kTinyStoriesQ8 =
    "147 201 282 215 286 598 1662 356 499 826 1363 1145 1652 615 242 1482 951 628 499 826 872 921 "
    "318 385 628 499 826 617 242 198 1047 425 1939 122 1924 1171 94 303 328 229 521 776 115 1139 "
    "312 447 1456 319 115 133 114 100 167 753 1665 361 303 1900 319 960";

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
    token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    out.push_back(token);
  }
  return out;
}

TEST(Golden, Stories260KGreedy) {
  EXPECT_EQ(greedy_from_bos("stories260K.gguf", 60), parse_ids(kStories260K));
}

TEST(Golden, TinyStories656KQ8_0Greedy) {
  EXPECT_EQ(greedy_from_bos("TinyStories-656K-Q8_0.gguf", 60), parse_ids(kTinyStoriesQ8));
}

TEST(Golden, TinyStories656KF16Greedy) {
  auto expected = parse_ids(kTinyStoriesQ8);
  expected.back() = 467;  // the F16 file differs from Q8_0 in the last token only
  EXPECT_EQ(greedy_from_bos("TinyStories-656K-F16.gguf", 60), expected);
}

}  // namespace
}  // namespace pensieve
