// The scheduler on the real TinyStories-656K model: a sequence's text equals a direct
// generate() over the same prompt, sequences run one at a time in order, a full queue refuses,
// and cancel() stops a running generation within a token.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include "engine/test_support.h"
#include "model/forward_cpu.h"

namespace pensieve {
namespace {

using std::chrono::milliseconds;

using engine_test::drain;
using engine_test::greedy;
using engine_test::load;
using engine_test::Loaded;

TEST(Scheduler, TextEqualsDirectGenerate) {
  Loaded l = load();
  const Hparams& hp = l.model->hparams();
  std::vector<int32_t> prompt = l.tokenizer->encode("Once upon a time", {.add_bos = true});
  CpuForward direct_forward(hp, l.model->weights(), 512, 1, 64, GgmlType::kF16);
  std::string expected;
  auto direct = generate(direct_forward, *l.tokenizer, prompt, greedy(40), [&](std::string_view t) {
    expected += t;
    return true;
  });
  ASSERT_TRUE(direct);

  CpuForward forward(hp, l.model->weights(), 512, 1, 64, GgmlType::kF16);
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{4, 0});
  // Two in a row: the second starts from a clean cache.
  for (int i = 0; i < 2; ++i) {
    auto sequence = scheduler.submit(prompt, greedy(40));
    ASSERT_TRUE(sequence) << sequence.error().message;
    EXPECT_EQ(drain(**sequence), expected);
    ASSERT_TRUE((*sequence)->result());
    EXPECT_EQ((*sequence)->result()->tokens, direct->tokens);
    EXPECT_TRUE((*sequence)->first_text_at().has_value());
  }
}

TEST(Scheduler, FullQueueRefusesAndCancelStops) {
  Loaded l = load();
  CpuForward forward(l.model->hparams(), l.model->weights(), 512, 1, 64, GgmlType::kF16);
  // 20 ms per token: the first sequence is still running while the others arrive.
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{1, 20});
  std::vector<int32_t> prompt = l.tokenizer->encode("Once upon a time", {.add_bos = true});
  auto running = scheduler.submit(prompt, greedy(400));
  ASSERT_TRUE(running);
  // Wait until it produces text, so it is running rather than waiting.
  Sequence::Update first = (*running)->wait(milliseconds(5000));
  ASSERT_FALSE(first.pieces.empty());
  auto waiting = scheduler.submit(prompt, greedy(5));
  ASSERT_TRUE(waiting) << waiting.error().message;
  EXPECT_EQ(scheduler.n_waiting(), 1);
  auto refused = scheduler.submit(prompt, greedy(5));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kResourceExhausted);

  (*running)->cancel();
  drain(**running);
  const auto& result = (*running)->result();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, StopReason::kCancelled);
  EXPECT_LT(result->tokens.size(), 50u);
  // The waiting one runs next, to its end.
  drain(**waiting);
  ASSERT_TRUE((*waiting)->result());
  EXPECT_EQ((*waiting)->result()->tokens.size(), 5u);
}

TEST(Scheduler, RejectsPromptsThatDoNotFit) {
  Loaded l = load();
  CpuForward forward(l.model->hparams(), l.model->weights(), 16, 1, 16, GgmlType::kF16);
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{});
  auto empty = scheduler.submit({}, greedy(4));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  auto too_long = scheduler.submit(std::vector<int32_t>(16, 1), greedy(4));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().message, "prompt is too long: 16 tokens > 15 maximum");
}

}  // namespace
}  // namespace pensieve
