// Several sequences in one step through a paged KV cache: each sequence's logits are bit-identical
// to running it alone through eval() (matmul rows and attention rows do not depend on what shares
// their call), whatever blocks of the pool its table names; bad batches are errors. The greedy
// step picks as greedy_pick does from the logits, and greedy_pick takes the first of equal
// maxima and refuses logits that are not finite.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "model/forward_cpu.h"
#include "model/model.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

constexpr int64_t kBlock = cpu::kKvBlockPositions;

std::unique_ptr<Model> load(const char* name) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/" + name);
  EXPECT_TRUE(model.has_value()) << name;
  return model ? std::move(*model) : nullptr;
}

using model_test::argmax;

// One sequence decoded alone: the logits after its prompt and after each of `steps` greedy
// tokens.
std::vector<std::vector<float>> alone(const Model& m, GgmlType kv,
                                      const std::vector<int32_t>& prompt, int steps) {
  CpuForward fwd(m.hparams(), m.weights(), 256, 2, 64, kv);
  std::vector<std::vector<float>> out;
  auto logits = fwd.eval(prompt);
  EXPECT_TRUE(logits.has_value());
  out.emplace_back(logits->begin(), logits->end());
  for (int i = 0; i < steps; ++i) {
    const int32_t token = argmax(out.back());
    logits = fwd.eval(std::span<const int32_t>(&token, 1));
    EXPECT_TRUE(logits.has_value());
    out.emplace_back(logits->begin(), logits->end());
  }
  return out;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class Batch : public ::testing::TestWithParam<std::tuple<const char*, GgmlType>> {};

TEST_P(Batch, EachSequenceEqualsItselfAlone) {
  const auto [name, kv] = GetParam();
  auto model = load(name);
  ASSERT_NE(model, nullptr);
  const int32_t n_vocab = static_cast<int32_t>(model->hparams().n_vocab);
  // Prompts of different lengths (one crossing a block boundary), so the segments differ.
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> prompts;
  for (int len : {5, 40, 17}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (int32_t& t : p) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(n_vocab));
    p[0] = 1;
    prompts.push_back(p);
  }
  constexpr int kSteps = 40;
  std::vector<std::vector<std::vector<float>>> expected;
  for (const auto& p : prompts) expected.push_back(alone(*model, kv, p, kSteps));

  // One pool for all three; each sequence gets scattered blocks.
  const int64_t per_seq = (40 + kSteps + kBlock) / kBlock + 1;
  const int64_t n_blocks = 3 * per_seq + 5;
  CpuForward fwd(model->hparams(), model->weights(), 256, 2, 64, kv, n_blocks, 3);
  std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<std::vector<int32_t>> tables(3);
  for (size_t s = 0; s < 3; ++s) {
    tables[s].assign(ids.begin() + static_cast<int64_t>(s) * per_seq,
                     ids.begin() + static_cast<int64_t>(s + 1) * per_seq);
  }
  // Step 0: all three prompts in one batch.
  std::vector<BatchSegment> segments;
  for (size_t s = 0; s < 3; ++s) segments.push_back({prompts[s], 0, tables[s]});
  auto logits = fwd.eval_batch(segments);
  ASSERT_TRUE(logits.has_value()) << logits.error().message;
  std::vector<int64_t> pos = {5, 40, 17};
  std::vector<int> done(3, 0);  // steps each sequence has taken
  std::vector<int32_t> next(3);
  for (size_t s = 0; s < 3; ++s) {
    const auto row =
        logits->subspan(s * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab));
    ASSERT_TRUE(same_bits(row, expected[s][0])) << name << " sequence " << s << " prompt";
    next[s] = argmax(row);
  }
  // Decode rounds of one token per member; sequence 1 sits out every third round, so the batch's
  // membership changes as it does under continuous batching.
  for (int round = 0; done[0] < kSteps || done[1] < kSteps || done[2] < kSteps; ++round) {
    segments.clear();
    std::vector<size_t> members;
    for (size_t s = 0; s < 3; ++s) {
      if (done[s] == kSteps || (s == 1 && round % 3 == 2)) continue;
      members.push_back(s);
      segments.push_back({std::span<const int32_t>(&next[s], 1), pos[s], tables[s]});
    }
    if (members.empty()) continue;  // only the one sitting out is left
    auto out = fwd.eval_batch(segments);
    ASSERT_TRUE(out.has_value()) << out.error().message;
    for (size_t i = 0; i < members.size(); ++i) {
      const size_t s = members[i];
      const auto row = out->subspan(i * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab));
      ++done[s];
      ++pos[s];
      ASSERT_TRUE(same_bits(row, expected[s][static_cast<size_t>(done[s])]))
          << name << " sequence " << s << " step " << done[s];
      next[s] = argmax(row);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Batch,
                         ::testing::Values(std::tuple{"stories260K.gguf", GgmlType::kF16},
                                           std::tuple{"TinyStories-656K-Q8_0.gguf", GgmlType::kF16},
                                           std::tuple{"TinyStories-656K-Q8_0.gguf",
                                                      GgmlType::kQ8_0},
                                           std::tuple{"stories260K.gguf", GgmlType::kF32}),
                         [](const auto& p) {
                           std::string name = std::get<0>(p.param);
                           name = name.substr(0, name.find('.'));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name + "_" + std::string(ggml_type_name(std::get<1>(p.param)));
                         });

