#include "engine/scheduler.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "core/log.h"

namespace pensieve {
namespace {

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// "5m", "90s", "50ms": how keep_alive was probably written.
std::string duration_text(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

}  // namespace

Sequence::Sequence(std::vector<int32_t> prompt, GenerateOptions options)
    : prompt_(std::move(prompt)),
      options_(std::move(options)),
      n_prompt_(static_cast<int64_t>(prompt_.size())),
      submitted_at_(Clock::now()) {
  options_.cancel = &cancel_;
}

Sequence::Update Sequence::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return !pending_.empty() || result_.has_value(); });
  Update update;
  update.pieces.swap(pending_);
  update.finished = result_.has_value();
  return update;
}

std::optional<Clock::time_point> Sequence::first_text_at() const {
  std::lock_guard lock(mutex_);
  return first_text_at_;
}

void Sequence::push_text(std::string_view text) {
  {
    std::lock_guard lock(mutex_);
    if (!first_text_at_) first_text_at_ = Clock::now();
    pending_.emplace_back(text);
  }
  changed_.notify_all();
}

void Sequence::finish(Expected<GenerateResult> result) {
  {
    std::lock_guard lock(mutex_);
    result_.emplace(std::move(result));
  }
  changed_.notify_all();
}

void Sequence::shed(Error error) {
  {
    std::lock_guard lock(mutex_);
    shed_error_ = std::move(error);
  }
  cancel_.store(true, std::memory_order_relaxed);
}

std::optional<Error> Sequence::shed_error() const {
  std::lock_guard lock(mutex_);
  return shed_error_;
}

Scheduler::Scheduler(BatchForward& forward, const Tokenizer& tokenizer, SchedulerOptions options)
    : forward_(forward),
      tokenizer_(tokenizer),
      options_(options),
      n_ctx_(forward.n_ctx()),
      max_parallel_(
          static_cast<int>(std::clamp<int64_t>(options.max_parallel, 1, forward.max_segments()))),
      kv_(static_cast<int32_t>(forward.n_blocks())) {
  static_assert(KvBlocks::kBlockPositions == BatchForward::kKvBlockPositions);
  segments_.reserve(static_cast<size_t>(max_parallel_));
  draws_.reserve(static_cast<size_t>(max_parallel_));
  members_.reserve(static_cast<size_t>(max_parallel_));
  ending_.reserve(static_cast<size_t>(max_parallel_));
  active_.reserve(static_cast<size_t>(max_parallel_));
  update_stats();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  std::deque<std::shared_ptr<Sequence>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
    for (auto& sequence : active_) sequence->cancel();
  }
  work_.notify_all();
  for (auto& sequence : dropped) {
    sequence->finish(make_error(ErrorCode::kUnavailable, "engine: shutting down"));
  }
  thread_.join();
}

Expected<std::shared_ptr<Sequence>> Scheduler::submit(std::vector<int32_t> prompt,
                                                      GenerateOptions options) {
  if (prompt.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "engine: the prompt has no tokens");
  }
  if (static_cast<int64_t>(prompt.size()) >= n_ctx_) {
    return make_error(ErrorCode::kOutOfRange, "prompt is too long: {} tokens > {} maximum",
                      prompt.size(), n_ctx_ - 1);
  }
  std::shared_ptr<Sequence> sequence(new Sequence(std::move(prompt), std::move(options)));
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return make_error(ErrorCode::kUnavailable, "engine: shutting down");
    const int64_t free_slots = max_parallel_ - static_cast<int64_t>(active_.size());
    if (static_cast<int64_t>(queue_.size()) - std::max<int64_t>(0, free_slots) >=
        options_.max_waiting) {
      return make_error(ErrorCode::kResourceExhausted,
                        "engine: the queue is full ({} waiting besides the {} running)",
                        queue_.size(), active_.size());
    }
    queue_.push_back(sequence);
  }
  work_.notify_one();
  return sequence;
}

int Scheduler::shed_newest(int count, std::string reason, ErrorCode code) {
  std::vector<std::shared_ptr<Sequence>> dropped;
  int n_shed = 0;
  {
    std::lock_guard lock(mutex_);
    while (n_shed < count && !queue_.empty()) {
      dropped.push_back(std::move(queue_.back()));
      queue_.pop_back();
      ++n_shed;
    }
    for (auto it = active_.rbegin(); n_shed < count && it != active_.rend(); ++it) {
      if ((*it)->shed_error()) continue;
      (*it)->shed(Error{code, reason});
      ++n_shed;
    }
  }
  for (auto& sequence : dropped) sequence->finish(Unexpected<Error>(Error{code, reason}));
  if (n_shed > 0) log::warn("engine: shed {} sequence(s), newest first: {}", n_shed, reason);
  return n_shed;
}

