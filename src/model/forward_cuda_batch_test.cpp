// CudaForward::eval_batch against CpuForward::eval_batch (itself tested against running each
// sequence alone): the same segments, block tables scattered over the pool, logits close and
// greedy tokens equal or near ties (both are then fed the CPU's pick), through every path a step
// can take (one token: the matrix-vector kernels; a few tokens: tiled products; many: the tensor
// cores), sequences joining midway, a window, and more sequences than one logits product takes;
// decode steps replayed from graphs equal the same steps launched, and the device's greedy picks
// the host's. Bad batches get the CPU's errors. Tests that need
// a GPU skip without one.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>

#include <unistd.h>

#include <gtest/gtest.h>

#include "model/forward_cpu.h"
#include "model/forward_cuda.h"
#include "model/forward_split.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

constexpr int64_t kBlock = BatchForward::kKvBlockPositions;

bool have_device() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

using model_test::argmax;
using model_test::max_diff_over_range;

// A synthetic tiny-llama of the given type, read into memory (its files are removed).
std::unique_ptr<Model> tiny_llama(const std::string& type) {
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("pensieve_cuda_batch_" + std::to_string(::getpid())))
                               .string();
  SynthOptions o;
  o.preset = "tiny-llama";
  o.output_path = base + "-F16.gguf";
  o.shared_dir = PENSIEVE_SHARED_DIR;
  const auto made = synth_model(o);
  EXPECT_TRUE(made.has_value()) << made.error().message;
  std::string path = o.output_path;
  if (type != "F16") {
    path = base + "-" + type + ".gguf";
    const auto q = quantize_model({o.output_path, path, type, 2});
    EXPECT_TRUE(q.has_value()) << q.error().message;
  }
  auto model = Model::load(path, MmapFile::Mode::kResident);
  std::filesystem::remove(o.output_path);
  std::filesystem::remove(path);
  EXPECT_TRUE(model.has_value()) << model.error().message;
  return model ? std::move(*model) : nullptr;
}

struct Sequence {
  std::vector<int32_t> table;   // block ids
  std::vector<int32_t> tokens;  // every token fed so far
  int64_t fed = 0;              // tokens already in the cache
};

// The device side of a comparison: the whole model on the GPU, or split with the CPU at layer
// `split`: the CPU first and the GPU after (gpu_back), or the other way round.
struct DeviceSide {
  int64_t split = 0;  // 0: no split
  bool gpu_back = true;
};

std::unique_ptr<BatchForward> device_forward(const Model& m, int64_t n_ctx,
                                             const CudaForwardOptions& base, DeviceSide side) {
  const Hparams& hp = m.hparams();
  CudaForwardOptions o = base;
  if (side.split > 0)
    o.layers = side.gpu_back ? LayerRange{side.split, -1} : LayerRange{0, side.split};
  auto made = CudaForward::create(hp, m.weights(), n_ctx, o);
  EXPECT_TRUE(made.has_value()) << made.error().message;
  if (!made) return nullptr;
  if (side.split == 0) return std::move(*made);
  const LayerRange cpu_layers =
      side.gpu_back ? LayerRange{0, side.split} : LayerRange{side.split, -1};
  auto cpu =
      std::make_unique<CpuForward>(hp, m.weights(), n_ctx, 2, o.max_batch, GgmlType::kF16,
                                   o.kv_blocks, o.max_segments, o.attention_window, cpu_layers);
  if (side.gpu_back) return std::make_unique<SplitForward>(std::move(cpu), std::move(*made));
  return std::make_unique<SplitForward>(std::move(*made), std::move(cpu));
}

