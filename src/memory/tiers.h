// Memory tiers: how close the machine is to running out, from usable memory and PSI, with
// operator-configurable thresholds. The governor maps each tier to an action (see MEMORY.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/result.h"
#include "memory/system_memory.h"

namespace pensieve::memory {

// From least to most severe; the order is relied on (a later tier is worse).
enum class Tier { kSafe, kCaution, kWarning, kCritical, kEmergency };

// "safe", "caution", "warning", "critical", "emergency".
std::string_view tier_name(Tier tier);

// A threshold on usable memory: absolute bytes, or a percent of effective_total_bytes().
struct Threshold {
  int64_t bytes = 0;
  double percent = -1;  // >= 0: percent mode, bytes is ignored
  // >= 0 (bytes mode only): at most this percent of the total, so that a default made for a
  // large machine still means something on a small one or in a small cgroup.
  double at_most_percent = -1;
  // Bytes this threshold stands for on a machine (or cgroup) of total_bytes; rounds down.
  int64_t resolve(int64_t total_bytes) const;
};

// Parses "3GiB", "3GB", "512MiB", "1073741824" (see core/byte_size.h) or "10%", "2.5%".
// kInvalidArgument for garbage, negatives and percents over 100.
Expected<Threshold> parse_threshold(std::string_view text);

// A tier starts when usable memory drops strictly below its threshold: usable == threshold stays
// in the less severe tier, so a threshold of 0 switches its tier off.
// The defaults are the design's 3 / 2 / 1 / 0.5 GB, each capped at 25 / 15 / 8 / 4 % of the
// total: the same on machines of 12 GB and more, proportionally lower on smaller ones.
struct TierThresholds {
  Threshold caution{3000000000, -1, 25}, warning{2000000000, -1, 15}, critical{1000000000, -1, 8},
      emergency{500000000, -1, 4};
  // PSI: when full avg10 (percent of time all tasks stalled on memory) reaches (>=) these, the
  // tier is at least Warning / Critical. < 0: off.
  double psi_full_warning = 10.0, psi_full_critical = 40.0;
};

// Checks caution >= warning >= critical >= emergency once resolved against total_bytes, percents
// within [0, 100], and psi_full_warning <= psi_full_critical when both are on. The message names
// the offending pair: "tiers: warning threshold (...) is above caution threshold (...)".
Expected<void> validate(const TierThresholds& thresholds, int64_t total_bytes);

// The tier for a snapshot: the worse of the usable-memory tier (against
// s.effective_total_bytes()) and the PSI tier.
Tier classify(const MemorySnapshot& s, const TierThresholds& thresholds);

}  // namespace pensieve::memory
