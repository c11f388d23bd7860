// The machine-wide list of running pensieve servers: one small JSON file per server in a per-user
// runtime directory, so that each server counts the others' budgets and `pensieve memory` can
// show them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace pensieve::memory {

struct InstanceEntry {
  int pid = 0;
  int64_t start_ticks = 0;  // field 22 of /proc/PID/stat: guards against pid reuse
  std::string host;
  int port = 0;
  std::string model;
  int64_t budget_bytes = 0;
  std::string started_at;  // RFC 3339, UTC
};

// $PENSIEVE_RUNTIME_DIR if set, else $XDG_RUNTIME_DIR/pensieve if XDG_RUNTIME_DIR is set, else
// /tmp/pensieve-<uid>.
std::string default_runtime_dir();

// The registry in one directory. Files are <dir>/<pid>.json holding an InstanceEntry as a JSON
// object with the same field names; a file whose "pid" differs from its name is malformed.
class InstanceRegistry {
 public:
  explicit InstanceRegistry(std::string dir);
  ~InstanceRegistry();  // unregister()s
  InstanceRegistry(const InstanceRegistry&) = delete;
  InstanceRegistry& operator=(const InstanceRegistry&) = delete;

  const std::string& dir() const { return dir_; }

  // Writes <dir>/<pid>.json (mode 0600, through a temporary file and rename) for this process:
  // entry.pid and entry.start_ticks are set from this process, and entry.started_at to now when
  // empty. Creates the directory (mode 0700, its parent must exist); an existing one must be a
  // real directory owned by this user and not writable by others. kIo / kInvalidArgument.
  Expected<void> register_self(InstanceEntry entry);

  // Removes this process's file if register_self wrote it. Safe to call more than once.
  void unregister();

  // Every live entry, this process's included (callers filter). Malformed files are skipped with
  // a warning; entries whose process is gone or whose start_ticks differ (the pid was reused)
  // are stale: their files are removed. A missing directory, or one that fails the ownership
  // checks (with a warning), lists nothing.
  std::vector<InstanceEntry> list();

 private:
  std::string dir_;
  std::string registered_path_;  // empty when not registered
};

// Field 22 (starttime, clock ticks since boot) of <proc_root>/<pid>/stat. kNotFound when the
// process does not exist, kInvalidFormat when the file is malformed, kInvalidArgument for pid <= 0.
Expected<int64_t> process_start_ticks(int pid, const std::string& proc_root = "/proc");

// What the given servers may still grow into: the sum of max(0, budget - (RssAnon + RssFile +
// VmSwap)), read with read_process_memory; their current use is already out of MemAvailable.
// Entries whose status cannot be read are skipped.
int64_t outstanding_bytes(const std::vector<InstanceEntry>& others,
                          const std::string& proc_root = "/proc");

}  // namespace pensieve::memory