// Runs both forwards through the same steps: step i gives each active sequence `chunk[i][s]`
// new tokens (0: none this step); tokens after a sequence's prompt are the CPU's greedy picks.
void compare(const Model& m, const std::vector<std::vector<int64_t>>& chunks,
             const std::vector<int64_t>& prompt_lengths, int64_t window, double tolerance,
             DeviceSide side = {}) {
  const Hparams& hp = m.hparams();
  const int64_t n_ctx = 256;
  const auto n_seq = static_cast<int64_t>(prompt_lengths.size());
  const int64_t n_blocks = n_seq * n_ctx / kBlock + 3;
  CpuForward cpu(hp, m.weights(), n_ctx, 2, 128, GgmlType::kF16, n_blocks, n_seq, window);
  CudaForwardOptions o;
  o.max_batch = 128;
  o.kv_blocks = n_blocks;
  o.max_segments = n_seq;
  o.attention_window = window;
  const std::unique_ptr<BatchForward> made = device_forward(m, n_ctx, o, side);
  ASSERT_NE(made, nullptr);
  BatchForward& gpu = *made;
  ASSERT_EQ(gpu.n_blocks(), n_blocks);

  std::mt19937 rng(5);
  std::vector<int32_t> pool(static_cast<size_t>(n_blocks));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<Sequence> seqs(static_cast<size_t>(n_seq));
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto per = static_cast<size_t>(n_ctx / kBlock);
    seqs[s].table.assign(pool.begin() + static_cast<std::ptrdiff_t>(s * per),
                         pool.begin() + static_cast<std::ptrdiff_t>((s + 1) * per));
    std::uniform_int_distribution<int32_t> id(1, static_cast<int32_t>(hp.n_vocab) - 1);
    for (int64_t i = 0; i < prompt_lengths[s]; ++i) seqs[s].tokens.push_back(id(rng));
  }
  for (size_t step = 0; step < chunks.size(); ++step) {
    std::vector<BatchSegment> segments;
    std::vector<size_t> who;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t n = chunks[step][s];
      if (n == 0) continue;
      Sequence& q = seqs[s];
      ASSERT_LE(q.fed + n, static_cast<int64_t>(q.tokens.size())) << "step " << step;
      segments.push_back({std::span<const int32_t>(q.tokens).subspan(static_cast<size_t>(q.fed),
                                                                     static_cast<size_t>(n)),
                          q.fed, q.table});
      who.push_back(s);
    }
    auto want = cpu.eval_batch(segments);
    ASSERT_TRUE(want.has_value()) << want.error().message;
    const std::vector<float> ref(want->begin(), want->end());
    auto got = gpu.eval_batch(segments);
    ASSERT_TRUE(got.has_value()) << got.error().message;
    ASSERT_EQ(got->size(), ref.size());
    for (size_t i = 0; i < who.size(); ++i) {
      const auto n_vocab = static_cast<size_t>(hp.n_vocab);
      const std::span<const float> r(ref.data() + i * n_vocab, n_vocab);
      const std::span<const float> g(got->data() + i * n_vocab, n_vocab);
      SCOPED_TRACE(testing::Message() << "step " << step << " sequence " << who[i]);
      ASSERT_LT(max_diff_over_range(r, g), tolerance);
      // The GPU's pick is the CPU's, or a near tie by the CPU's own logits.
      const auto [lo, hi] = std::minmax_element(r.begin(), r.end());
      EXPECT_GE(r[static_cast<size_t>(argmax(g))], *hi - tolerance * (*hi - *lo));
      Sequence& q = seqs[who[i]];
      q.fed += static_cast<int64_t>(segments[i].tokens.size());
      if (q.fed == static_cast<int64_t>(q.tokens.size())) q.tokens.push_back(argmax(r));
    }
  }
}

// Steps: two prompts together (tensor cores), a third joins with a short prompt while the two
// decode (tiled products), then one decoding alone (matrix-vector), then all three decode.
std::vector<std::vector<int64_t>> schedule() {
  std::vector<std::vector<int64_t>> steps = {{37, 20, 0}, {1, 1, 5}, {1, 0, 0}, {0, 1, 1}};
  for (int i = 0; i < 24; ++i) steps.push_back({1, 1, 1});
  return steps;
}

