// The fast CPU forward pass against the scalar reference: same greedy tokens and close logits on
// synthetic models of each architecture, prompt-in-chunks equals token-by-token, a sliding
// attention window, and the goldens of ../shared/models.
#include "model/forward_cpu.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <unistd.h>

#include <gtest/gtest.h>

#include "model/alloc_counter.h"
#include "model/forward_ref.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

using model_test::argmax;
using model_test::relative_rms;

std::string temp_path(const std::string& name) {
  return model_test::temp_path("pensieve_fwd", name);
}

struct Case {
  const char* preset;
  const char* type;  // quantize target; "F16" keeps the synth output
  GgmlType kv_type;  // the fast pass's cache (the reference's is F32)
  double tolerance;  // relative RMS of logits vs the reference, per step
};

class FastVsReference : public ::testing::TestWithParam<Case> {};

// Greedy decoding driven by the reference: at each of 64 steps both passes see the same token;
// the fast pass's logits must stay within tolerance and (for F16 weights and an F32 cache) pick
// the same token.
TEST_P(FastVsReference, SameGreedyTokensAndCloseLogits) {
  const Case& c = GetParam();
  SynthOptions o;
  o.preset = c.preset;
  o.output_path = temp_path(std::string(c.preset) + ".gguf");
  o.shared_dir = PENSIEVE_SHARED_DIR;
  ASSERT_TRUE(synth_model(o).has_value());
  std::string path = o.output_path;
  if (std::string(c.type) != "F16") {
    path = temp_path(std::string(c.preset) + "-" + c.type + ".gguf");
    ASSERT_TRUE(quantize_model({o.output_path, path, c.type, 2}).has_value());
  }
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value()) << model.error().message;
  const Model& m = **model;
  ReferenceForward ref(m.hparams(), m.weights(), 128);
  CpuForward fast(m.hparams(), m.weights(), 128, 2, 16, c.kv_type);
  ASSERT_EQ(fast.kv_type(), c.kv_type);
  const std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278};
  auto r = ref.eval(prompt);
  auto f = fast.eval(prompt);  // one chunk of 10 tokens
  ASSERT_TRUE(r.has_value() && f.has_value());
  int same = 0;
  for (int step = 0; step < 64; ++step) {
    ASSERT_LT(relative_rms(*r, *f), c.tolerance) << c.preset << " " << c.type << " step " << step;
    const int32_t token = argmax(*r);
    same += argmax(*f) == token;
    r = ref.eval(std::span<const int32_t>(&token, 1));
    f = fast.eval(std::span<const int32_t>(&token, 1));
    ASSERT_TRUE(r.has_value() && f.has_value());
  }
  if (std::string(c.type) == "F16" && c.kv_type == GgmlType::kF32) {
    EXPECT_EQ(same, 64) << c.preset;
  }
  std::filesystem::remove(o.output_path);
  std::filesystem::remove(path);
}

