// The scheduler: one engine thread owns the model's Forward and runs queued sequences one at a
// time, in arrival order; HTTP threads submit work and read its text through a Sequence. All of
// the server's cross-thread locking lives here. The engine thread also unloads the weights after
// an idle time (keep-alive) and reloads them for the next sequence; under memory emergency the
// newest sequences can be shed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "engine/generate.h"
#include "engine/weight_residency.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {

using Clock = std::chrono::steady_clock;

// One submitted generation, shared by the engine thread (which fills it) and the HTTP thread
// (which drains it).
class Sequence {
 public:
  struct Update {
    // The pieces of text produced since the last wait(), one per piece the generator emitted
    // (usually one per token), so a writer that falls behind still sends them one by one.
    std::vector<std::string> pieces;
    bool finished = false;  // result() is ready; no more text will come
  };

  // Waits until there is new text, the sequence finished, or `timeout` passed.
  Update wait(std::chrono::milliseconds timeout);
  // Stops generation before its next token (or drops it from the queue); idempotent. Called
  // when the client goes away.
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancel_.load(std::memory_order_relaxed); }

  // Valid once wait() reported finished.
  const Expected<GenerateResult>& result() const { return *result_; }
  int64_t n_prompt_tokens() const { return n_prompt_; }
  Clock::time_point submitted_at() const { return submitted_at_; }
  // When the first text came out; nullopt if none did.
  std::optional<Clock::time_point> first_text_at() const;

 private:
  friend class Scheduler;
  Sequence(std::vector<int32_t> prompt, GenerateOptions options);
  // Engine thread side.
  void push_text(std::string_view text);
  void finish(Expected<GenerateResult> result);
  // Any thread: stop before the next token and end with `error` instead of a result.
  void shed(Error error);
  std::optional<Error> shed_error() const;

  std::vector<int32_t> prompt_;
  GenerateOptions options_;
  int64_t n_prompt_ = 0;
  Clock::time_point submitted_at_;
  std::atomic<bool> cancel_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> pending_;
  std::optional<Clock::time_point> first_text_at_;
  std::optional<Expected<GenerateResult>> result_;
  std::optional<Error> shed_error_;
};

struct SchedulerOptions {
  // Sequences that may wait while one runs; a submit beyond that is refused.
  int max_waiting = 16;
  // Tests only: sleep this long after each token, to make streams slow and predictable.
  int token_delay_ms = 0;
  // How long the engine stays idle before it releases the weights (Ollama's keep_alive): 0
  // releases them after each sequence once nothing waits; negative never releases.
  std::chrono::milliseconds keep_alive{-1};
  // What keep-alive releases and restores; null: never release. Must outlive the scheduler.
  WeightResidency* residency = nullptr;
};

class Scheduler {
 public:
  // `forward` and `tokenizer` must outlive the scheduler; the engine thread owns `forward`.
  Scheduler(Forward& forward, const Tokenizer& tokenizer, SchedulerOptions options);
  // Cancels everything, finishes waiting sequences with an error and joins the engine thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a generation. Errors: kResourceExhausted when max_waiting sequences already wait,
  // kInvalidArgument for an empty prompt or one that does not fit the context.
  Expected<std::shared_ptr<Sequence>> submit(std::vector<int32_t> prompt, GenerateOptions options);

  // Memory emergency: ends up to `count` sequences, newest first (waiting ones from the back of
  // the queue, then the running one), each with Error{code, reason}. A waiting one ends at once;
  // the running one stops before its next token, keeping the text it already delivered.
  // Returns how many were shed.
  int shed_newest(int count, std::string reason, ErrorCode code = ErrorCode::kResourceExhausted);

  int64_t n_waiting() const;
  int64_t n_running() const { return running_.load(std::memory_order_relaxed); }
  int64_t n_in_flight() const;  // waiting + running
  int64_t n_ctx() const { return n_ctx_; }

  // Keep-alive state, for /health and metrics.
  bool model_resident() const { return resident_.load(std::memory_order_relaxed); }
  int64_t n_releases() const { return n_releases_.load(std::memory_order_relaxed); }
  int64_t n_restores() const { return n_restores_.load(std::memory_order_relaxed); }
  // Memory emergency: release the weights as soon as the engine is idle, whatever keep-alive
  // says; the next sequence reloads them. A no-op without a residency or when already released;
  // forgotten when a sequence arrives before the engine was idle with the weights loaded.
  void release_when_idle();

 private:
  void run();
  // Waits for a sequence (releasing the weights once idle for keep_alive); false when stopping.
  bool wait_for_work(std::unique_lock<std::mutex>& lock);
  // `why`: "keep-alive" or "emergency", for the log line.
  void release_weights(std::string_view why);
  Expected<void> restore_weights();
  Expected<GenerateResult> run_one(Sequence& sequence);
  Expected<GenerateResult> generate_one(Sequence& sequence);

  Forward& forward_;
  const Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  const int64_t n_ctx_;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::shared_ptr<Sequence>> queue_;
  std::shared_ptr<Sequence> running_sequence_;  // guarded by mutex_, for shed_newest()
  bool stopping_ = false;
  bool release_requested_ = false;  // release_when_idle() was called
  std::atomic<int64_t> running_{0};
  std::atomic<bool> resident_{true};
  std::atomic<int64_t> n_releases_{0};
  std::atomic<int64_t> n_restores_{0};
  std::thread thread_;
};

}  // namespace pensieve
