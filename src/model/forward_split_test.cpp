// A model split into two layer stages (SplitForward over two CpuForwards) gives the logits of the
// whole model bit for bit, at every split point, over batched prompts and decode steps; a stage
// refuses the calls its range cannot serve; its memory plan is its range's.
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "model/forward_cpu.h"
#include "model/forward_split.h"
#include "model/model.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

constexpr int64_t kCtx = 96;
constexpr int64_t kBlocks = 2 * ((kCtx + cpu::kKvBlockPositions - 1) / cpu::kKvBlockPositions);

std::unique_ptr<Model> load(const char* name) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/" + name);
  EXPECT_TRUE(model.has_value()) << name;
  return model ? std::move(*model) : nullptr;
}

std::unique_ptr<CpuForward> stage(const Model& m, LayerRange layers) {
  return std::make_unique<CpuForward>(m.hparams(), m.weights(), kCtx, 2, 64, GgmlType::kF16,
                                      kBlocks, 2, 0, layers);
}

// Two sequences (prompts of 37 and 5 tokens, then 30 greedy tokens each, one step for both):
// every step's logits, [2, n_vocab] each.
std::vector<std::vector<float>> run(BatchForward& fwd, int64_t n_vocab) {
  std::vector<int32_t> prompt_a(37), prompt_b(5);
  for (size_t i = 0; i < prompt_a.size(); ++i) prompt_a[i] = static_cast<int32_t>(1 + i * 13 % 200);
  for (size_t i = 0; i < prompt_b.size(); ++i) prompt_b[i] = static_cast<int32_t>(2 + i * 7 % 200);
  const std::vector<int32_t> table_a = {0, 1, 2};
  const std::vector<int32_t> table_b = {5, 4, 3};
  std::vector<BatchSegment> segments = {{prompt_a, 0, table_a}, {prompt_b, 0, table_b}};
  std::vector<std::vector<float>> steps;
  int64_t pos_a = 37, pos_b = 5;
  int32_t next[2];
  for (int step = 0; step <= 30; ++step) {
    auto logits = fwd.eval_batch(segments);
    EXPECT_TRUE(logits.has_value()) << logits.error().message;
    if (!logits) return steps;
    steps.emplace_back(logits->begin(), logits->end());
    for (size_t s = 0; s < 2; ++s) {
      next[s] = model_test::argmax(
          logits->subspan(s * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab)));
    }
    segments = {{std::span<const int32_t>(&next[0], 1), pos_a++, table_a},
                {std::span<const int32_t>(&next[1], 1), pos_b++, table_b}};
  }
  return steps;
}

TEST(Split, EverySplitPointGivesTheWholeModelsLogits) {
  for (const char* name : {"stories260K.gguf", "TinyStories-656K-Q8_0.gguf"}) {
    auto model = load(name);
    ASSERT_NE(model, nullptr);
    const Hparams& hp = model->hparams();
    ASSERT_GE(hp.n_layer, 2) << name;
    CpuForward whole(hp, model->weights(), kCtx, 2, 64, GgmlType::kF16, kBlocks, 2);
    const std::vector<std::vector<float>> want = run(whole, hp.n_vocab);
    ASSERT_EQ(want.size(), 31u);
    for (int64_t k = 1; k < hp.n_layer; ++k) {
      SplitForward split(stage(*model, {0, k}), stage(*model, {k, -1}));
      const std::vector<std::vector<float>> got = run(split, hp.n_vocab);
      ASSERT_EQ(got.size(), want.size()) << name << " split at layer " << k;
      for (size_t step = 0; step < want.size(); ++step) {
        ASSERT_TRUE(got[step] == want[step]) << name << " split at layer " << k << " step " << step;
      }
    }
  }
}

TEST(Split, StagesRefuseWhatTheirRangeCannotServe) {
  auto model = load("stories260K.gguf");
  ASSERT_NE(model, nullptr);
  const int64_t n_embd = model->hparams().n_embd;
  auto front = stage(*model, {0, 1});
  auto back = stage(*model, {1, -1});
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> table = {0};
  const std::vector<BatchSegment> segments = {{tokens, 0, table}};
  // A part of the model has no logits of its own.
  auto whole = front->eval_batch(segments);
  ASSERT_FALSE(whole.has_value());
  EXPECT_NE(whole.error().message.find("layers [0, 1)"), std::string::npos)
      << whole.error().message;
  EXPECT_FALSE(back->eval(tokens).has_value());
  // The front begins from the embeddings; the back needs one hidden state a token.
  const std::vector<float> hidden(static_cast<size_t>(3 * n_embd), 0.5f);
  EXPECT_FALSE(front->eval_layers(segments, hidden).has_value());
  EXPECT_FALSE(back->eval_layers(segments, {}).has_value());
  EXPECT_FALSE(back->eval_layers(segments, std::span<const float>(hidden).first(hidden.size() - 1))
                   .has_value());
  auto out = front->eval_layers(segments, {});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->size(), hidden.size());
  auto logits = back->eval_layers(segments, *out);
  ASSERT_TRUE(logits.has_value()) << logits.error().message;
  EXPECT_EQ(logits->size(), static_cast<size_t>(model->hparams().n_vocab));
}

// A stage keeps K and V for its own layers only, and plans what it allocates; a discard reaches
// both stages' pools.
TEST(Split, StagesHoldTheirOwnLayersCache) {
  auto model = load("TinyStories-656K-Q8_0.gguf");
  ASSERT_NE(model, nullptr);
  const Hparams& hp = model->hparams();
  CpuForward whole(hp, model->weights(), kCtx, 2, 64, GgmlType::kF16, kBlocks, 2);
  const int64_t k = hp.n_layer / 2;
  auto front = stage(*model, {0, k});
  auto back = stage(*model, {k, -1});
  EXPECT_EQ(front->kv_cache_bytes() + back->kv_cache_bytes(), whole.kv_cache_bytes());
  EXPECT_EQ(front->kv_cache_bytes() * static_cast<uint64_t>(hp.n_layer),
            whole.kv_cache_bytes() * static_cast<uint64_t>(k));
  const CpuForward::MemoryPlan plan =
      CpuForward::memory_plan(hp, 64, 2, GgmlType::kF16, 2, hp.n_layer - k);
  EXPECT_EQ(plan.kv_bytes_per_position, back->allocated().kv_bytes_per_position);
  EXPECT_EQ(plan.scratch_bytes, back->allocated().scratch_bytes);
  const uint64_t back_bytes = back->kv_cache_bytes();
  SplitForward split(std::move(front), std::move(back));
  std::vector<int32_t> all(static_cast<size_t>(kBlocks));
  std::iota(all.begin(), all.end(), 0);
  EXPECT_GT(split.discard_blocks(all), static_cast<int64_t>(back_bytes) / 2);
}

}  // namespace
}  // namespace pensieve
