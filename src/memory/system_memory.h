// What the machine can give pensieve: system and cgroup memory, memory pressure (PSI) and one
// process's footprint, read from Linux files behind an injectable MemorySource so that unit tests
// and the governor can use fakes.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "core/result.h"

namespace pensieve::memory {

struct MemorySnapshot {
  int64_t total_bytes = 0;      // MemTotal
  int64_t available_bytes = 0;  // MemAvailable (never counts swap)
  int64_t swap_total_bytes = 0, swap_free_bytes = 0;
  // v2 memory.max / v1 memory.limit_in_bytes of the most constraining level of the process's
  // cgroup path; nullopt when unlimited ("max", or v1's sentinel >= 2^62) or no cgroup.
  std::optional<int64_t> cgroup_limit_bytes;
  // v2 memory.current / v1 memory.usage_in_bytes, of the same level as the limit.
  std::optional<int64_t> cgroup_usage_bytes;
  // v2 memory.high when not "max" (the lowest along the path); throttling starts there.
  std::optional<int64_t> cgroup_high_bytes;
  // /proc/pressure/memory avg10, percent of time stalled; nullopt where absent.
  std::optional<double> psi_some_avg10, psi_full_avg10;

  // What pensieve may count on: min(available_bytes, cgroup_limit - cgroup_usage), clamped at 0.
  int64_t usable_bytes() const;
  // The total the tiers' percent thresholds refer to: min(total_bytes, cgroup limit).
  int64_t effective_total_bytes() const;
};

class MemorySource {
 public:
  virtual ~MemorySource() = default;
  virtual Expected<MemorySnapshot> read() = 0;
};

// Reads <proc_root>/meminfo, the process's memory cgroup (from <proc_root>/self/cgroup; a v1
// "memory" controller line wins over the v2 "0::" line) and its files under <cgroup_root>
// (v2: <cgroup_root>/<path>/memory.max; v1: <cgroup_root>/memory/<path>/memory.limit_in_bytes),
// walking from <path> up to the hierarchy's root and keeping the level with the least headroom,
// and <proc_root>/pressure/memory. Missing cgroup or PSI files are not errors; a missing meminfo,
// one without MemTotal/MemAvailable, or a malformed value in any file is. Stateless: read() may
// be called from any thread.
class LinuxMemorySource final : public MemorySource {
 public:
  explicit LinuxMemorySource(std::string proc_root = "/proc",
                             std::string cgroup_root = "/sys/fs/cgroup");
  Expected<MemorySnapshot> read() override;

 private:
  std::string proc_root_;
  std::string cgroup_root_;
};

// A process's memory from <proc_root>/<pid>/status (kB values -> bytes). Anonymous memory
// (rss_anon_bytes + swap_bytes) is what the "flat over time" promise watches.
struct ProcessMemory {
  int64_t rss_bytes = 0;       // VmRSS
  int64_t rss_anon_bytes = 0;  // RssAnon
  int64_t rss_file_bytes = 0;  // RssFile
  int64_t swap_bytes = 0;      // VmSwap
};
// pid 0 reads "self". kNotFound when the process is gone; kInvalidFormat when a field is missing
// (kernel threads and zombies have no Vm* lines).
Expected<ProcessMemory> read_process_memory(int pid, const std::string& proc_root = "/proc");

// A fixed snapshot, for tests and for code that injects one. set() and read() are thread-safe.
class FixedMemorySource final : public MemorySource {
 public:
  explicit FixedMemorySource(MemorySnapshot snapshot);
  void set(MemorySnapshot snapshot);
  Expected<MemorySnapshot> read() override;

 private:
  std::mutex mutex_;
  MemorySnapshot snapshot_;
};

}  // namespace pensieve::memory