class CudaBatch : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!have_device()) GTEST_SKIP() << "no CUDA device";
  }
};

// F16 weights: the CPU and GPU differ in summation order and, on the tensor cores, in F16
// activations; quantized weights add the GPU's 8-bit activations on the one-token path.
TEST_P(CudaBatch, MatchesCpuBatch) {
  const std::string type = GetParam();
  auto model = tiny_llama(type);
  ASSERT_NE(model, nullptr);
  const double tolerance = type == "F16" ? 5e-3 : 3e-2;
  compare(*model, schedule(), {40, 21, 8}, 0, tolerance);
}

TEST_P(CudaBatch, MatchesCpuBatchWithAWindow) {
  const std::string type = GetParam();
  auto model = tiny_llama(type);
  ASSERT_NE(model, nullptr);
  compare(*model, schedule(), {40, 21, 8}, 24, type == "F16" ? 5e-3 : 3e-2);
}

// A model split between the CPU and the GPU (SplitForward of a CpuForward and a CudaForward
// stage, each way round, at two layers) decodes as the CPU does: the hidden states cross
// between the stages every step, prompts and decode steps alike.
TEST_P(CudaBatch, SplitWithTheCpuMatchesCpuBatch) {
  const std::string type = GetParam();
  auto model = tiny_llama(type);
  ASSERT_NE(model, nullptr);
  const double tolerance = type == "F16" ? 5e-3 : 3e-2;
  for (int64_t split : {int64_t{1}, model->hparams().n_layer - 1}) {
    for (bool gpu_back : {true, false}) {
      SCOPED_TRACE(testing::Message()
                   << "split at " << split << (gpu_back ? ", GPU last" : ", GPU first"));
      compare(*model, schedule(), {40, 21, 8}, 0, tolerance, {split, gpu_back});
      if (HasFatalFailure()) return;
    }
  }
}

// One step of three short prompts (the first n_segments of them), for the tests below.
struct ShortPrompts {
  std::vector<int32_t> a = {1, 5, 9, 13}, b = {2, 4}, c = {7};
  std::vector<int32_t> ta = {0, 1}, tb = {3, 2}, tc = {5};
  std::vector<BatchSegment> segments(size_t n_segments) const {
    std::vector<BatchSegment> all = {{a, 0, ta}, {b, 0, tb}, {c, 0, tc}};
    all.resize(n_segments);
    return all;
  }
  static CudaForwardOptions options(int64_t n_segments) {
    CudaForwardOptions o;
    o.max_batch = 32;
    o.kv_blocks = 8;
    o.max_segments = n_segments;
    return o;
  }
};

// With the GPU last, the split's greedy step picks on the device what greedy_pick picks from
// the same step's logits; a GPU stage that ends before the model has no logits to pick from.
TEST(CudaSplit, GreedyStepPicksOnTheBackStage) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  auto model = tiny_llama("Q8_0");
  ASSERT_NE(model, nullptr);
  const Hparams& hp = model->hparams();
  const ShortPrompts prompts;
  CudaForwardOptions o = ShortPrompts::options(2);
  auto split = device_forward(*model, 64, o, {1, true});
  ASSERT_NE(split, nullptr);
  const std::vector<BatchSegment> segments = prompts.segments(2);
  auto logits = split->eval_batch(segments);
  ASSERT_TRUE(logits.has_value()) << logits.error().message;
  const std::vector<float> rows(logits->begin(), logits->end());
  auto picks = split->eval_batch_greedy(segments);  // the same step again: the same K and V
  ASSERT_TRUE(picks.has_value()) << picks.error().message;
  const auto n_vocab = static_cast<size_t>(hp.n_vocab);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*picks)[i], greedy_pick(std::span<const float>(rows).subspan(i * n_vocab, n_vocab)));
  }
  o.layers = {0, 1};
  auto front = CudaForward::create(hp, model->weights(), 64, o);
  ASSERT_TRUE(front.has_value()) << front.error().message;
  EXPECT_FALSE((*front)->eval_batch(segments).has_value());
  EXPECT_FALSE((*front)->eval_layers_greedy(segments, {}).has_value());
  auto hidden = (*front)->eval_layers(segments, {});
  ASSERT_TRUE(hidden.has_value()) << hidden.error().message;
  EXPECT_EQ(hidden->size(), static_cast<size_t>(6 * hp.n_embd));
  // A stage's device memory is its range's: its layers' K and V, its weights only.
  CudaForwardOptions all = o;
  all.layers = {};
  const CudaForward::MemoryPlan whole = CudaForward::memory_plan(hp, model->weights(), 64, all);
  const CudaForward::MemoryPlan part = CudaForward::memory_plan(hp, model->weights(), 64, o);
  EXPECT_EQ(part.kv_bytes * hp.n_layer, whole.kv_bytes);
  EXPECT_LT(part.weights_bytes, whole.weights_bytes);
  EXPECT_EQ((*front)->allocated().weights_bytes, part.weights_bytes);
  EXPECT_EQ((*front)->allocated().kv_bytes, part.kv_bytes);
}