// Tolerances: F16 weights multiply F32 activations (only summation order differs); quantized
// weights multiply activations quantized to 8 bits; an F16 cache rounds k and v to 11 bits, a
// Q8_0 cache to 8 bits per block of 32.
constexpr GgmlType kF32 = GgmlType::kF32;
constexpr GgmlType kF16 = GgmlType::kF16;
constexpr GgmlType kQ8 = GgmlType::kQ8_0;
INSTANTIATE_TEST_SUITE_P(
    Synth, FastVsReference,
    ::testing::Values(Case{"tiny-llama", "F16", kF32, 1e-4}, Case{"tiny-qwen2", "F16", kF32, 1e-4},
                      Case{"tiny-phi3", "F16", kF32, 1e-4}, Case{"tiny-llama3", "F16", kF32, 1e-4},
                      Case{"tiny-phi3-128k", "F16", kF32, 1e-4},
                      Case{"tiny-llama", "F16", kF16, 2e-3}, Case{"tiny-phi3", "F16", kF16, 2e-3},
                      Case{"tiny-qwen2", "F16", kQ8, 0.02}, Case{"tiny-llama", "Q8_0", kF16, 0.02},
                      Case{"tiny-llama", "Q4_0", kF16, 0.03},
                      Case{"tiny-llama", "Q4_K_M", kF16, 0.03},
                      Case{"tiny-qwen2", "Q6_K", kF16, 0.03}, Case{"tiny-phi3", "Q5_K", kQ8, 0.04}),
    [](const auto& param_info) {
      const Case& c = param_info.param;
      std::string n =
          std::string(c.preset) + "_" + c.type + "_kv_" + std::string(ggml_type_name(c.kv_type));
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

// A sliding window over a sequence several windows long: the fast pass (prompt chunks of 16 that
// straddle window starts, then decode steps) against the reference with the same window, on a
// GQA model. The windowed reference must also depart from the full one, or the comparison would
// prove nothing.
TEST(CpuForward, SlidingWindowMatchesReference) {
  SynthOptions o;
  o.preset = "tiny-llama";
  o.output_path = temp_path("tiny-llama-window.gguf");
  o.shared_dir = PENSIEVE_SHARED_DIR;
  ASSERT_TRUE(synth_model(o).has_value());
  auto model = Model::load(o.output_path);
  ASSERT_TRUE(model.has_value()) << model.error().message;
  const Hparams& hp = (*model)->hparams();
  ASSERT_GT(hp.n_head, hp.n_head_kv);
  const std::vector<int32_t> prompt = model_test::spread_prompt(40, hp.n_vocab);
  ReferenceForward full(hp, (*model)->weights(), 128);
  auto u = full.eval(prompt);
  ASSERT_TRUE(u.has_value());
  const std::vector<float> full_logits(u->begin(), u->end());
  for (int64_t window : {5, 33}) {
    SCOPED_TRACE(testing::Message() << "window " << window);
    ReferenceForward ref(hp, (*model)->weights(), 128, window);
    CpuForward fast(hp, (*model)->weights(), 128, 2, 16, GgmlType::kF32, 0, 1, window);
    EXPECT_EQ(fast.attention_window(), window);
    auto r = ref.eval(prompt);
    auto f = fast.eval(prompt);
    ASSERT_TRUE(r.has_value() && f.has_value());
    EXPECT_GT(relative_rms(*r, full_logits), 1e-3);
    int same = 0;
    for (int step = 0; step < 30; ++step) {  // up to position 69
      ASSERT_LT(relative_rms(*r, *f), 1e-4) << "step " << step;
      const int32_t token = argmax(*r);
      same += argmax(*f) == token;
      r = ref.eval(std::span<const int32_t>(&token, 1));
      f = fast.eval(std::span<const int32_t>(&token, 1));
      ASSERT_TRUE(r.has_value() && f.has_value());
    }
    EXPECT_EQ(same, 30);
  }
  std::filesystem::remove(o.output_path);
}

// A window at least as long as the sequence is no window: the same logits, bit for bit, from
// both passes.
TEST(CpuForward, WindowAsLongAsTheSequenceIsFullAttention) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(model.has_value());
  const Hparams& hp = (*model)->hparams();
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(1 + i * 37 % 500);
  auto logits_of = [&tokens](Forward& fwd) {
    std::vector<float> all;
    for (size_t begin = 0; begin < tokens.size(); begin += 25) {
      auto logits = fwd.eval(std::span<const int32_t>(tokens).subspan(begin, 25));
      EXPECT_TRUE(logits.has_value());
      if (logits) all.insert(all.end(), logits->begin(), logits->end());
    }
    return all;
  };
  CpuForward fast_full(hp, (*model)->weights(), 128, 2, 16);
  ReferenceForward ref_full(hp, (*model)->weights(), 128);
  const std::vector<float> want_fast = logits_of(fast_full);
  const std::vector<float> want_ref = logits_of(ref_full);
  for (int64_t window : {100, 101, 128, 100000}) {
    CpuForward fast(hp, (*model)->weights(), 128, 2, 16, GgmlType::kF16, 0, 1, window);
    ReferenceForward ref(hp, (*model)->weights(), 128, window);
    EXPECT_EQ(logits_of(fast), want_fast) << "window " << window;
    EXPECT_EQ(logits_of(ref), want_ref) << "window " << window;
  }
}

TEST(CpuForward, GoldenStories260K) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(model.has_value());
  CpuForward fwd((*model)->hparams(), (*model)->weights(), 128, 2);
  const std::vector<int32_t> expected = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298};
  int32_t token = 1;
  for (int32_t want : expected) {
    auto logits = fwd.eval(std::span<const int32_t>(&token, 1));
    ASSERT_TRUE(logits.has_value());
    token = argmax(*logits);
    EXPECT_EQ(token, want);
  }
}

// The 656K goldens through the fast path (8-bit activations for Q8_0 weights): the full 60 ids.
TEST(CpuForward, GoldenTinyStories656K) {
  const std::vector<int32_t> q8 = {
      147,  201,  282,  215, 286,  598,  1662, 356, 499, 826,  1363, 1145, 1652, 615,  242,
      1482, 951,  628,  499, 826,  872,  921,  318, 385, 628,  499,  826,  617,  242,  198,
      1047, 425,  1939, 122, 1924, 1171, 94,   303, 328, 229,  521,  776,  115,  1139, 312,
      447,  1456, 319,  115, 133,  114,  100,  167, 753, 1665, 361,  303,  1900, 319,  960};
  for (const char* file : {"TinyStories-656K-Q8_0.gguf", "TinyStories-656K-F16.gguf"}) {
    auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/" + file);
    ASSERT_TRUE(model.has_value());
    CpuForward fwd((*model)->hparams(), (*model)->weights(), 128, 2);
    std::vector<int32_t> expected = q8;
    if (std::string(file).find("F16") != std::string::npos) expected.back() = 467;
    std::vector<int32_t> got;
    int32_t token = 1;
    for (size_t i = 0; i < expected.size(); ++i) {
      auto logits = fwd.eval(std::span<const int32_t>(&token, 1));
      ASSERT_TRUE(logits.has_value());
      token = argmax(*logits);
      got.push_back(token);
    }
    EXPECT_EQ(got, expected) << file;
  }
}