int64_t Scheduler::n_waiting() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queue_.size());
}

int64_t Scheduler::n_in_flight() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queue_.size() + active_.size());
}

void Scheduler::run() {
  std::vector<std::shared_ptr<Sequence>> ended;
  while (true) {
    bool trim = false;
    {
      std::unique_lock lock(mutex_);
      if (active_.empty() && !wait_for_work(lock)) break;
      if (stopping_) break;
      trim = std::exchange(trim_requested_, false);
      admit(&ended);
      running_.store(static_cast<int64_t>(active_.size()), std::memory_order_relaxed);
    }
    if (trim) trim_now();
    for (auto& sequence : ended) {
      GenerateResult cancelled;
      cancelled.reason = StopReason::kCancelled;
      cancelled.n_prompt = sequence->n_prompt_;
      if (auto shed = sequence->shed_error()) {
        sequence->finish(Unexpected<Error>(*shed));
      } else {
        sequence->finish(std::move(cancelled));
      }
    }
    ended.clear();
    if (active_.empty()) continue;
    if (!model_resident()) {
      if (Expected<void> restored = restore_weights(); !restored) {
        // Every running sequence fails; the next ones try again.
        while (!active_.empty()) end(active_.back(), Unexpected<Error>(restored.error()));
        continue;
      }
    }
    try {
      step();
    } catch (const std::exception& e) {  // bad_alloc and the like: fail what was running
      log::error("engine: generation failed: {}", e.what());
      while (!active_.empty()) {
        end(active_.back(), make_error(ErrorCode::kInternal, "engine: {}", e.what()));
      }
    }
    if (options_.token_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.token_delay_ms));
    }
  }
  // Stopping: whatever still runs ends with an error.
  while (!active_.empty()) {
    end(active_.back(), make_error(ErrorCode::kUnavailable, "engine: shutting down"));
  }
}

void Scheduler::admit(std::vector<std::shared_ptr<Sequence>>* ended) {
  while (!queue_.empty() && static_cast<int>(active_.size()) < max_parallel_) {
    std::shared_ptr<Sequence> sequence = queue_.front();
    Sequence& s = *sequence;
    if (s.cancelled()) {
      queue_.pop_front();
      if (s.generation_) {
        // A preempted sequence: it has a generation to end properly.
        active_.push_back(sequence);
        continue;
      }
      ended->push_back(std::move(sequence));
      continue;
    }
    const std::span<const int32_t> tokens =
        s.generation_ ? s.generation_->tokens() : std::span<const int32_t>(s.prompt_);
    std::vector<int32_t> matched = kv_.match_prefix(tokens);
    const int64_t needed = (static_cast<int64_t>(tokens.size()) + KvBlocks::kBlockPositions) /
                               KvBlocks::kBlockPositions -
                           static_cast<int64_t>(matched.size());
    if (kv_.n_free() + kv_.n_cached() < needed) {
      kv_.release_all(matched);
      if (!active_.empty()) return;  // wait for running ones to give blocks back
      queue_.pop_front();
      s.shed(Error{ErrorCode::kOutOfRange,
                   fmt::format("engine: the request needs {} KV blocks; the pool has {}", needed,
                               kv_.n_blocks())});
      ended->push_back(std::move(sequence));
      continue;
    }
    queue_.pop_front();
    s.blocks_.reserve(
        static_cast<size_t>((n_ctx_ + KvBlocks::kBlockPositions - 1) / KvBlocks::kBlockPositions));
    s.blocks_.assign(matched.begin(), matched.end());
    s.n_evaluated_ = static_cast<int64_t>(matched.size()) * KvBlocks::kBlockPositions;
    s.n_published_ = static_cast<int64_t>(matched.size());
    if (!s.generation_) {
      s.n_cached_ = s.n_evaluated_;
      s.generation_.emplace(tokenizer_, s.prompt_, s.options_, n_ctx_);
      s.generation_->result().n_cached = s.n_cached_;
    }
    active_.push_back(std::move(sequence));
  }
}

void Scheduler::end(std::shared_ptr<Sequence> sequence, Expected<GenerateResult> result) {
  kv_.release_all(sequence->blocks_);
  sequence->blocks_.clear();
  // Shed, not cancelled by its client: the error says why it stopped.
  if ((result && result->reason == StopReason::kCancelled) || !result) {
    if (std::optional<Error> shed = sequence->shed_error()) result = Unexpected<Error>(*shed);
  }
  {
    // Not running any more by the time the client hears of the end.
    std::lock_guard lock(mutex_);
    std::erase(active_, sequence);
    running_.store(static_cast<int64_t>(active_.size()), std::memory_order_relaxed);
  }
  update_stats();
  sequence->generation_.reset();
  sequence->finish(std::move(result));
}

