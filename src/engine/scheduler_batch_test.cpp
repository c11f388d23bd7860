// Continuous batching on the real TinyStories-656K model: sequences generated together give each
// the text it gets alone; a prefix-cache hit gives the text a full prompt evaluation gives;
// sequences preempted for lack of KV blocks and recomputed give the uninterrupted text; every
// block is back in the pool (free or cached) once nothing runs. Steps whose sequences all pick
// greedily let the backend pick (eval_batch_greedy); a sampled sequence in the step brings the
// logits back, and the greedy text is the same either way.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/scheduler.h"
#include "engine/test_support.h"
#include "model/forward_cpu.h"

namespace pensieve {
namespace {

using engine_test::drain;
using engine_test::greedy;
using engine_test::load;
using engine_test::Loaded;

constexpr int64_t kCtx = 512;

std::vector<int32_t> prompt_of(const Tokenizer& tokenizer, int k, int repeat = 1) {
  std::string text;
  for (int r = 0; r < repeat; ++r) {
    text += "Once upon a time, there was a little " + std::string(k % 2 ? "dog" : "girl") +
            " named " + std::string(1, static_cast<char>('A' + k % 26)) + ". ";
  }
  return tokenizer.encode(text, {.add_bos = true});
}

// The text of one sequence generated on its own (generate(), which samples from the logits).
std::string alone(const Loaded& l, const std::vector<int32_t>& prompt,
                  const GenerateOptions& options) {
  CpuForward forward(l.model->hparams(), l.model->weights(), kCtx, 1, 64);
  std::string text;
  auto result = generate(forward, *l.tokenizer, prompt, options, [&](std::string_view t) {
    text += t;
    return true;
  });
  EXPECT_TRUE(result) << result.error().message;
  return text;
}

std::string alone(const Loaded& l, const std::vector<int32_t>& prompt, int64_t max_tokens) {
  return alone(l, prompt, greedy(max_tokens));
}

// Waits until the engine has let go of every block (the last end() runs after the client
// hears of it).
void expect_pool_idle(const Scheduler& scheduler) {
  for (int i = 0; i < 500 && scheduler.cache_stats().n_referenced != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const Scheduler::CacheStats stats = scheduler.cache_stats();
  EXPECT_EQ(stats.n_referenced, 0) << "blocks leaked";
  EXPECT_EQ(stats.n_free + stats.n_cached, stats.n_blocks);
}

// One greedy request through the scheduler: its text and how many prompt tokens were cached.
std::pair<std::string, int64_t> run_greedy(Scheduler& scheduler,
                                           const std::vector<int32_t>& prompt) {
  auto sequence = scheduler.submit(prompt, greedy(30));
  EXPECT_TRUE(sequence) << sequence.error().message;
  if (!sequence) return {};
  std::string text = drain(**sequence);
  EXPECT_TRUE((*sequence)->result());
  return {text, (*sequence)->result() ? (*sequence)->result()->n_cached : -1};
}

TEST(Batching, ConcurrentSequencesEqualEachAlone) {
  Loaded l = load();
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), kCtx, 2, 128, GgmlType::kF16,
                     4 * kCtx / 32, 4);
  SchedulerOptions options;
  options.max_parallel = 4;
  options.max_prefill_chunk = 24;  // prompts go in several chunks, interleaved with decodes
  Scheduler scheduler(forward, *l.tokenizer, options);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::shared_ptr<Sequence>> sequences;
  for (int k = 0; k < 7; ++k) {
    prompts.push_back(prompt_of(*l.tokenizer, k, 1 + k % 3));
    auto sequence = scheduler.submit(prompts.back(), greedy(40 + 5 * k));
    ASSERT_TRUE(sequence) << sequence.error().message;
    sequences.push_back(*sequence);
  }
  for (size_t k = 0; k < sequences.size(); ++k) {
    const std::string text = drain(*sequences[k]);
    ASSERT_TRUE(sequences[k]->result()) << sequences[k]->result().error().message;
    EXPECT_EQ(text, alone(l, prompts[k], 40 + 5 * static_cast<int64_t>(k))) << "sequence " << k;
  }
  expect_pool_idle(scheduler);
}

TEST(Batching, PrefixCacheHitGivesTheSameText) {
  Loaded l = load();
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), kCtx, 2, 128, GgmlType::kF16,
                     2 * kCtx / 32, 2);
  SchedulerOptions options;
  options.max_parallel = 2;
  Scheduler scheduler(forward, *l.tokenizer, options);
  const std::vector<int32_t> first = prompt_of(*l.tokenizer, 3, 8);
  ASSERT_GT(first.size(), 70u);
  auto run = [&](const std::vector<int32_t>& prompt) { return run_greedy(scheduler, prompt); };
  const auto [cold_text, cold_cached] = run(first);
  EXPECT_EQ(cold_cached, 0);
  const auto [warm_text, warm_cached] = run(first);
  EXPECT_EQ(warm_text, cold_text);
  EXPECT_EQ(warm_cached, static_cast<int64_t>((first.size() - 1) / 32 * 32));
  // The same start, then different: the shared whole blocks are reused.
  std::vector<int32_t> branch(first.begin(), first.begin() + 70);
  const std::vector<int32_t> tail = l.tokenizer->encode(" The end was near.", {.add_bos = false});
  branch.insert(branch.end(), tail.begin(), tail.end());
  const auto [branch_text, branch_cached] = run(branch);
  EXPECT_EQ(branch_cached, 64);
  EXPECT_EQ(branch_text, alone(l, branch, 30));
  EXPECT_GT(scheduler.cache_stats().hit_tokens, 0);
  expect_pool_idle(scheduler);
}