// A step of three short prompts on the whole model and on a split with the GPU last: each
// forward's logits rows [3, n_vocab], then check(forward, segments, rows), which may run the same
// step again (the same K and V).
using StepCheck = std::function<void(BatchForward&, std::span<const BatchSegment>,
                                     std::span<const float>, size_t)>;
void check_three_prompt_steps(const StepCheck& check) {
  auto model = tiny_llama("Q8_0");
  ASSERT_NE(model, nullptr);
  const ShortPrompts prompts;
  const CudaForwardOptions o = ShortPrompts::options(3);
  const std::vector<BatchSegment> segments = prompts.segments(3);
  for (int64_t split : {int64_t{0}, int64_t{1}}) {
    SCOPED_TRACE(testing::Message() << "split at " << split);
    auto forward = device_forward(*model, 64, o, {split, true});
    ASSERT_NE(forward, nullptr);
    auto logits = forward->eval_batch(segments);
    ASSERT_TRUE(logits.has_value()) << logits.error().message;
    const std::vector<float> rows(logits->begin(), logits->end());
    check(*forward, segments, rows, static_cast<size_t>(model->hparams().n_vocab));
  }
}

// Temperature draws on the device pick what pick_token picks from the same step's logits; a
// greedy row beside them stays greedy.
TEST(CudaDraw, DrawnStepDrawsWhatTheHostDraws) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  check_three_prompt_steps([](BatchForward& forward, std::span<const BatchSegment> segments,
                              std::span<const float> rows, size_t n_vocab) {
    for (double u : {0.1, 0.5, 0.93}) {
      const std::vector<TokenDraw> draws = {{0.8f, u}, {0.0f, 0.0}, {1.3f, 1.0 - u}};
      auto picks = forward.eval_batch_drawn(segments, draws);
      ASSERT_TRUE(picks.has_value()) << picks.error().message;
      for (size_t i = 0; i < draws.size(); ++i) {
        EXPECT_EQ((*picks)[i], pick_token(rows.subspan(i * n_vocab, n_vocab), draws[i]))
            << "segment " << i << ", u " << u;
      }
    }
    const std::vector<TokenDraw> too_few = {{1.0f, 0.5}};
    EXPECT_FALSE(forward.eval_batch_drawn(segments, too_few).has_value());
  });
}

