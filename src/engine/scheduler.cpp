#include "engine/scheduler.h"

#include <exception>

#include "core/log.h"

namespace pensieve {

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
    sequence->finish(make_error(ErrorCode::kResourceExhausted, "engine: shutting down"));
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
    if (stopping_) return make_error(ErrorCode::kResourceExhausted, "engine: shutting down");
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

int64_t Scheduler::n_waiting() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queue_.size());
}

void Scheduler::run() {
  while (true) {
    std::shared_ptr<Sequence> sequence;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      sequence = std::move(queue_.front());
      queue_.pop_front();
      running_.store(1, std::memory_order_relaxed);
    }
    Expected<GenerateResult> result = make_error(ErrorCode::kInternal, "engine: not run");
    try {
      result = generate_one(*sequence);
    } catch (const std::exception& e) {  // bad_alloc and the like: fail this sequence only
      log::error("engine: generation failed: {}", e.what());
      result = make_error(ErrorCode::kInternal, "engine: {}", e.what());
    }
    // Not running any more by the time the client hears of the end.
    running_.store(0, std::memory_order_relaxed);
    sequence->finish(std::move(result));
  }
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
