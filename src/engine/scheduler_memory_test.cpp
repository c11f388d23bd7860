// The scheduler's memory duties on the real TinyStories-656K model: keep-alive releases the
// weights when idle (after each sequence with keep_alive 0, after the idle time otherwise, never
// during a run) and restores them before the next sequence, which then generates exactly what it
// would have; a failed restore fails that sequence only; shed_newest() ends the newest sequences
// with an error, waiting ones first.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "engine/scheduler.h"
#include "engine/test_support.h"
#include "engine/weight_residency.h"
#include "model/forward_cpu.h"

namespace pensieve {
namespace {

using engine_test::drain;
using engine_test::greedy;
using engine_test::load;
using engine_test::Loaded;
using std::chrono::milliseconds;

// The real model's residency, with a log of calls and a restore failure on demand.
class RecordingResidency final : public WeightResidency {
 public:
  explicit RecordingResidency(Model& model) : model_(model) {}

  Expected<void> release() override {
    std::lock_guard lock(mutex_);
    if (scheduler_ != nullptr && scheduler_->n_running() != 0) released_while_running_ = true;
    events_ += "release ";
    return model_.release();
  }
  Expected<void> restore() override {
    std::lock_guard lock(mutex_);
    if (fail_next_restore_) {
      fail_next_restore_ = false;
      events_ += "restore-failed ";
      return make_error(ErrorCode::kIo, "model: cannot read the weights back (test)");
    }
    events_ += "restore ";
    return model_.restore();
  }
  int64_t bytes() const override { return model_.bytes(); }

  void watch(const Scheduler* scheduler) {
    std::lock_guard lock(mutex_);
    scheduler_ = scheduler;
  }
  void fail_next_restore() {
    std::lock_guard lock(mutex_);
    fail_next_restore_ = true;
  }
  std::string events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  bool released_while_running() const {
    std::lock_guard lock(mutex_);
    return released_while_running_;
  }

 private:
  ModelResidency model_;
  mutable std::mutex mutex_;
  const Scheduler* scheduler_ = nullptr;
  std::string events_;
  bool fail_next_restore_ = false;
  bool released_while_running_ = false;
};

// Polls until pred() holds or 5 s passed.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return pred();
}

class KeepAlive : public ::testing::Test {
 protected:
  void SetUp() override {
    l_ = load();
    ASSERT_NE(l_.model, nullptr);
    prompt_ = l_.tokenizer->encode("Once upon a time", {.add_bos = true});
    CpuForward direct(l_.model->hparams(), l_.model->weights(), 256, 1, 64);
    auto result = generate(direct, *l_.tokenizer, prompt_, greedy(24), [&](std::string_view t) {
      expected_ += t;
      return true;
    });
    ASSERT_TRUE(result) << result.error().message;
    ASSERT_FALSE(expected_.empty());
  }

  std::string run(Scheduler& scheduler, int64_t max_tokens = 24) {
    auto sequence = scheduler.submit(prompt_, greedy(max_tokens));
    EXPECT_TRUE(sequence) << sequence.error().message;
    if (!sequence) return {};
    std::string text = drain(**sequence);
    EXPECT_TRUE((*sequence)->result()) << (*sequence)->result().error().message;
    return text;
  }