// The best tokens selected on the device are best_tokens of the same step's logits, pair for
// pair, and each row's sum of exponentials exp_sum() of it (within the exponentials' last bits);
// best_step_row brings back that row; a k out of range, or sums for the wrong number of
// segments, are refused.
TEST(CudaBest, BestStepSendsWhatTheHostSelects) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  check_three_prompt_steps([](BatchForward& forward, std::span<const BatchSegment> segments,
                              std::span<const float> rows, size_t n_vocab) {
    for (int64_t k : {int64_t{1}, int64_t{40}, BatchForward::kMaxBestTokens}) {
      std::vector<double> sums(segments.size());
      auto best = forward.eval_batch_best(segments, k, sums);
      ASSERT_TRUE(best.has_value()) << best.error().message;
      for (size_t i = 0; i < segments.size(); ++i) {
        const std::span<const float> row = rows.subspan(i * n_vocab, n_vocab);
        const double want = exp_sum(row, (*best)[i * static_cast<size_t>(k)].logit);
        EXPECT_NEAR(sums[i], want, 5e-7 * want) << "segment " << i;
        auto got_row = forward.best_step_row(static_cast<int64_t>(i));
        ASSERT_TRUE(got_row.has_value()) << got_row.error().message;
        EXPECT_TRUE(std::equal(row.begin(), row.end(), got_row->begin(), got_row->end()));
      }
      EXPECT_FALSE(forward.best_step_row(static_cast<int64_t>(segments.size())).has_value());
      best = forward.eval_batch_best(segments, k, {});
      ASSERT_TRUE(best.has_value()) << best.error().message;
      ASSERT_EQ(best->size(), segments.size() * static_cast<size_t>(k));
      std::vector<TokenLogit> want(static_cast<size_t>(k));
      for (size_t i = 0; i < segments.size(); ++i) {
        best_tokens(rows.subspan(i * n_vocab, n_vocab), want.size(), want);
        for (size_t j = 0; j < want.size(); ++j) {
          const TokenLogit& got = (*best)[i * want.size() + j];
          ASSERT_EQ(got.id, want[j].id) << "segment " << i << " place " << j << " k " << k;
          ASSERT_EQ(got.logit, want[j].logit) << "segment " << i << " place " << j;
        }
      }
    }
    EXPECT_FALSE(forward.eval_batch_best(segments, 0, {}).has_value());
    EXPECT_FALSE(
        forward.eval_batch_best(segments, BatchForward::kMaxBestTokens + 1, {}).has_value());
    std::vector<double> too_few(segments.size() - 1);
    EXPECT_FALSE(forward.eval_batch_best(segments, 40, too_few).has_value());
  });
}

// Nine sequences decoding together: the layers on the tensor cores, the logits rows in groups of
// matvec_max_tokens (4, 4 and 1); then six (tiled products; groups of 4 and 2).
TEST_P(CudaBatch, ManySequencesDecodeTogether) {
  const std::string type = GetParam();
  auto model = tiny_llama(type);
  ASSERT_NE(model, nullptr);
  const std::vector<int64_t> prompts = {3, 9, 5, 12, 4, 7, 6, 10, 8};
  std::vector<std::vector<int64_t>> steps = {prompts};
  for (int i = 0; i < 10; ++i) steps.push_back(std::vector<int64_t>(prompts.size(), 1));
  for (int i = 0; i < 8; ++i) steps.push_back({1, 1, 1, 0, 1, 1, 0, 0, 1});
  compare(*model, steps, prompts, 0, type == "F16" ? 5e-3 : 3e-2);
}

