// The CUDA forward pass against the scalar reference: the goldens of ../shared/models exactly,
// close logits and the same greedy tokens on the real models and on synthetic ones of each
// architecture and weight type, prompts in chunks, on the tensor cores or not, graph replays
// against plain launches, sliding windows, the memory plan and the errors. Tests that need a GPU
// skip without one.
#include "model/forward_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "model/forward_ref.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

#define PV_NEED_DEVICE() \
  if (!device_available()) GTEST_SKIP() << "no CUDA device"

std::string model_path(const std::string& name) {
  return std::string(PENSIEVE_SHARED_DIR) + "/models/" + name;
}

using model_test::argmax;
using model_test::max_diff_over_range;
using model_test::parse_ids;
using model_test::relative_rms;

std::string temp_path(const std::string& name) {
  return model_test::temp_path("pensieve_cuda", name);
}

std::unique_ptr<CudaForward> make_cuda(const Model& m, int64_t n_ctx,
                                       const CudaForwardOptions& options = {}) {
  auto fwd = CudaForward::create(m.hparams(), m.weights(), n_ctx, options);
  EXPECT_TRUE(fwd.has_value()) << fwd.error().message;
  return fwd ? std::move(*fwd) : nullptr;
}

std::vector<int32_t> cuda_greedy_from_bos(const std::string& file, int n) {
  auto model = Model::load(model_path(file));
  EXPECT_TRUE(model.has_value()) << model.error().message;
  if (!model) return {};
  auto fwd = make_cuda(**model, 128);
  if (fwd == nullptr) return {};
  int32_t token =
      static_cast<int32_t>((*model)->file().get_uint_or("tokenizer.ggml.bos_token_id", 1));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    auto logits = fwd->eval(std::span<const int32_t>(&token, 1));
    EXPECT_TRUE(logits.has_value()) << logits.error().message;
    if (!logits) break;
    token = argmax(*logits);
    out.push_back(token);
  }
  return out;
}

TEST(CudaForward, GoldenStories260K) {
  PV_NEED_DEVICE();
  EXPECT_EQ(cuda_greedy_from_bos("stories260K.gguf", 60),
            parse_ids(model_test::kStories260KGreedy));
}

TEST(CudaForward, GoldenTinyStories656KQ8_0) {
  PV_NEED_DEVICE();
  EXPECT_EQ(cuda_greedy_from_bos("TinyStories-656K-Q8_0.gguf", 60),
            parse_ids(model_test::kTinyStoriesQ8Greedy));
}

TEST(CudaForward, GoldenTinyStories656KF16) {
  PV_NEED_DEVICE();
  auto expected = parse_ids(model_test::kTinyStoriesQ8Greedy);
  expected.back() = model_test::kTinyStoriesF16LastToken;
  EXPECT_EQ(cuda_greedy_from_bos("TinyStories-656K-F16.gguf", 60), expected);
}

// Greedy decoding driven by the reference (F32 cache): a 20-token prompt in one pass (on the
// tensor cores: at least CudaForwardOptions::gemm_min_tokens), then 64 steps in which both see
// the same token. Logits must stay within `tolerance` (relative RMS and
// largest difference over the logit range); with `same_tokens` every step's argmax must agree,
// otherwise a differing pick must be a near-tie in the reference.
void compare_with_reference(const Model& m, double tolerance, bool same_tokens,
                            int64_t max_batch = 64, int64_t window = 0) {
  ReferenceForward ref(m.hparams(), m.weights(), 128, window);
  auto gpu = make_cuda(m, 128, {0, max_batch, window});
  ASSERT_NE(gpu, nullptr);
  std::vector<int32_t> prompt = {1,   450,  4996, 17354, 1701, 29916, 432, 17204, 975, 278,
                                 263, 2319, 4799, 29892, 322,  278,   338, 3290,  297, 1794};
  for (int32_t& t : prompt) t %= static_cast<int32_t>(m.hparams().n_vocab);
  auto r = ref.eval(prompt);
  auto g = gpu->eval(prompt);
  ASSERT_TRUE(r.has_value() && g.has_value());
  int same = 0;
  double worst_rms = 0, worst_diff = 0;
  for (int step = 0; step < 64; ++step) {
    worst_rms = std::max(worst_rms, relative_rms(*r, *g));
    worst_diff = std::max(worst_diff, max_diff_over_range(*r, *g));
    ASSERT_LT(relative_rms(*r, *g), tolerance) << "step " << step;
    ASSERT_LT(max_diff_over_range(*r, *g), tolerance) << "step " << step;
    const int32_t token = argmax(*r);
    const int32_t pick = argmax(*g);
    same += pick == token;
    if (!same_tokens && pick != token) {
      const auto [lo, hi] = std::minmax_element(r->begin(), r->end());
      EXPECT_LT(((*r)[token] - (*r)[pick]) / (*hi - *lo), tolerance) << "step " << step;
    }
    r = ref.eval(std::span<const int32_t>(&token, 1));
    g = gpu->eval(std::span<const int32_t>(&token, 1));
    ASSERT_TRUE(r.has_value() && g.has_value());
  }
  if (same_tokens) {
    EXPECT_EQ(same, 64);
  }
  std::cout << "  worst relative RMS " << worst_rms << ", worst difference / range " << worst_diff
            << ", same tokens " << same << "/64\n";
}