  Loaded l_;
  std::vector<int32_t> prompt_;
  std::string expected_;
};

TEST_F(KeepAlive, ZeroReleasesAfterEachSequenceAndRestoresBeforeTheNext) {
  RecordingResidency residency(*l_.model);
  CpuForward forward(l_.model->hparams(), l_.model->weights(), 256, 1, 64);
  SchedulerOptions options;
  options.keep_alive = milliseconds(0);
  options.residency = &residency;
  Scheduler scheduler(forward, *l_.tokenizer, options);
  residency.watch(&scheduler);

  // Idle from the start: released before any sequence.
  ASSERT_TRUE(eventually([&] { return scheduler.n_releases() == 1; }));
  EXPECT_FALSE(scheduler.model_resident());
  for (int i = 0; i < 2; ++i) {
    // Released weights read as zeros: this text is right only if they were restored first.
    EXPECT_EQ(run(scheduler), expected_);
    ASSERT_TRUE(eventually([&] { return scheduler.n_releases() == 2 + i; }));
    EXPECT_FALSE(scheduler.model_resident());
    EXPECT_FALSE(l_.model->weights_resident());
  }
  EXPECT_EQ(scheduler.n_restores(), 2);
  EXPECT_EQ(residency.events(), "release restore release restore release ");

  // A failed restore fails that sequence only; the next one restores and runs.
  residency.fail_next_restore();
  auto failed = scheduler.submit(prompt_, greedy(24));
  ASSERT_TRUE(failed);
  EXPECT_EQ(drain(**failed), "");
  ASSERT_FALSE((*failed)->result());
  EXPECT_EQ((*failed)->result().error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*failed)->result().error().message, "model: cannot read the weights back (test)");
  EXPECT_FALSE(scheduler.model_resident());
  EXPECT_EQ(scheduler.n_restores(), 2);
  EXPECT_EQ(run(scheduler), expected_);
  EXPECT_EQ(scheduler.n_restores(), 3);
  ASSERT_TRUE(eventually([&] { return scheduler.n_releases() == 4; }));
  EXPECT_EQ(residency.events(),
            "release restore release restore release restore-failed restore release ");
  EXPECT_FALSE(residency.released_while_running());
}

TEST_F(KeepAlive, ReleasesAfterTheIdleTimeNeverDuringARun) {
  RecordingResidency residency(*l_.model);
  CpuForward forward(l_.model->hparams(), l_.model->weights(), 256, 1, 64);
  SchedulerOptions options;
  options.token_delay_ms = 20;  // 24 tokens take ~480 ms, far past keep_alive
  options.keep_alive = milliseconds(200);
  options.residency = &residency;
  Scheduler scheduler(forward, *l_.tokenizer, options);
  residency.watch(&scheduler);

  ASSERT_TRUE(eventually([&] { return scheduler.n_releases() == 1; }));
  auto sequence = scheduler.submit(prompt_, greedy(24));
  ASSERT_TRUE(sequence);
  std::string text;
  while (true) {
    Sequence::Update u = (*sequence)->wait(milliseconds(1000));
    for (const std::string& piece : u.pieces) text += piece;
    if (u.finished) break;
    EXPECT_EQ(scheduler.n_releases(), 1);  // still running: nothing released
    EXPECT_TRUE(scheduler.model_resident());
  }
  EXPECT_EQ(text, expected_);
  EXPECT_EQ(scheduler.n_restores(), 1);
  // Two short ones back to back: the gap is far shorter than keep_alive, so nothing is
  // released between them.
  const std::string first = run(scheduler, 4);
  const std::string second = run(scheduler, 4);
  EXPECT_EQ(first, second);
  EXPECT_EQ(expected_.rfind(first, 0), 0u);
  EXPECT_EQ(scheduler.n_restores(), 1);
  ASSERT_TRUE(eventually([&] { return scheduler.n_releases() == 2; }));
  EXPECT_FALSE(scheduler.model_resident());
  EXPECT_FALSE(residency.released_while_running());
  EXPECT_EQ(run(scheduler), expected_);
  EXPECT_EQ(scheduler.n_restores(), 2);
}

TEST_F(KeepAlive, NegativeNeverReleases) {
  RecordingResidency residency(*l_.model);
  CpuForward forward(l_.model->hparams(), l_.model->weights(), 256, 1, 64);
  SchedulerOptions options;
  options.residency = &residency;  // keep_alive defaults to -1
  Scheduler scheduler(forward, *l_.tokenizer, options);
  EXPECT_EQ(run(scheduler), expected_);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(scheduler.n_releases(), 0);
  EXPECT_TRUE(scheduler.model_resident());
  EXPECT_EQ(residency.events(), "");
}