TEST(Batching, TrimDropsThePrefixCacheAndGivesItsMemoryBack) {
  Loaded l = load();
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), kCtx, 2, 128, GgmlType::kF16,
                     2 * kCtx / 32, 2);
  SchedulerOptions options;
  options.max_parallel = 2;
  Scheduler scheduler(forward, *l.tokenizer, options);
  const std::vector<int32_t> prompt = prompt_of(*l.tokenizer, 5, 8);
  auto run = [&] { return run_greedy(scheduler, prompt); };
  const auto [cold_text, cold_cached] = run();
  expect_pool_idle(scheduler);
  const int64_t cached = scheduler.cache_stats().n_cached;
  ASSERT_GT(cached, 0);
  scheduler.trim_cache();  // the engine is idle: it trims at once
  for (int i = 0; i < 500 && scheduler.cache_stats().n_cached != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const Scheduler::CacheStats stats = scheduler.cache_stats();
  EXPECT_EQ(stats.n_cached, 0);
  EXPECT_EQ(stats.n_free, stats.n_blocks);
  EXPECT_EQ(stats.trimmed_blocks, cached);
  // Nothing to reuse now; the discarded (zeroed) blocks are written afresh: the same text.
  const auto [again_text, again_cached] = run();
  EXPECT_EQ(again_cached, 0);
  EXPECT_EQ(again_text, cold_text);
  expect_pool_idle(scheduler);
}

TEST(Batching, PreemptedSequencesRecomputeToTheSameText) {
  Loaded l = load();
  ASSERT_NE(l.model, nullptr);
  // 10 blocks = 320 positions for three sequences that each grow to ~150.
  CpuForward forward(l.model->hparams(), l.model->weights(), kCtx, 2, 128, GgmlType::kF16, 10, 3);
  SchedulerOptions options;
  options.max_parallel = 3;
  Scheduler scheduler(forward, *l.tokenizer, options);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::shared_ptr<Sequence>> sequences;
  for (int k = 0; k < 3; ++k) {
    prompts.push_back(prompt_of(*l.tokenizer, k + 10, 2));
    auto sequence = scheduler.submit(prompts.back(), greedy(110));
    ASSERT_TRUE(sequence) << sequence.error().message;
    sequences.push_back(*sequence);
  }
  for (size_t k = 0; k < sequences.size(); ++k) {
    const std::string text = drain(*sequences[k]);
    ASSERT_TRUE(sequences[k]->result()) << sequences[k]->result().error().message;
    EXPECT_EQ(text, alone(l, prompts[k], 110)) << "sequence " << k;
  }
  EXPECT_GT(scheduler.cache_stats().preemptions, 0) << "the pool was never short";
  expect_pool_idle(scheduler);
}

// A CpuForward that counts which kind of step the scheduler asks for.
class CountingForward : public BatchForward {
 public:
  explicit CountingForward(CpuForward& inner) : inner_(inner) {}
  Expected<std::span<const float>> eval_batch(std::span<const BatchSegment> segments) override {
    ++logits_steps;
    return inner_.eval_batch(segments);
  }
  Expected<std::span<const int32_t>> eval_batch_greedy(
      std::span<const BatchSegment> segments) override {
    ++greedy_steps;
    return inner_.eval_batch_greedy(segments);
  }
  Expected<std::span<const int32_t>> eval_batch_drawn(std::span<const BatchSegment> segments,
                                                      std::span<const TokenDraw> draws) override {
    ++drawn_steps;
    return inner_.eval_batch_drawn(segments, draws);
  }
  Expected<std::span<const TokenLogit>> eval_batch_best(std::span<const BatchSegment> segments,
                                                        int64_t k,
                                                        std::span<double> exp_sums) override {
    ++best_steps;
    return inner_.eval_batch_best(segments, k, exp_sums);
  }
  Expected<std::span<const float>> best_step_row(int64_t segment) override {
    ++rows_read;
    return inner_.best_step_row(segment);
  }
  int64_t discard_blocks(std::span<const int32_t> blocks) override {
    return inner_.discard_blocks(blocks);
  }
  int64_t n_ctx() const override { return inner_.n_ctx(); }
  int64_t n_blocks() const override { return inner_.n_blocks(); }
  int64_t max_batch() const override { return inner_.max_batch(); }
  int64_t max_segments() const override { return inner_.max_segments(); }
  std::atomic<int> logits_steps{0};
  std::atomic<int> greedy_steps{0};
  std::atomic<int> drawn_steps{0};
  std::atomic<int> best_steps{0};
  std::atomic<int> rows_read{0};