struct RealCase {
  const char* file;
  bool same_tokens;
  double tolerance;
};

void PrintTo(const RealCase& c, std::ostream* os) { *os << c.file; }

class CudaForwardReal : public ::testing::TestWithParam<RealCase> {};

// Tolerances: the reference keeps K and V in F32, the GPU in F16 (11-bit mantissas); the weights
// are the same dequantized values. Prompts multiply F16-rounded activations on the tensor cores;
// decode steps multiply quantized weights with activations quantized to 8 bits (as the CPU fast
// path does, with its tolerances), other weights with F32 activations.
TEST_P(CudaForwardReal, MatchesReference) {
  PV_NEED_DEVICE();
  auto model = Model::load(model_path(GetParam().file));
  ASSERT_TRUE(model.has_value()) << model.error().message;
  compare_with_reference(**model, GetParam().tolerance, GetParam().same_tokens);
}

INSTANTIATE_TEST_SUITE_P(CudaModels, CudaForwardReal,
                         ::testing::Values(RealCase{"stories260K.gguf", true, 5e-3},
                                           RealCase{"TinyStories-656K-F16.gguf", true, 5e-3},
                                           RealCase{"TinyStories-656K-Q8_0.gguf", false, 0.02}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.file;
                           n = n.substr(0, n.find(".gguf"));
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

struct SynthCase {
  const char* preset;
  const char* type;  // quantize target; "F16" keeps the synth output
};

void PrintTo(const SynthCase& c, std::ostream* os) { *os << c.preset << " " << c.type; }

// A synthetic model of `preset` in `type`, removed at the end of the test.
class SynthModel {
 public:
  SynthModel(const std::string& preset, const std::string& type) {
    SynthOptions o;
    o.preset = preset;
    o.output_path = temp_path(preset + ".gguf");
    o.shared_dir = PENSIEVE_SHARED_DIR;
    paths_.push_back(o.output_path);
    if (auto made = synth_model(o); !made) {
      ADD_FAILURE() << made.error().message;
      return;
    }
    if (type != "F16") {
      paths_.push_back(temp_path(preset + "-" + type + ".gguf"));
      if (auto q = quantize_model({o.output_path, paths_.back(), type, 2}); !q) {
        ADD_FAILURE() << q.error().message;
        return;
      }
    }
    auto loaded = Model::load(paths_.back());
    if (!loaded) {
      ADD_FAILURE() << loaded.error().message;
      return;
    }
    model_ = std::move(*loaded);
  }
  ~SynthModel() {
    for (const std::string& p : paths_) std::filesystem::remove(p);
  }
  const Model* get() const { return model_.get(); }

 private:
  std::vector<std::string> paths_;
  std::unique_ptr<Model> model_;
};

class CudaForwardSynth : public ::testing::TestWithParam<SynthCase> {};

// Tolerances as for the real models: 8-bit activations for the quantized weights (Q8_0, Q4_0 and
// the K-quants alike: the weights are the reference's dequantized values, the difference comes
// from rounding x to 8 bits per block of 32, so the K-quants get Q4_0's bound).
TEST_P(CudaForwardSynth, MatchesReference) {
  PV_NEED_DEVICE();
  const SynthCase& c = GetParam();
  SynthModel model(c.preset, c.type);
  ASSERT_NE(model.get(), nullptr);
  const std::string type = c.type;
  const double tolerance = type == "F16" ? 5e-3 : type == "Q8_0" ? 0.02 : 0.03;
  compare_with_reference(*model.get(), tolerance, type == "F16");
}

INSTANTIATE_TEST_SUITE_P(
    CudaSynth, CudaForwardSynth,
    ::testing::Values(SynthCase{"tiny-llama", "F16"}, SynthCase{"tiny-qwen2", "F16"},
                      SynthCase{"tiny-phi3", "F16"}, SynthCase{"tiny-llama3", "F16"},
                      SynthCase{"tiny-phi3-128k", "F16"}, SynthCase{"tiny-llama", "Q8_0"},
                      SynthCase{"tiny-llama", "Q4_0"}, SynthCase{"tiny-qwen2", "Q4_0"},
                      SynthCase{"tiny-phi3", "Q8_0"}, SynthCase{"tiny-llama", "Q4_K"},
                      SynthCase{"tiny-qwen2", "Q5_K"}, SynthCase{"tiny-phi3", "Q6_K"},
                      SynthCase{"tiny-llama", "Q4_K_M"}),
    [](const auto& param_info) {
      std::string n = std::string(param_info.param.preset) + "_" + param_info.param.type;
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

// A prompt in one pass, in chunks of 7 and token by token: the same logits after it, up to
// summation order (F32 activations throughout: no tensor-core chunks).
TEST(CudaForward, PromptChunksMatchOnePass) {
  PV_NEED_DEVICE();
  auto model = Model::load(model_path("TinyStories-656K-F16.gguf"));
  ASSERT_TRUE(model.has_value());
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + i * 37 % 2000);
  constexpr int64_t kNoGemm = 1000;
  auto whole = make_cuda(**model, 128, {0, 64, 0, kNoGemm});
  ASSERT_NE(whole, nullptr);
  auto w = whole->eval(prompt);
  ASSERT_TRUE(w.has_value());
  const std::vector<float> want(w->begin(), w->end());
  for (int64_t max_batch : {7, 1}) {
    auto chunked = make_cuda(**model, 128, {0, max_batch, 0, kNoGemm});
    ASSERT_NE(chunked, nullptr);
    auto c = chunked->eval(prompt);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(chunked->n_past(), 40);
    EXPECT_LT(max_diff_over_range(want, *c), 1e-5) << "max_batch " << max_batch;
    EXPECT_EQ(argmax(want), argmax(*c));
  }
  // Feeding the same prompt piecewise through eval() calls gives the same, too.
  auto pieces = make_cuda(**model, 128, {0, 64, 0, kNoGemm});
  ASSERT_NE(pieces, nullptr);
  std::span<const float> last;
  for (size_t begin = 0; begin < prompt.size(); begin += 13) {
    const size_t n = std::min<size_t>(13, prompt.size() - begin);
    auto logits = pieces->eval(std::span<const int32_t>(prompt).subspan(begin, n));
    ASSERT_TRUE(logits.has_value());
    last = *logits;
  }
  EXPECT_LT(max_diff_over_range(want, last), 1e-5);
}

// A prompt on the tensor cores against the same prompt through the F32 kernels, for each weight
// type the tensor cores read; the logits after it agree to F16 rounding. Chunks of 24 and a
// last one of 8 mix both paths in one prompt. The same chunks on the int8 tensor cores
// (gemm_q8, quantized types) agree within the bound of 8-bit activations.
TEST(CudaForward, TensorCorePromptMatchesF32Prompt) {
  PV_NEED_DEVICE();
  for (const char* type : {"F16", "Q8_0", "Q4_0", "Q4_K_M"}) {
    SCOPED_TRACE(type);
    SynthModel model("tiny-llama", type);
    ASSERT_NE(model.get(), nullptr);
    const Model& m = *model.get();
    const std::vector<int32_t> prompt = model_test::spread_prompt(56, m.hparams().n_vocab);
    CudaForwardOptions plain_options{0, 64, 0, 1000, 1};
    plain_options.q8_gemm_max_tokens = 0;
    CudaForwardOptions f16_options{0, 24, 0, 16, 1};
    f16_options.q8_gemm_max_tokens = 0;
    auto plain = make_cuda(m, 128, plain_options);
    auto f16 = make_cuda(m, 128, f16_options);
    auto int8 = make_cuda(m, 128, {0, 24, 0, 16, 1});
    ASSERT_TRUE(plain != nullptr && f16 != nullptr && int8 != nullptr);
    auto p = plain->eval(prompt);
    ASSERT_TRUE(p.has_value());
    const std::vector<float> want(p->begin(), p->end());
    auto g = f16->eval(prompt);
    ASSERT_TRUE(g.has_value());
    EXPECT_LT(relative_rms(want, *g), 5e-3);
    EXPECT_LT(max_diff_over_range(want, *g), 5e-3);
    EXPECT_GT(max_diff_over_range(want, *g), 0.0);  // the paths differ: F16 operands
    if (std::string(type) == "F16") continue;
    auto q = int8->eval(prompt);
    ASSERT_TRUE(q.has_value());
    EXPECT_LT(relative_rms(want, *q), 0.03);
    EXPECT_LT(max_diff_over_range(want, *q), 0.03);
    EXPECT_GT(max_diff_over_range(*g, *q), 0.0);  // 8-bit activations, not F16
  }
}

// One-token steps replayed from the captured graph against the same steps launched one kernel at
// a time: identical logits for 64 greedy steps, after a prompt and again after reset().
TEST(CudaForward, GraphDecodeMatchesPlainLaunches) {
  PV_NEED_DEVICE();
  for (const char* type : {"F16", "Q8_0", "Q4_0"}) {
    SCOPED_TRACE(type);
    SynthModel model("tiny-llama", type);
    ASSERT_NE(model.get(), nullptr);
    const Model& m = *model.get();
    CudaForwardOptions graph_options;
    CudaForwardOptions plain_options;
    plain_options.decode_graph = false;
    auto graph = make_cuda(m, 128, graph_options);
    auto plain = make_cuda(m, 128, plain_options);
    ASSERT_TRUE(graph != nullptr && plain != nullptr);
    for (int round = 0; round < 2; ++round) {
      std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701};
      for (int32_t& t : prompt) t %= static_cast<int32_t>(m.hparams().n_vocab);
      auto g = graph->eval(prompt);
      auto p = plain->eval(prompt);
      ASSERT_TRUE(g.has_value() && p.has_value());
      const int steps = round == 0 ? 64 : 8;
      for (int step = 0; step < steps; ++step) {
        const std::vector<float> want(p->begin(), p->end());
        ASSERT_TRUE(std::equal(want.begin(), want.end(), g->begin()))
            << "round " << round << " step " << step;
        const int32_t token = argmax(want);
        g = graph->eval(std::span<const int32_t>(&token, 1));
        p = plain->eval(std::span<const int32_t>(&token, 1));
        ASSERT_TRUE(g.has_value() && p.has_value());
      }
      EXPECT_EQ(graph->n_past(), plain->n_past());
      graph->reset();
      plain->reset();
    }
  }
}

// Sliding windows on a GQA model: the GPU against the reference with the same window, a prompt
// in chunks that straddle window starts. The windowed reference must depart from the full one,
// or the comparison would prove nothing.
TEST(CudaForward, SlidingWindowMatchesReference) {
  PV_NEED_DEVICE();
  SynthModel model("tiny-llama", "F16");
  ASSERT_NE(model.get(), nullptr);
  const Model& m = *model.get();
  ASSERT_GT(m.hparams().n_head, m.hparams().n_head_kv);
  const std::vector<int32_t> prompt = model_test::spread_prompt(40, m.hparams().n_vocab);
  ReferenceForward full(m.hparams(), m.weights(), 128);
  auto u = full.eval(prompt);
  ASSERT_TRUE(u.has_value());
  const std::vector<float> full_logits(u->begin(), u->end());
  for (int64_t window : {5, 33}) {
    SCOPED_TRACE(testing::Message() << "window " << window);
    ReferenceForward ref(m.hparams(), m.weights(), 128, window);
    auto gpu = make_cuda(m, 128, {0, 16, window});
    ASSERT_NE(gpu, nullptr);
    EXPECT_EQ(gpu->attention_window(), window);
    auto r = ref.eval(prompt);
    auto g = gpu->eval(prompt);
    ASSERT_TRUE(r.has_value() && g.has_value());
    EXPECT_GT(relative_rms(*r, full_logits), 1e-3);
    for (int step = 0; step < 30; ++step) {  // up to position 69
      ASSERT_LT(relative_rms(*r, *g), 5e-3) << "step " << step;
      const int32_t token = argmax(*r);
      EXPECT_EQ(argmax(*g), token) << "step " << step;
      r = ref.eval(std::span<const int32_t>(&token, 1));
      g = gpu->eval(std::span<const int32_t>(&token, 1));
      ASSERT_TRUE(r.has_value() && g.has_value());
    }
  }
}

// The plan is what an instance allocates, and the tied embeddings of TinyStories count once.
TEST(CudaForward, MemoryPlanIsWhatItAllocates) {
  PV_NEED_DEVICE();
  for (const char* name : {"stories260K.gguf", "TinyStories-656K-Q8_0.gguf"}) {
    auto model = Model::load(model_path(name));
    ASSERT_TRUE(model.has_value()) << name;
    const Hparams& hp = (*model)->hparams();
    for (int64_t batch : {1, 33, 256}) {
      auto fwd = make_cuda(**model, 100, {0, batch, 0});
      ASSERT_NE(fwd, nullptr);
      CudaForwardOptions options;
      options.max_batch = batch;
      const auto plan = CudaForward::memory_plan(hp, (*model)->weights(), 100, options);
      const auto real = fwd->allocated();
      EXPECT_EQ(plan.weights_bytes, real.weights_bytes) << name;
      EXPECT_EQ(plan.kv_bytes, real.kv_bytes) << name;
      EXPECT_EQ(plan.scratch_bytes, real.scratch_bytes) << name << " batch " << batch;
      EXPECT_GE(plan.kv_bytes, 2 * hp.n_layer * 100 * hp.n_embd_kv() * 2);
    }
  }
  auto tied = Model::load(model_path("TinyStories-656K-Q8_0.gguf"));
  ASSERT_TRUE(tied.has_value());
  const ModelWeights& w = (*tied)->weights();
  ASSERT_EQ(w.output.data, w.token_embd.data);
  CudaForwardOptions one_token;
  one_token.max_batch = 1;
  const auto plan = CudaForward::memory_plan((*tied)->hparams(), w, 100, one_token);
  const auto embd_bytes = static_cast<int64_t>(w.token_embd.row_bytes) * w.token_embd.n_rows;
  EXPECT_LT(plan.weights_bytes, (*tied)->weights_bytes() + embd_bytes / 2);
}

// A cache far larger than any GPU: refused before anything is allocated, with the sizes.
TEST(CudaForward, RefusesWhenMemoryDoesNotFit) {
  PV_NEED_DEVICE();
  auto model = Model::load(model_path("stories260K.gguf"));
  ASSERT_TRUE(model.has_value());
  const int64_t n_ctx = int64_t{1} << 38;  // 640 bytes a position: 160 TiB
  auto fwd = CudaForward::create((*model)->hparams(), (*model)->weights(), n_ctx);
  ASSERT_FALSE(fwd.has_value());
  EXPECT_EQ(fwd.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(fwd.error().message.find("cuda: the model needs"), std::string::npos)
      << fwd.error().message;
}

TEST(CudaForward, RejectsBadTokensAndAFullContext) {
  PV_NEED_DEVICE();
  auto model = Model::load(model_path("stories260K.gguf"));
  ASSERT_TRUE(model.has_value());
  auto fwd = make_cuda(**model, 4);
  ASSERT_NE(fwd, nullptr);
  const std::vector<int32_t> bad = {1, 512};
  EXPECT_EQ(fwd->eval(bad).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(fwd->eval({}).error().code, ErrorCode::kInvalidArgument);
  const std::vector<int32_t> three = {1, 2, 3};
  ASSERT_TRUE(fwd->eval(three).has_value());
  EXPECT_EQ(fwd->eval(three).error().code, ErrorCode::kOutOfRange);
  EXPECT_EQ(fwd->n_past(), 3);
  fwd->reset();
  EXPECT_TRUE(fwd->eval(three).has_value());
}

// Weight types the kernels do not read are refused by name before any device work, so this
// runs without a GPU too.
TEST(CudaForwardSetup, RefusesUnsupportedWeightTypes) {
  SynthModel model("tiny-llama", "Q5_0");
  ASSERT_NE(model.get(), nullptr);
  auto fwd = CudaForward::create(model.get()->hparams(), model.get()->weights(), 64);
  ASSERT_FALSE(fwd.has_value());
  EXPECT_EQ(fwd.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(fwd.error().message.rfind("cuda: tensor '", 0), 0u) << fwd.error().message;
  EXPECT_NE(fwd.error().message.find("F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K"),
            std::string::npos)
      << fwd.error().message;
}

TEST(CudaForwardSetup, ReportsAMissingDevice) {
  if (device_available()) GTEST_SKIP() << "a CUDA device is present";
  auto model = Model::load(model_path("stories260K.gguf"));
  ASSERT_TRUE(model.has_value());
  auto fwd = CudaForward::create((*model)->hparams(), (*model)->weights(), 64);
  ASSERT_FALSE(fwd.has_value());
  EXPECT_EQ(fwd.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(fwd.error().message.rfind("cuda: no usable CUDA device", 0), 0u) << fwd.error().message;
}

}  // namespace
}  // namespace pensieve
