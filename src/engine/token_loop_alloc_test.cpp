// Nothing grows per token or per request, on the real stories260K model: after a warm-up,
// generate()'s token loop makes no heap allocation (greedy and sampled, with stop strings), so
// a run's allocation count does not depend on its length; and through the scheduler, the live
// heap after each of 20 distinct requests is the same as after the second.
#include <gtest/gtest.h>

#include <array>
#include <thread>

#include "engine/scheduler.h"
#include "engine/test_support.h"
#include "model/alloc_counter.h"
#include "model/forward_cpu.h"
#include "tokenizer/stream_decoder.h"

namespace pensieve {
namespace {

using engine_test::drain;
using engine_test::load;
using engine_test::Loaded;

GenerateOptions options(int64_t max_tokens, bool sampled) {
  GenerateOptions o;
  o.max_tokens = max_tokens;
  if (sampled) {
    o.sampling = {.temperature = 0.8f,
                  .top_k = 40,
                  .top_p = 0.9f,
                  .min_p = 0.02f,
                  .repeat_penalty = 1.1f,
                  .frequency_penalty = 0.1f,
                  .presence_penalty = 0.1f,
                  .penalty_last_n = 64,
                  .seed = 7};
    // Long enough to hold back text while a prefix of it is pending ("The" is common).
    o.stop_strings = {"The end of it all", "zzzz"};
  } else {
    o.sampling.temperature = 0;
  }
  return o;
}

struct LoopCount {
  int64_t total = 0;           // allocations of the whole generate() call
  int64_t between_pieces = 0;  // from the first piece of text to the last
  int64_t n_tokens = 0;
  int64_t n_pieces = 0;
  std::vector<int32_t> tokens;
};

LoopCount count_allocations(Forward& forward, const Tokenizer& tokenizer,
                            const std::vector<int32_t>& prompt, const GenerateOptions& o) {
  forward.reset();
  std::array<int64_t, 512> at_piece{};  // preallocated: the callback itself allocates nothing
  int64_t n_pieces = 0;
  LoopCount out;
  {
    AllocationCounter counter;
    auto result = generate(forward, tokenizer, prompt, o, [&](std::string_view) {
      if (n_pieces < static_cast<int64_t>(at_piece.size())) at_piece[n_pieces++] = counter.count();
      return true;
    });
    out.total = counter.count();
    EXPECT_TRUE(result) << result.error().message;
    if (result) out.n_tokens = static_cast<int64_t>(result->tokens.size());
    if (result) out.tokens = std::move(result->tokens);
  }
  out.n_pieces = n_pieces;
  if (n_pieces > 0) out.between_pieces = at_piece[n_pieces - 1] - at_piece[0];
  return out;
}

class TokenLoop : public ::testing::TestWithParam<bool> {};

TEST_P(TokenLoop, AllocatesNothingPerToken) {
  const bool sampled = GetParam();
  Loaded l = load("stories260K.gguf");
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), 256, 1, 64);
  const std::vector<int32_t> prompt = l.tokenizer->encode("Once upon a time", {.add_bos = true});
  count_allocations(forward, *l.tokenizer, prompt, options(64, sampled));  // warm-up

  const LoopCount long_run = count_allocations(forward, *l.tokenizer, prompt, options(64, sampled));
  const LoopCount short_run = count_allocations(forward, *l.tokenizer, prompt, options(8, sampled));
  std::printf("%s: 64 tokens: %lld allocations (%lld between %lld pieces); 8 tokens: %lld\n",
              sampled ? "sampled" : "greedy", static_cast<long long>(long_run.total),
              static_cast<long long>(long_run.between_pieces),
              static_cast<long long>(long_run.n_pieces), static_cast<long long>(short_run.total));
  ASSERT_EQ(long_run.n_tokens, 64) << "the model stopped early; the comparison needs 64 tokens";
  ASSERT_EQ(short_run.n_tokens, 8);
  EXPECT_GE(long_run.n_pieces, 32);
  EXPECT_EQ(long_run.between_pieces, 0);
  EXPECT_EQ(long_run.total, short_run.total);
}

// generate() decodes into reused buffers (StreamDecoder::push(id, &out)): the text is what
// decoding its tokens one by one gives.
TEST_P(TokenLoop, TextEqualsStreamDecoder) {
  Loaded l = load("stories260K.gguf");
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), 256, 1, 64);
  const std::vector<int32_t> prompt = l.tokenizer->encode("Once upon a time", {.add_bos = true});
  GenerateOptions o = options(200, GetParam());
  o.stop_strings.clear();
  std::string text;
  auto result = generate(forward, *l.tokenizer, prompt, o, [&](std::string_view t) {
    text += t;
    return true;
  });
  ASSERT_TRUE(result) << result.error().message;
  StreamDecoder decoder(*l.tokenizer);
  std::string expected;
  for (int32_t t : result->tokens) expected += decoder.push(t);
  expected += decoder.flush();
  EXPECT_EQ(text, expected);
  EXPECT_GT(text.size(), 100u);
}

INSTANTIATE_TEST_SUITE_P(Sampling, TokenLoop, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Sampled" : "Greedy"; });

// Live heap bytes once a request has ended and both threads let go of it.
int64_t live_after_request(Scheduler& scheduler, const Tokenizer& tokenizer, int k) {
  {
    const std::string text = "Once upon a time, in a town numbered " + std::to_string(k * 7919) +
                             ", there lived a " + (k % 2 ? "dog" : "little girl");
    auto sequence = scheduler.submit(tokenizer.encode(text, {.add_bos = true}),
                                     options(16 + k % 5, k % 3 == 0));
    EXPECT_TRUE(sequence) << sequence.error().message;
    if (!sequence) return 0;
    EXPECT_FALSE(drain(**sequence).empty());
    EXPECT_TRUE((*sequence)->result());
    // The engine thread drops its reference just after finishing the sequence.
    while ((*sequence).use_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return heap_live_bytes();
}

TEST(Requests, LiveHeapIsTheSameAfterEachRequest) {
  Loaded l = load("stories260K.gguf");
  ASSERT_NE(l.model, nullptr);
  CpuForward forward(l.model->hparams(), l.model->weights(), 256, 1, 64);
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{});
  std::array<int64_t, 21> live{};
  for (int k = 1; k <= 20; ++k) live[k] = live_after_request(scheduler, *l.tokenizer, k);
  for (int k = 1; k <= 20; ++k) {
    std::printf("after request %2d: %lld live heap bytes (%+lld vs request 2)\n", k,
                static_cast<long long>(live[k]), static_cast<long long>(live[k] - live[2]));
  }
  for (int k = 3; k <= 20; ++k) EXPECT_EQ(live[k], live[2]) << "request " << k;
}

}  // namespace
}  // namespace pensieve