 private:
  CpuForward& inner_;
};

TEST(Batching, GreedyTemperatureTopKAndTopPStepsArePickedFromWhatTheBackendSends) {
  Loaded l = load();
  ASSERT_NE(l.model, nullptr);
  CpuForward cpu(l.model->hparams(), l.model->weights(), kCtx, 2, 128, GgmlType::kF16,
                 2 * kCtx / 32, 2);
  CountingForward forward(cpu);
  SchedulerOptions options;
  options.max_parallel = 2;
  Scheduler scheduler(forward, *l.tokenizer, options);
  const std::vector<int32_t> a = prompt_of(*l.tokenizer, 1);
  const std::vector<int32_t> b = prompt_of(*l.tokenizer, 2);
  // Both greedy: no step brings logits back.
  auto first = scheduler.submit(a, greedy(30));
  auto second = scheduler.submit(b, greedy(30));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(drain(**first), alone(l, a, 30));
  EXPECT_EQ(drain(**second), alone(l, b, 30));
  EXPECT_GT(forward.greedy_steps.load(), 0);
  EXPECT_EQ(forward.logits_steps.load(), 0);
  EXPECT_EQ(forward.drawn_steps.load(), 0);
  // One drawing from the temperature alone beside a greedy one: the backend draws, with the
  // uniforms of the sequence's seed, the same tokens as sampling from the logits does.
  GenerateOptions sampled = greedy(30);
  sampled.sampling.temperature = 0.8f;
  sampled.sampling.seed = 7;
  auto greedy_one = scheduler.submit(a, greedy(30));
  auto sampled_one = scheduler.submit(b, sampled);
  ASSERT_TRUE(greedy_one && sampled_one);
  EXPECT_EQ(drain(**greedy_one), alone(l, a, 30));
  EXPECT_EQ(drain(**sampled_one), alone(l, b, sampled));
  EXPECT_TRUE((*sampled_one)->result());
  EXPECT_GT(forward.drawn_steps.load(), 0);
  EXPECT_EQ(forward.logits_steps.load(), 0);
  // A top-k: the chain needs only the k best tokens, and picks the same ones; a greedy sequence
  // beside it takes the best one.
  GenerateOptions top_k = sampled;
  top_k.sampling.top_k = 20;
  top_k.sampling.top_p = 0.9f;
  auto with_k = scheduler.submit(a, top_k);
  auto beside = scheduler.submit(b, greedy(30));
  ASSERT_TRUE(with_k && beside);
  EXPECT_EQ(drain(**with_k), alone(l, a, top_k));
  EXPECT_EQ(drain(**beside), alone(l, b, 30));
  EXPECT_GT(forward.best_steps.load(), 0);
  // A top-p over the whole row: its best tokens and the row's sum of exponentials decide.
  const int best_before = forward.best_steps.load();
  sampled.sampling.top_p = 0.9f;
  auto top_p = scheduler.submit(b, sampled);
  ASSERT_TRUE(top_p);
  EXPECT_EQ(drain(**top_p), alone(l, b, sampled));
  EXPECT_GT(forward.best_steps.load(), best_before);
  EXPECT_EQ(forward.rows_read.load(), 0);
  // A min-p that keeps almost every token: the best fall short, the step reads the row, and the
  // next 16 steps bring their rows straight away; then the best tokens are tried again.
  GenerateOptions flat = sampled;
  flat.sampling.top_p = 1.0f;
  flat.sampling.min_p = 1e-30f;
  flat.max_tokens = 30;
  EXPECT_EQ(forward.logits_steps.load(), 0);
  auto min_p = scheduler.submit(a, flat);
  ASSERT_TRUE(min_p);
  const std::string text = drain(**min_p);
  EXPECT_EQ(text, alone(l, a, flat));
  const int rows = forward.rows_read.load();
  const int logits = forward.logits_steps.load();
  EXPECT_GE(rows, 1);
  EXPECT_GT(logits, 0);
  EXPECT_LE(logits, 16 * rows);  // at most 16 after each short step
  if ((*min_p)->result()->tokens.size() >= 20) {
    EXPECT_GE(rows, 2);  // tried again
  }
  expect_pool_idle(scheduler);
}

TEST(Batching, ARequestLargerThanThePoolIsAClearError) {
  Loaded l = load();
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), kCtx, 1, 64, GgmlType::kF16, 2, 1);
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{});
  auto sequence = scheduler.submit(prompt_of(*l.tokenizer, 1, 6), greedy(8));
  ASSERT_TRUE(sequence);
  drain(**sequence);
  ASSERT_FALSE((*sequence)->result());
  EXPECT_EQ((*sequence)->result().error().code, ErrorCode::kOutOfRange);
  EXPECT_NE((*sequence)->result().error().message.find("KV blocks; the pool has 2"),
            std::string::npos)
      << (*sequence)->result().error().message;
}

}  // namespace
}  // namespace pensieve