// stories260K over a pool of 8 blocks, at most 2 sequences and 16 tokens a step.
class SmallPool : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load("stories260K.gguf");
    ASSERT_NE(model_, nullptr);
    forward_ = std::make_unique<CpuForward>(model_->hparams(), model_->weights(), 128, 1, 16,
                                            GgmlType::kF16, 8, 2);
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<CpuForward> forward_;
};

TEST_F(SmallPool, RejectsBadBatches) {
  CpuForward& fwd = *forward_;
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> table = {3, 5};
  const std::vector<int32_t> outside = {3, 8};
  const std::vector<int32_t> many(20, 1);
  auto message = [&](std::vector<BatchSegment> segments) {
    auto r = fwd.eval_batch(segments);
    return r ? std::string("(no error)") : r.error().message;
  };
  EXPECT_EQ(message({}), "forward: 0 sequences in a batch; 1..2 fit");
  EXPECT_EQ(message({{tokens, 0, table}, {tokens, 0, table}, {tokens, 0, table}}),
            "forward: 3 sequences in a batch; 1..2 fit");
  EXPECT_EQ(message({{{}, 0, table}}), "forward: a sequence has no tokens");
  EXPECT_EQ(message({{tokens, 62, table}}),
            "forward: a block table of 2 blocks does not cover 65 positions");
  EXPECT_EQ(message({{tokens, 40, outside}}), "forward: block 8 is outside the pool of 8 blocks");
  EXPECT_EQ(message({{many, 0, table}}), "forward: 20 tokens in a batch; at most 16 fit");
  EXPECT_EQ(message({{tokens, 126, table}}),
            "forward: positions 126..128 are outside the context of 128");
  const std::vector<int32_t> bad_token = {1, 100000};
  EXPECT_EQ(message({{bad_token, 0, table}}), "forward: token id 100000 is outside [0, 512)");
  EXPECT_EQ(message({{tokens, 0, table}}), "(no error)");
}

TEST(Batch, GreedyPickTakesTheFirstLargestAndRefusesNonFinite) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(greedy_pick(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f}), 1);
  EXPECT_EQ(greedy_pick(std::vector<float>{-2.0f}), 0);
  EXPECT_EQ(greedy_pick(std::vector<float>{0.5f, nan, 7.0f}), -1);
  EXPECT_EQ(greedy_pick(std::vector<float>{0.5f, 7.0f, inf}), -1);
  EXPECT_EQ(greedy_pick(std::vector<float>{-inf, 0.5f}), -1);
}

// The default eval_batch_greedy: the same step's logits, picked on the host.
TEST_F(SmallPool, GreedyStepPicksFromTheLogits) {
  CpuForward& fwd = *forward_;
  const std::vector<int32_t> a = {1, 2, 3};
  const std::vector<int32_t> b = {1, 400};
  const std::vector<int32_t> table_a = {0, 1};
  const std::vector<int32_t> table_b = {2, 3};
  const std::vector<BatchSegment> segments = {{a, 0, table_a}, {b, 0, table_b}};
  auto logits = fwd.eval_batch(segments);
  ASSERT_TRUE(logits.has_value());
  const std::vector<float> copy(logits->begin(), logits->end());
  auto picks = fwd.eval_batch_greedy(segments);  // the same positions again: the same logits
  ASSERT_TRUE(picks.has_value());
  ASSERT_EQ(picks->size(), 2u);
  const size_t n_vocab = copy.size() / 2;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*picks)[i], greedy_pick(std::span<const float>(copy).subspan(i * n_vocab, n_vocab)));
  }
  EXPECT_FALSE(fwd.eval_batch_greedy(std::vector<BatchSegment>{}).has_value());
}

}  // namespace
}  // namespace pensieve