// A memory emergency releases the weights once the engine is idle even though keep-alive never
// would; the next sequence reloads them and generates what it would have.
TEST_F(KeepAlive, ReleaseWhenIdleOverridesKeepAlive) {
  RecordingResidency residency(*l_.model);
  CpuForward forward(l_.model->hparams(), l_.model->weights(), 256, 1, 64);
  SchedulerOptions options;
  options.token_delay_ms = 10;
  options.residency = &residency;  // keep_alive -1: never on its own
  Scheduler scheduler(forward, *l_.tokenizer, options);
  residency.watch(&scheduler);
  auto sequence = scheduler.submit(prompt_, greedy(24));
  ASSERT_TRUE(sequence);
  ASSERT_TRUE(eventually([&] { return scheduler.n_running() == 1; }));
  scheduler.release_when_idle();  // while running: waits for the run to end
  EXPECT_EQ(drain(**sequence), expected_);
  ASSERT_TRUE(eventually([&] { return scheduler.n_releases() == 1; }));
  EXPECT_FALSE(scheduler.model_resident());
  EXPECT_FALSE(residency.released_while_running());
  scheduler.release_when_idle();  // already released: nothing more
  EXPECT_EQ(run(scheduler), expected_);
  EXPECT_EQ(scheduler.n_restores(), 1);
  EXPECT_EQ(scheduler.n_releases(), 1);
  EXPECT_TRUE(scheduler.model_resident());
}

constexpr const char* kShedReason =
    "memory: the machine is almost out of memory; this request was cancelled to free its memory";

TEST(Shed, NewestWaitingSequencesGoFirst) {
  Loaded l = load();
  CpuForward forward(l.model->hparams(), l.model->weights(), 512, 1, 64);
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{4, 20});
  const std::vector<int32_t> prompt = l.tokenizer->encode("Once upon a time", {.add_bos = true});
  auto first = scheduler.submit(prompt, greedy(30));
  ASSERT_TRUE(first);
  ASSERT_FALSE((*first)->wait(milliseconds(5000)).pieces.empty());  // running
  auto second = scheduler.submit(prompt, greedy(30));
  auto third = scheduler.submit(prompt, greedy(30));
  ASSERT_TRUE(second && third);
  EXPECT_EQ(scheduler.n_in_flight(), 3);

  EXPECT_EQ(scheduler.shed_newest(2, kShedReason), 2);
  for (auto* shed : {&*second, &*third}) {
    Sequence::Update u = (*shed)->wait(milliseconds(0));  // ended at once, without text
    EXPECT_TRUE(u.finished);
    EXPECT_TRUE(u.pieces.empty());
    ASSERT_FALSE((*shed)->result());
    EXPECT_EQ((*shed)->result().error().code, ErrorCode::kResourceExhausted);
    EXPECT_EQ((*shed)->result().error().message, kShedReason);
  }
  EXPECT_EQ(scheduler.n_in_flight(), 1);
  drain(**first);
  ASSERT_TRUE((*first)->result());
  EXPECT_NE((*first)->result()->reason, StopReason::kCancelled);
  EXPECT_TRUE(eventually([&] { return scheduler.n_in_flight() == 0; }));
  EXPECT_EQ(scheduler.shed_newest(2, kShedReason), 0);
}

TEST(Shed, RunningSequenceStopsWithTheErrorKeepingItsText) {
  Loaded l = load();
  CpuForward forward(l.model->hparams(), l.model->weights(), 512, 1, 64);
  Scheduler scheduler(forward, *l.tokenizer, SchedulerOptions{4, 20});
  const std::vector<int32_t> prompt = l.tokenizer->encode("Once upon a time", {.add_bos = true});
  auto running = scheduler.submit(prompt, greedy(400));
  ASSERT_TRUE(running);
  std::string text;
  while (text.size() < 20) {
    Sequence::Update u = (*running)->wait(milliseconds(5000));
    ASSERT_FALSE(u.finished);
    for (const std::string& piece : u.pieces) text += piece;
  }
  // More asked for than in flight: only the one running is shed.
  EXPECT_EQ(scheduler.shed_newest(5, kShedReason), 1);
  EXPECT_EQ(scheduler.shed_newest(1, kShedReason), 0);  // already shed
  text += drain(**running);
  ASSERT_FALSE((*running)->result());
  EXPECT_EQ((*running)->result().error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ((*running)->result().error().message, kShedReason);
  EXPECT_GE(text.size(), 20u);  // what was delivered stays delivered

  // The engine goes on serving.
  auto next = scheduler.submit(prompt, greedy(5));
  ASSERT_TRUE(next);
  drain(**next);
  ASSERT_TRUE((*next)->result());
  EXPECT_EQ((*next)->result()->tokens.size(), 5u);
}

}  // namespace
}  // namespace pensieve