// Decode steps replay a graph per number of sequences: the same logits, bit for bit, as the same
// steps launched kernel by kernel (and eval_batch_greedy the same picks as greedy_pick), while
// positions move on and the number of sequences changes (3, 6, 3 again: a graph replayed after
// another was used), past the path boundaries (1 and 4 sequences: matrix-vector kernels; 6: tiled
// or 8-bit products).
TEST_P(CudaBatch, DecodeGraphsMatchLaunches) {
  auto model = tiny_llama(GetParam());
  ASSERT_NE(model, nullptr);
  const Hparams& hp = model->hparams();
  const int64_t n_ctx = 64;
  const int64_t n_seq = 6;
  const int64_t per = n_ctx / kBlock;
  CudaForwardOptions o;
  o.max_batch = 32;
  o.kv_blocks = n_seq * per;
  o.max_segments = n_seq;
  auto with = CudaForward::create(hp, model->weights(), n_ctx, o);
  o.decode_graph = false;
  auto without = CudaForward::create(hp, model->weights(), n_ctx, o);
  ASSERT_TRUE(with.has_value() && without.has_value());
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n_seq));
  for (int64_t s = 0; s < n_seq; ++s) {
    for (int64_t b = 0; b < per; ++b) tables[s].push_back(static_cast<int32_t>(b * n_seq + s));
  }
  std::vector<int32_t> tokens(static_cast<size_t>(n_seq));
  std::vector<int64_t> fed(static_cast<size_t>(n_seq), 0);
  const int64_t sizes[] = {3, 3, 6, 6, 6, 1, 1, 4, 4, 3, 3, 6};
  for (size_t step = 0; step < std::size(sizes); ++step) {
    std::vector<BatchSegment> segments;
    for (int64_t s = 0; s < sizes[step]; ++s) {
      tokens[s] = static_cast<int32_t>(1 + (step * 31 + s * 7) % (hp.n_vocab - 1));
      segments.push_back({std::span<const int32_t>(&tokens[s], 1), fed[s], tables[s]});
    }
    auto a = (*with)->eval_batch(segments);
    ASSERT_TRUE(a.has_value()) << a.error().message;
    const std::vector<float> replayed(a->begin(), a->end());
    auto b = (*without)->eval_batch(segments);
    ASSERT_TRUE(b.has_value()) << b.error().message;
    ASSERT_EQ(replayed.size(), b->size());
    EXPECT_TRUE(std::equal(replayed.begin(), replayed.end(), b->begin())) << "step " << step;
    // The same step again (it writes the same K and V): the device's picks are the host's.
    auto picks = (*with)->eval_batch_greedy(segments);
    ASSERT_TRUE(picks.has_value()) << picks.error().message;
    ASSERT_EQ(picks->size(), segments.size());
    const auto n_vocab = static_cast<size_t>(hp.n_vocab);
    for (size_t i = 0; i < segments.size(); ++i) {
      const std::span<const float> row(replayed.data() + i * n_vocab, n_vocab);
      EXPECT_EQ((*picks)[i], greedy_pick(row)) << "step " << step << " sequence " << i;
    }
    for (int64_t s = 0; s < sizes[step]; ++s) ++fed[s];
  }
}

INSTANTIATE_TEST_SUITE_P(Types, CudaBatch, ::testing::Values("F16", "Q8_0", "Q4_0"));

// The CPU's checks, before any device work: a batch that does not fit is an error, not a crash.
TEST(CudaBatchErrors, BadBatchesAreRefused) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  auto model = Model::load(std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(model.has_value());
  CudaForwardOptions o;
  o.max_batch = 16;
  o.kv_blocks = 4;
  o.max_segments = 2;
  auto gpu = CudaForward::create((*model)->hparams(), (*model)->weights(), 64, o);
  ASSERT_TRUE(gpu.has_value()) << gpu.error().message;
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> table = {2, 3};
  const std::vector<int32_t> outside = {4};
  const std::vector<int32_t> bad_token = {100000};
  const std::vector<int32_t> many(17, 5);
  const std::vector<std::vector<BatchSegment>> bad = {
      {},
      {{tokens, 0, outside}},
      {{tokens, 63, table}},
      {{bad_token, 0, table}},
      {{many, 0, table}},
      {{tokens, 0, table}, {tokens, 0, table}, {tokens, 0, table}},
  };
  for (const auto& segments : bad) {
    auto r = (*gpu)->eval_batch(segments);
    EXPECT_FALSE(r.has_value());
  }
  auto fine = (*gpu)->eval_batch(std::vector<BatchSegment>{{tokens, 0, table}});
  EXPECT_TRUE(fine.has_value());
}

}  // namespace
}  // namespace pensieve
