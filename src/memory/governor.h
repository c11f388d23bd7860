// The memory governor: reads a MemorySource every poll period, keeps the current tier, and acts
// on it (see docs/MEMORY.md): Critical and worse refuse new work (callers ask accepting()),
// Warning and worse trim caches each poll, Emergency sheds the newest in-flight work each poll
// and, when it lasts, asks for a graceful
// shutdown. The actions are callbacks, so the governor knows nothing of HTTP or the engine.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "memory/system_memory.h"
#include "memory/tiers.h"

namespace pensieve::memory {

class Governor {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    TierThresholds thresholds;
    std::chrono::milliseconds poll{500};
    // Emergency this long -> shutdown(); 0 = never.
    std::chrono::milliseconds emergency_shutdown{30000};
    // A better tier is taken only after this many readings in a row agree, so a reading that
    // hovers at a threshold does not flip admission on and off at every poll.
    int recover_after_polls = 2;
  };

  struct Actions {
    // Each poll in Emergency: cancel the newest in-flight work; returns how many were cancelled.
    std::function<int()> shed;
    // Called once when Emergency has lasted Options::emergency_shutdown.
    std::function<void()> shutdown;
    // Each poll at Warning or worse: drop what is only a cache (the prefix cache) and give its
    // memory back to the system.
    std::function<void()> trim;
  };

  struct Status {
    Tier tier = Tier::kSafe;
    MemorySnapshot snapshot;  // the latest good reading
    std::string read_error;   // the latest reading's error; empty when it succeeded
    Clock::time_point tier_since{};
    int64_t shed_total = 0;
  };

  Governor(MemorySource& source, Options options, Actions actions = {});
  // Stops the polling thread.
  ~Governor();
  Governor(const Governor&) = delete;
  Governor& operator=(const Governor&) = delete;

  // Polls once now, then every Options::poll on a thread of its own.
  void start();
  // One check: read, classify, act. A failed read keeps the previous tier.
  void poll(Clock::time_point now = Clock::now());

  Status status() const;
  Tier tier() const { return tier_.load(std::memory_order_relaxed); }
  // New work is admitted below Critical.
  bool accepting() const { return tier() < Tier::kCritical; }
  const Options& options() const { return options_; }

 private:
  void run();

  MemorySource& source_;
  const Options options_;
  const Actions actions_;
  std::atomic<Tier> tier_{Tier::kSafe};

  mutable std::mutex mutex_;
  Status status_;
  Tier pending_better_ = Tier::kSafe;  // a better tier waiting for agreement
  int pending_count_ = 0;
  bool shutdown_asked_ = false;
  bool have_reading_ = false;

  std::mutex stop_mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

// "1.23 GB" (10^9) of a byte count, for logs and the x-available-memory-gb header (digits only
// there: format_gb(b, false) gives "1.23").
std::string format_gb(int64_t bytes, bool with_unit = true);

}  // namespace pensieve::memory
