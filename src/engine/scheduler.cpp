#include "engine/scheduler.h"

#include <exception>

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

Scheduler::Scheduler(Forward& forward, const Tokenizer& tokenizer, SchedulerOptions options)
    : forward_(forward), tokenizer_(tokenizer), options_(options), n_ctx_(forward.n_ctx()) {
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  std::deque<std::shared_ptr<Sequence>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
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
    const int64_t busy = static_cast<int64_t>(queue_.size()) + n_running();
    if (busy > options_.max_waiting) {
      return make_error(ErrorCode::kResourceExhausted,
                        "engine: the queue is full ({} waiting besides the running request)",
                        queue_.size());
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
    if (n_shed < count && running_sequence_ != nullptr && !running_sequence_->shed_error()) {
      running_sequence_->shed(Error{code, reason});
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
  return static_cast<int64_t>(queue_.size()) + (running_sequence_ != nullptr ? 1 : 0);
}

void Scheduler::run() {
  while (true) {
    std::shared_ptr<Sequence> sequence;
    {
      std::unique_lock lock(mutex_);
      if (!wait_for_work(lock)) return;
      sequence = std::move(queue_.front());
      queue_.pop_front();
      running_sequence_ = sequence;
      running_.store(1, std::memory_order_relaxed);
    }
    Expected<GenerateResult> result = make_error(ErrorCode::kInternal, "engine: not run");
    try {
      result = run_one(*sequence);
    } catch (const std::exception& e) {  // bad_alloc and the like: fail this sequence only
      log::error("engine: generation failed: {}", e.what());
      result = make_error(ErrorCode::kInternal, "engine: {}", e.what());
    }
    // Shed, not cancelled by its client: the error says why it stopped.
    if (result && result->reason == StopReason::kCancelled) {
      if (std::optional<Error> shed = sequence->shed_error()) result = Unexpected<Error>(*shed);
    }
    {
      // Not running any more by the time the client hears of the end.
      std::lock_guard lock(mutex_);
      running_sequence_.reset();
      running_.store(0, std::memory_order_relaxed);
    }
    sequence->finish(std::move(result));
  }
}

bool Scheduler::wait_for_work(std::unique_lock<std::mutex>& lock) {
  const auto work = [&] { return stopping_ || !queue_.empty(); };
  const auto wake = [&] { return work() || release_requested_; };
  while (!work()) {
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

Expected<GenerateResult> Scheduler::run_one(Sequence& sequence) {
  if (!sequence.cancelled() && !model_resident()) PV_TRY_VOID(restore_weights());
  return generate_one(sequence);
}

Expected<GenerateResult> Scheduler::generate_one(Sequence& sequence) {
  if (sequence.cancelled()) {
    GenerateResult cancelled;
    cancelled.reason = StopReason::kCancelled;
    cancelled.n_prompt = sequence.n_prompt_;
    return cancelled;
  }
  forward_.reset();
  const int delay_ms = options_.token_delay_ms;
  return generate(forward_, tokenizer_, sequence.prompt_, sequence.options_,
                  [&](std::string_view text) {
                    sequence.push_text(text);
                    if (delay_ms > 0) {
                      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
                    }
                    return !sequence.cancelled();
                  });
}

}  // namespace pensieve