// Prompt chunks and decode steps allocate nothing: every buffer is sized at construction.
TEST(CpuForward, TokenLoopDoesNotAllocate) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(model.has_value());
  CpuForward fwd((*model)->hparams(), (*model)->weights(), 128, 2, 8);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298};
  AllocationCounter counter;
  auto logits = fwd.eval(prompt);  // two chunks of up to 8
  int32_t token = 1;
  for (int i = 0; i < 20 && logits.has_value(); ++i) {
    token = argmax(*logits);
    logits = fwd.eval(std::span<const int32_t>(&token, 1));
  }
  const int64_t allocations = counter.count();
  ASSERT_TRUE(logits.has_value());
  EXPECT_EQ(allocations, 0);
}

// The memory budget is planned before the forward pass exists: the plan must be what it then
// allocates, for every model shape, cache type, batch and thread count.
TEST(CpuForward, MemoryPlanIsWhatItAllocates) {
  for (const char* name : {"stories260K.gguf", "TinyStories-656K-Q8_0.gguf"}) {
    auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/" + name);
    ASSERT_TRUE(model.has_value()) << name;
    const Hparams& hp = (*model)->hparams();
    for (GgmlType kv : {GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kF32}) {
      for (auto [batch, threads] : {std::pair{8, 1}, std::pair{256, 2}, std::pair{33, 3}}) {
        CpuForward fwd(hp, (*model)->weights(), 64, threads, batch, kv);
        const CpuForward::MemoryPlan plan = CpuForward::memory_plan(hp, batch, threads, kv);
        const CpuForward::MemoryPlan real = fwd.allocated();
        EXPECT_EQ(plan.kv_bytes_per_position, real.kv_bytes_per_position) << name;
        EXPECT_EQ(plan.scratch_bytes, real.scratch_bytes) << name << " batch " << batch;
        EXPECT_EQ(static_cast<uint64_t>(plan.kv_bytes_per_position) * 64, fwd.kv_cache_bytes());
        EXPECT_GT(plan.scratch_bytes, 0);
      }
    }
  }
}

// Discarded blocks lose their pages (they come back zeroed): a sequence written over them
// afterwards evaluates exactly as on a fresh pool.
TEST(CpuForward, DiscardedBlocksGiveMemoryBackAndStayUsable) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/TinyStories-656K-F16.gguf");
  ASSERT_TRUE(model.has_value());
  const Hparams& hp = (*model)->hparams();
  std::vector<int32_t> prompt(100);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + i * 37 % 500);
  CpuForward fresh(hp, (*model)->weights(), 128, 1, 128, GgmlType::kF32);
  auto expected = fresh.eval(prompt);
  ASSERT_TRUE(expected.has_value());
  const std::vector<float> want(expected->begin(), expected->end());

  CpuForward fwd(hp, (*model)->weights(), 128, 1, 128, GgmlType::kF32);
  ASSERT_TRUE(fwd.eval(prompt).has_value());
  const std::vector<int32_t> all = {0, 1, 2, 3};
  const int64_t block_bytes = static_cast<int64_t>(fwd.kv_cache_bytes()) / fwd.n_blocks();
  const int64_t released = fwd.discard_blocks(all);
  // Every whole page inside each block goes back.
  EXPECT_GE(released, 4 * (block_bytes - 2 * 4096));
  EXPECT_LE(released, static_cast<int64_t>(fwd.kv_cache_bytes()));
  fwd.reset();
  auto again = fwd.eval(prompt);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(std::vector<float>(again->begin(), again->end()), want);
}

TEST(CpuForward, RejectsPromptLongerThanContext) {
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(model.has_value());
  CpuForward fwd((*model)->hparams(), (*model)->weights(), 8, 1);
  const std::vector<int32_t> prompt(9, 1);
  auto logits = fwd.eval(prompt);
  ASSERT_FALSE(logits.has_value());
  EXPECT_EQ(logits.error().code, ErrorCode::kOutOfRange);
  const std::vector<int32_t> bad = {1, 100000};
  EXPECT_FALSE(fwd.eval(bad).has_value());
}

}  // namespace
}  // namespace pensieve
