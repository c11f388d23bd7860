#include "memory/tiers.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "core/byte_size.h"

namespace pensieve::memory {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool valid_percent(double percent) { return std::isfinite(percent) && percent <= 100; }

// "800000000 bytes" or "10% of 8000000000 bytes = 800000000 bytes", for messages.
std::string describe(const Threshold& t, int64_t total_bytes) {
  if (t.percent >= 0) {
    return fmt::format("{}% of {} bytes = {} bytes", t.percent, total_bytes,
                       t.resolve(total_bytes));
  }
  if (t.at_most_percent >= 0) {
    return fmt::format("{} bytes, at most {}% of {} bytes = {} bytes", t.bytes, t.at_most_percent,
                       total_bytes, t.resolve(total_bytes));
  }
  return fmt::format("{} bytes", t.bytes);
}

Tier worse(Tier a, Tier b) { return std::max(a, b); }

}  // namespace

std::string_view tier_name(Tier tier) {
  switch (tier) {
    case Tier::kSafe:
      return "safe";
    case Tier::kCaution:
      return "caution";
    case Tier::kWarning:
      return "warning";
    case Tier::kCritical:
      return "critical";
    case Tier::kEmergency:
      return "emergency";
  }
  PV_CHECK(false, "tier_name: unknown tier {}", static_cast<int>(tier));
  return "";
}

namespace {

int64_t percent_of(int64_t total_bytes, double percent) {
  if (total_bytes <= 0) return 0;
  // Multiply first: 8e9 * 10 / 100 is exact where 8e9 * 0.1 is not.
  double resolved = std::floor(static_cast<double>(total_bytes) * percent / 100.0);
  return std::clamp(static_cast<int64_t>(std::min(resolved, 9.2e18)), int64_t{0}, total_bytes);
}

}  // namespace

int64_t Threshold::resolve(int64_t total_bytes) const {
  if (percent >= 0) return percent_of(total_bytes, percent);
  if (at_most_percent >= 0 && total_bytes > 0) {
    return std::min(bytes, percent_of(total_bytes, at_most_percent));
  }
  return bytes;
}

Expected<Threshold> parse_threshold(std::string_view raw) {
  std::string_view text = trim(raw);
  if (!text.empty() && text[0] == '-') {
    return make_error(ErrorCode::kInvalidArgument, "tiers: threshold '{}' is negative", raw);
  }
  if (!text.empty() && text.back() == '%') {
    std::string_view number = trim(text.substr(0, text.size() - 1));
    double percent = -1;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
        !std::isfinite(percent) || percent < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tiers: threshold '{}' is not a percent (a number from 0 to 100 then '%')",
                        raw);
    }
    if (percent > 100) {
      return make_error(ErrorCode::kInvalidArgument, "tiers: threshold '{}' is over 100%", raw);
    }
    return Threshold{0, percent};
  }
  auto bytes = parse_byte_size(text);
  if (!bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "tiers: threshold: {}; a percent of total memory such as '10%' also works",
                      bytes.error().message);
  }
  return Threshold{*bytes};
}

Expected<void> validate(const TierThresholds& t, int64_t total_bytes) {
  struct Named {
    std::string_view name;
    const Threshold& threshold;
  };
  const Named named[] = {{"caution", t.caution},
                         {"warning", t.warning},
                         {"critical", t.critical},
                         {"emergency", t.emergency}};
  for (const Named& n : named) {
    if (n.threshold.percent >= 0 ? !valid_percent(n.threshold.percent) : n.threshold.bytes < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tiers: {} threshold ({}) must be a byte count >= 0 or a percent in "
                        "[0, 100]",
                        n.name,
                        n.threshold.percent >= 0 ? fmt::format("{}%", n.threshold.percent)
                                                 : fmt::format("{} bytes", n.threshold.bytes));
    }
  }
  for (size_t i = 0; i + 1 < std::size(named); ++i) {
    const Named& above = named[i];
    const Named& below = named[i + 1];
    if (below.threshold.resolve(total_bytes) > above.threshold.resolve(total_bytes)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tiers: {} threshold ({}) is above {} threshold ({}); they must run "
                        "caution >= warning >= critical >= emergency",
                        below.name, describe(below.threshold, total_bytes), above.name,
                        describe(above.threshold, total_bytes));
    }
  }
  for (double psi : {t.psi_full_warning, t.psi_full_critical}) {
    if (std::isnan(psi) || psi > 100) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tiers: PSI threshold {} must be a percent in [0, 100] (< 0: off)", psi);
    }
  }
  if (t.psi_full_warning >= 0 && t.psi_full_critical >= 0 &&
      t.psi_full_warning > t.psi_full_critical) {
    return make_error(ErrorCode::kInvalidArgument,
                      "tiers: PSI warning threshold ({}%) is above PSI critical threshold ({}%)",
                      t.psi_full_warning, t.psi_full_critical);
  }
  return {};
}

Tier classify(const MemorySnapshot& s, const TierThresholds& t) {
  const int64_t total = s.effective_total_bytes();
  const int64_t usable = s.usable_bytes();
  Tier tier = Tier::kSafe;
  // Each check only raises the tier, so unvalidated (misordered) thresholds still fail safe.
  if (usable < t.caution.resolve(total)) tier = worse(tier, Tier::kCaution);
  if (usable < t.warning.resolve(total)) tier = worse(tier, Tier::kWarning);
  if (usable < t.critical.resolve(total)) tier = worse(tier, Tier::kCritical);
  if (usable < t.emergency.resolve(total)) tier = worse(tier, Tier::kEmergency);
  if (s.psi_full_avg10) {
    const double psi = *s.psi_full_avg10;
    if (t.psi_full_warning >= 0 && psi >= t.psi_full_warning) tier = worse(tier, Tier::kWarning);
    if (t.psi_full_critical >= 0 && psi >= t.psi_full_critical) {
      tier = worse(tier, Tier::kCritical);
    }
  }
  return tier;
}

}  // namespace pensieve::memory
