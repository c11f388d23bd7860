// The scheduler: one engine thread owns the model's BatchForward and its paged KV cache, and
// advances every running sequence each step (continuous batching): decode tokens and chunks of
// prompts go through the model together, a long prompt never stalls the streams already running.
// Sequences take KV blocks as they grow and give them back when they end; full blocks stay
// behind as a prefix cache that a later request with the same start reuses (KvBlocks). HTTP
// threads submit work and read its text through a Sequence; all of the server's cross-thread
// locking lives here. The engine thread also releases the weights after an idle time
// (keep-alive) and reloads them for the next sequence; under memory emergency the newest
// sequences can be shed.
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
#include "engine/kv_blocks.h"
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

  // Engine thread only, while the sequence runs (or waits again after a preemption).
  std::optional<Generation> generation_;
  std::vector<int32_t> blocks_;  // block table
  int64_t n_evaluated_ = 0;      // positions whose K and V are in the blocks
  int64_t n_cached_ = 0;         // prompt tokens found in the prefix cache at admission
  int64_t n_published_ = 0;      // leading blocks offered to the prefix cache
};

struct SchedulerOptions {
  // Sequences that may wait besides the running ones; a submit beyond that is refused.
  int max_waiting = 16;
  // Tests only: sleep this long after each token, to make streams slow and predictable.
  int token_delay_ms = 0;
  // How long the engine stays idle before it releases the weights (Ollama's keep_alive): 0
  // releases them after each sequence once nothing waits; negative never releases.
  std::chrono::milliseconds keep_alive{-1};
  // What keep-alive releases and restores; null: never release. Must outlive the scheduler.
  WeightResidency* residency = nullptr;
  // Sequences generated at once (at most the forward pass's max_segments()).
  int max_parallel = 1;
  // Prompt tokens one step may take; the rest of the step's max_batch() is decode tokens.
  int64_t max_prefill_chunk = 256;
};

class Scheduler {
 public:
  // `forward` and `tokenizer` must outlive the scheduler; the engine thread owns `forward`.
  Scheduler(BatchForward& forward, const Tokenizer& tokenizer, SchedulerOptions options);
  // Cancels everything, finishes waiting sequences with an error and joins the engine thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a generation. Errors: kResourceExhausted when max_waiting sequences already wait,
  // kInvalidArgument for an empty prompt, kOutOfRange for one that does not fit the context.
  Expected<std::shared_ptr<Sequence>> submit(std::vector<int32_t> prompt, GenerateOptions options);

  // Memory emergency: ends up to `count` sequences, newest first (waiting ones from the back of
  // the queue, then running ones, the last admitted first), each with Error{code, reason}. A
  // waiting one ends at once; a running one stops before its next token, keeping the text it
  // already delivered, and gives its blocks back.
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
  // Memory pressure: drop the prefix cache's unreferenced blocks and give the memory of every
  // free block back to the system, on the engine thread before its next step (or at once when
  // idle). Running sequences keep their blocks.
  void trim_cache();

  static constexpr int64_t kBlockPositions = KvBlocks::kBlockPositions;
  // KV pool and prefix cache state, for /health and metrics (read without the engine's lock:
  // a snapshot that may be one step old).
  struct CacheStats {
    int64_t n_blocks = 0, n_free = 0, n_cached = 0, n_referenced = 0;
    int64_t hit_tokens = 0, lookup_tokens = 0;
    int64_t preemptions = 0;     // sequences sent back to be recomputed for lack of blocks
    int64_t trimmed_blocks = 0;  // cached blocks dropped by trim_cache()
  };
  CacheStats cache_stats() const;

 private:
  void run();
  // Waits for a sequence (releasing the weights once idle for keep_alive); false when stopping.
  bool wait_for_work(std::unique_lock<std::mutex>& lock);
  // `why`: "keep-alive" or "emergency", for the log line.
  void release_weights(std::string_view why);
  // trim_cache()'s work, on the engine thread.
  void trim_now();
  Expected<void> restore_weights();
  // Under the lock: moves waiting sequences into active_ while there is room; the ones that end
  // here (cancelled, never fitting) go to `ended`.
  void admit(std::vector<std::shared_ptr<Sequence>>* ended);
  // One forward step over every active sequence (scheduler_step.cpp).
  void step();
  // Blocks for positions up to `positions`; false when the pool is out of blocks.
  bool grow(Sequence& sequence, int64_t positions);
  // Gives the sequence's blocks back and sends it to the front of the queue to be recomputed.
  void preempt(std::shared_ptr<Sequence> sequence);
  // Offers the sequence's newly filled blocks to the prefix cache.
  void publish(Sequence& sequence);
  // Ends a running sequence: blocks back, out of active_, result to the client.
  void end(std::shared_ptr<Sequence> sequence, Expected<GenerateResult> result);
  // The step's forward pass failed: every sequence in it ends with the error.
  void fail_step(const Error& error);
  void update_stats();

  BatchForward& forward_;
  const Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  const int64_t n_ctx_;
  const int max_parallel_;
  KvBlocks kv_;  // engine thread only
  // The current step's segments and their sequences (engine thread; reserved once).
  std::vector<BatchSegment> segments_;
  std::vector<TokenDraw> draws_;  // a step's draws, one a segment
  std::vector<double> exp_sums_;  // a best-token step's sums of exponentials, one a segment
  std::vector<std::shared_ptr<Sequence>> members_;
  std::vector<std::shared_ptr<Sequence>> ending_;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::shared_ptr<Sequence>> queue_;
  std::vector<std::shared_ptr<Sequence>> active_;  // admission order; guarded by mutex_
  bool stopping_ = false;
  bool release_requested_ = false;  // release_when_idle() was called
  bool trim_requested_ = false;     // trim_cache() was called
  std::atomic<int64_t> running_{0};
  std::atomic<bool> resident_{true};
  std::atomic<int64_t> n_releases_{0};
  std::atomic<int64_t> n_restores_{0};
  std::atomic<int64_t> stat_free_{0}, stat_cached_{0}, stat_referenced_{0};
  std::atomic<int64_t> stat_hit_tokens_{0}, stat_lookup_tokens_{0}, stat_preemptions_{0};
  std::atomic<int64_t> stat_trimmed_{0};
  std::thread thread_;
};

}  // namespace pensieve
