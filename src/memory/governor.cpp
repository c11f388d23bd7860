#include "memory/governor.h"

#include <fmt/format.h>

#include "core/log.h"

namespace pensieve::memory {
namespace {

std::string describe(const MemorySnapshot& s) {
  std::string text = fmt::format("{} usable (MemAvailable {}", format_gb(s.usable_bytes()),
                                 format_gb(s.available_bytes));
  if (s.cgroup_limit_bytes) {
    text += fmt::format(", cgroup {} of {} used", format_gb(s.cgroup_usage_bytes.value_or(0)),
                        format_gb(*s.cgroup_limit_bytes));
  }
  if (s.psi_full_avg10) text += fmt::format(", PSI full avg10 {:.1f}%", *s.psi_full_avg10);
  return text + ")";
}

}  // namespace

std::string format_gb(int64_t bytes, bool with_unit) {
  std::string text = fmt::format("{:.2f}", static_cast<double>(bytes) / 1e9);
  return with_unit ? text + " GB" : text;
}

Governor::Governor(MemorySource& source, Options options, Actions actions)
    : source_(source), options_(std::move(options)), actions_(std::move(actions)) {}

Governor::~Governor() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Governor::start() {
  poll();
  thread_ = std::thread([this] { run(); });
}

void Governor::run() {
  std::unique_lock lock(stop_mutex_);
  while (!stop_.wait_for(lock, options_.poll, [this] { return stopping_; })) {
    lock.unlock();
    poll();
    lock.lock();
  }
}

void Governor::poll(Clock::time_point now) {
  Expected<MemorySnapshot> reading = source_.read();
  bool shed = false;
  bool shutdown = false;
  bool trim = false;
  {
    std::lock_guard lock(mutex_);
    if (!reading) {
      if (status_.read_error.empty()) {
        log::warn("memory: cannot read memory use: {}; keeping tier {}", reading.error().message,
                  tier_name(status_.tier));
      }
      status_.read_error = reading.error().message;
      return;
    }
    status_.read_error.clear();
    status_.snapshot = *reading;
    const Tier seen = classify(*reading, options_.thresholds);
    const Tier current = status_.tier;
    Tier next = current;
    if (seen > current || !have_reading_) {
      next = seen;  // worse: at once
      pending_count_ = 0;
    } else if (seen < current) {
      if (pending_count_ > 0 && seen == pending_better_) {
        ++pending_count_;
      } else {
        pending_better_ = seen;
        pending_count_ = 1;
      }
      if (pending_count_ >= options_.recover_after_polls) {
        next = seen;
        pending_count_ = 0;
      }
    } else {
      pending_count_ = 0;
    }
    have_reading_ = true;
    if (next != current || status_.tier_since == Clock::time_point{}) {
      if (next != current) {
        const std::string what = fmt::format("memory: tier {} -> {}: {}", tier_name(current),
                                             tier_name(next), describe(*reading));
        if (next > current) {
          log::warn("{}{}", what,
                    next >= Tier::kCritical ? "; new requests are refused with 529" : "");
        } else {
          log::info("{}", what);
        }
      }
      status_.tier = next;
      status_.tier_since = now;
      tier_.store(next, std::memory_order_relaxed);
      if (next != Tier::kEmergency) shutdown_asked_ = false;
    }
    trim = next >= Tier::kWarning && static_cast<bool>(actions_.trim);
    if (next == Tier::kEmergency) {
      shed = static_cast<bool>(actions_.shed);
      const auto lasted = now - status_.tier_since;
      if (options_.emergency_shutdown.count() > 0 && lasted >= options_.emergency_shutdown &&
          !shutdown_asked_) {
        shutdown_asked_ = true;
        shutdown = static_cast<bool>(actions_.shutdown);
      }
    }
  }
  // The actions run without the lock: they may call status().
  if (trim) actions_.trim();
  if (shed) {
    const int n = actions_.shed();
    if (n > 0) {
      log::warn("memory: emergency: cancelled the {} newest request(s) to free memory", n);
      std::lock_guard lock(mutex_);
      status_.shed_total += n;
    }
  }
  if (shutdown) {
    log::error(
        "memory: emergency for {} s: shutting down gracefully",
        std::chrono::duration_cast<std::chrono::seconds>(options_.emergency_shutdown).count());
    actions_.shutdown();
  }
}

Governor::Status Governor::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

}  // namespace pensieve::memory