void Scheduler::update_stats() {
  stat_free_.store(kv_.n_free(), std::memory_order_relaxed);
  stat_cached_.store(kv_.n_cached(), std::memory_order_relaxed);
  stat_referenced_.store(kv_.n_referenced(), std::memory_order_relaxed);
  stat_hit_tokens_.store(kv_.hit_tokens(), std::memory_order_relaxed);
  stat_lookup_tokens_.store(kv_.lookup_tokens(), std::memory_order_relaxed);
}

Scheduler::CacheStats Scheduler::cache_stats() const {
  CacheStats stats;
  stats.n_blocks = kv_.n_blocks();
  stats.n_free = stat_free_.load(std::memory_order_relaxed);
  stats.n_cached = stat_cached_.load(std::memory_order_relaxed);
  stats.n_referenced = stat_referenced_.load(std::memory_order_relaxed);
  stats.hit_tokens = stat_hit_tokens_.load(std::memory_order_relaxed);
  stats.lookup_tokens = stat_lookup_tokens_.load(std::memory_order_relaxed);
  stats.preemptions = stat_preemptions_.load(std::memory_order_relaxed);
  stats.trimmed_blocks = stat_trimmed_.load(std::memory_order_relaxed);
  return stats;
}

bool Scheduler::wait_for_work(std::unique_lock<std::mutex>& lock) {
  const auto work = [&] { return stopping_ || !queue_.empty(); };
  const auto wake = [&] { return work() || release_requested_ || trim_requested_; };
  while (!work()) {
    if (trim_requested_) {
      trim_requested_ = false;
      lock.unlock();
      trim_now();
      lock.lock();
      continue;
    }
    if (release_requested_) {
      release_requested_ = false;
      if (options_.residency != nullptr && model_resident()) {
        lock.unlock();
        release_weights("emergency");
        lock.lock();
      }
      continue;
    }
    if (options_.residency == nullptr || options_.keep_alive.count() < 0 || !model_resident()) {
      work_.wait(lock, wake);
      continue;
    }
    if (work_.wait_for(lock, options_.keep_alive, wake)) continue;
    // Nothing evaluates while the engine thread is here, so the weights can go.
    lock.unlock();
    release_weights("keep-alive");
    lock.lock();
  }
  // A release asked for before this work arrived is stale: the sequence needs the weights.
  release_requested_ = false;
  return !stopping_;
}

void Scheduler::trim_cache() {
  {
    std::lock_guard lock(mutex_);
    trim_requested_ = true;
  }
  work_.notify_all();
}

void Scheduler::trim_now() {
  const int32_t dropped = kv_.evict_cached(0);
  const int64_t bytes = forward_.discard_blocks(kv_.free_blocks());
  stat_trimmed_.fetch_add(dropped, std::memory_order_relaxed);
  update_stats();
  if (dropped > 0) {
    log::info(
        "engine: memory pressure: prefix cache dropped {} block(s); {:.1f} MiB of free "
        "KV blocks given back",
        dropped, mib(bytes));
  }
}

void Scheduler::release_when_idle() {
  {
    std::lock_guard lock(mutex_);
    release_requested_ = true;
  }
  work_.notify_all();
}

void Scheduler::release_weights(std::string_view why) {
  const int64_t bytes = options_.residency->bytes();
  Expected<void> released = options_.residency->release();
  // Even after an error some pages may be gone: the next sequence restores them.
  resident_.store(false, std::memory_order_relaxed);
  n_releases_.fetch_add(1, std::memory_order_relaxed);
  if (!released) {
    log::error("engine: releasing the model weights failed: {}", released.error().message);
  } else if (why == "emergency") {
    log::warn(
        "engine: memory emergency: model weights released ({:.1f} MiB); the next request "
        "reloads them",
        mib(bytes));
  } else if (options_.keep_alive.count() == 0) {
    log::info("engine: keep-alive 0: model weights released ({:.1f} MiB)", mib(bytes));
  } else {
    log::info("engine: idle for {}: model weights released ({:.1f} MiB)",
              duration_text(options_.keep_alive), mib(bytes));
  }
}

Expected<void> Scheduler::restore_weights() {
  const Clock::time_point start = Clock::now();
  Expected<void> restored = options_.residency->restore();
  if (!restored) {
    log::error("engine: reloading the model weights failed: {}", restored.error().message);
    return make_error(ErrorCode::kUnavailable, "{}", restored.error().message);
  }
  resident_.store(true, std::memory_order_relaxed);
  n_restores_.fetch_add(1, std::memory_order_relaxed);
  log::info("engine: model weights reloaded in {:.0f} ms ({:.1f} MiB)",
            std::chrono::duration<double, std::milli>(Clock::now() - start).count(),
            mib(options_.residency->bytes()));
  return {};
}

}  // namespace pensieve
