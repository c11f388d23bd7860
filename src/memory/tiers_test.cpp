#include "memory/tiers.h"

#include <ostream>

#include <gtest/gtest.h>

namespace pensieve::memory {

// Failure messages say "warning", not "4-byte object <02-00 00-00>".
void PrintTo(Tier tier, std::ostream* out) { *out << tier_name(tier); }

namespace {

MemorySnapshot with_usable(int64_t usable_bytes) {
  MemorySnapshot s;
  s.total_bytes = 64000000000;
  s.available_bytes = usable_bytes;
  return s;
}

Threshold parsed(std::string_view text) {
  auto t = parse_threshold(text);
  EXPECT_TRUE(t.has_value()) << text << ": " << (t ? "" : t.error().message);
  return t ? *t : Threshold{};
}

TEST(Tiers, Names) {
  EXPECT_EQ(tier_name(Tier::kSafe), "safe");
  EXPECT_EQ(tier_name(Tier::kCaution), "caution");
  EXPECT_EQ(tier_name(Tier::kWarning), "warning");
  EXPECT_EQ(tier_name(Tier::kCritical), "critical");
  EXPECT_EQ(tier_name(Tier::kEmergency), "emergency");
}

// A tier starts strictly below its threshold: exactly at it is still the less severe tier.
TEST(Tiers, EveryDefaultBoundary) {
  const TierThresholds t;
  struct Case {
    int64_t usable_bytes;
    Tier tier;
  };
  for (const Case& c : {Case{64000000000, Tier::kSafe}, Case{3000000000, Tier::kSafe},
                        Case{2999999999, Tier::kCaution}, Case{2000000000, Tier::kCaution},
                        Case{1999999999, Tier::kWarning}, Case{1000000000, Tier::kWarning},
                        Case{999999999, Tier::kCritical}, Case{500000000, Tier::kCritical},
                        Case{499999999, Tier::kEmergency}, Case{0, Tier::kEmergency}}) {
    EXPECT_EQ(classify(with_usable(c.usable_bytes), t), c.tier)
        << c.usable_bytes << " bytes usable gave "
        << tier_name(classify(with_usable(c.usable_bytes), t));
  }
}

// On a small machine (or in a small cgroup) the default thresholds shrink with the total, so an
// 8 GB laptop is not in Caution with 2.9 GB free and a 600 MB cgroup is not always in Emergency.
TEST(Tiers, DefaultsScaleDownOnSmallTotals) {
  const TierThresholds t;
  EXPECT_EQ(t.caution.resolve(8000000000), 2000000000);
  EXPECT_EQ(t.warning.resolve(8000000000), 1200000000);
  EXPECT_EQ(t.critical.resolve(8000000000), 640000000);
  EXPECT_EQ(t.emergency.resolve(8000000000), 320000000);
  EXPECT_EQ(t.critical.resolve(24000000000), 1000000000);  // the design's value from 12.5 GB
  MemorySnapshot s = with_usable(60000000000);
  s.cgroup_limit_bytes = 600000000;
  s.cgroup_usage_bytes = 400000000;  // 200 MB left of 600 MB: 33%
  EXPECT_EQ(classify(s, t), Tier::kSafe);
  s.cgroup_usage_bytes = 560000000;  // 40 MB left: under 8% (48 MB), over 4% (24 MB)
  EXPECT_EQ(classify(s, t), Tier::kCritical);
  EXPECT_TRUE(validate(t, 600000000).has_value());
}

TEST(Tiers, ZeroThresholdSwitchesItsTierOff) {
  TierThresholds t;
  t.emergency = Threshold{0};
  EXPECT_EQ(classify(with_usable(0), t), Tier::kCritical);
}

TEST(Tiers, CgroupHeadroomDecidesTheTier) {
  MemorySnapshot s = with_usable(60000000000);  // the machine is fine...
  s.cgroup_limit_bytes = 4000000000;            // ...but the cgroup has 0.8 GB left
  s.cgroup_usage_bytes = 3200000000;
  TierThresholds bytes_only;  // the design's values without the small-total cap
  bytes_only.caution = Threshold{3000000000};
  bytes_only.warning = Threshold{2000000000};
  bytes_only.critical = Threshold{1000000000};
  bytes_only.emergency = Threshold{500000000};
  EXPECT_EQ(classify(s, bytes_only), Tier::kCritical);
  s.cgroup_usage_bytes = 4100000000;  // over the limit: usable clamps to 0
  EXPECT_EQ(classify(s, bytes_only), Tier::kEmergency);
}

TEST(Tiers, PercentThresholdsResolveAgainstTheCgroupLimitedTotal) {
  TierThresholds t;
  t.caution = parsed("50%");
  t.warning = parsed("25%");
  t.critical = parsed("10%");
  t.emergency = parsed("5%");
  MemorySnapshot s = with_usable(60000000000);  // 64 GB machine
  s.cgroup_limit_bytes = 8000000000;            // 8 GB cgroup: percents are of 8 GB
  ASSERT_EQ(s.effective_total_bytes(), 8000000000);
  struct Case {
    int64_t headroom_bytes;
    Tier tier;
  };
  for (const Case& c : {Case{4000000000, Tier::kSafe}, Case{3999999999, Tier::kCaution},
                        Case{2000000000, Tier::kCaution}, Case{1999999999, Tier::kWarning},
                        Case{800000000, Tier::kWarning}, Case{799999999, Tier::kCritical},
                        Case{400000000, Tier::kCritical}, Case{399999999, Tier::kEmergency}}) {
    s.cgroup_usage_bytes = *s.cgroup_limit_bytes - c.headroom_bytes;
    EXPECT_EQ(classify(s, t), c.tier) << c.headroom_bytes;
  }
  // The same headroom against the whole 64 GB machine would already be Caution at 31 GB.
  EXPECT_EQ(t.caution.resolve(64000000000), 32000000000);
  EXPECT_EQ(t.caution.resolve(s.effective_total_bytes()), 4000000000);
}

TEST(Tiers, PsiEscalatesButNeverRelaxes) {
  const TierThresholds t;  // warning at 10%, critical at 40%
  MemorySnapshot s = with_usable(60000000000);
  EXPECT_EQ(classify(s, t), Tier::kSafe);  // no PSI file: no effect
  s.psi_full_avg10 = 9.99;
  EXPECT_EQ(classify(s, t), Tier::kSafe);
  s.psi_full_avg10 = 10.0;
  EXPECT_EQ(classify(s, t), Tier::kWarning);
  s.psi_full_avg10 = 39.99;
  EXPECT_EQ(classify(s, t), Tier::kWarning);
  s.psi_full_avg10 = 40.0;
  EXPECT_EQ(classify(s, t), Tier::kCritical);
  s.psi_full_avg10 = 100.0;
  EXPECT_EQ(classify(s, t), Tier::kCritical);  // PSI alone never reaches Emergency
  s.psi_some_avg10 = 100.0;
  s.psi_full_avg10 = 0.0;
  EXPECT_EQ(classify(s, t), Tier::kSafe);  // only "full" counts
  MemorySnapshot low = with_usable(100);
  low.psi_full_avg10 = 50.0;
  EXPECT_EQ(classify(low, t), Tier::kEmergency);
}

TEST(Tiers, NegativePsiThresholdsAreOff) {
  TierThresholds t;
  t.psi_full_warning = -1;
  t.psi_full_critical = -1;
  MemorySnapshot s = with_usable(60000000000);
  s.psi_full_avg10 = 99.0;
  EXPECT_EQ(classify(s, t), Tier::kSafe);
}

TEST(Tiers, MisorderedThresholdsStillFailSafe) {
  TierThresholds t;
  t.emergency = Threshold{4000000000};  // invalid (validate rejects it), yet classify is safe
  EXPECT_EQ(classify(with_usable(3500000000), t), Tier::kEmergency);
}

TEST(Tiers, ParsesThresholds) {
  EXPECT_EQ(parsed("3GiB").bytes, int64_t{3} << 30);
  EXPECT_LT(parsed("3GiB").percent, 0);
  EXPECT_EQ(parsed("3GB").bytes, 3000000000);
  EXPECT_EQ(parsed("3gb").bytes, 3000000000);
  EXPECT_EQ(parsed("512MiB").bytes, int64_t{512} << 20);
  EXPECT_EQ(parsed("1073741824").bytes, 1073741824);
  EXPECT_EQ(parsed(" 0 ").bytes, 0);
  EXPECT_EQ(parsed("10%").percent, 10.0);
  EXPECT_EQ(parsed("2.5%").percent, 2.5);
  EXPECT_EQ(parsed("0%").percent, 0.0);
  EXPECT_EQ(parsed("100%").percent, 100.0);
  EXPECT_EQ(parsed("10%").resolve(8000000000), 800000000);
  EXPECT_EQ(parsed("2.5%").resolve(8000000000), 200000000);
  EXPECT_EQ(parsed("100%").resolve(8000000000), 8000000000);
  EXPECT_EQ(parsed("3GB").resolve(8000000000), 3000000000);  // bytes ignore the total
}

TEST(Tiers, ParseThresholdErrors) {
  struct Case {
    std::string_view text, needle;
  };
  for (const Case& c : {Case{"", "is not a byte size"}, Case{"plenty", "is not a byte size"},
                        Case{"3XB", "is not a byte size"}, Case{"1.5GB", "is not a byte size"},
                        Case{"-3GB", "is negative"}, Case{"-5%", "is negative"},
                        Case{"101%", "over 100%"}, Case{"100.5%", "over 100%"},
                        Case{"%", "is not a percent"}, Case{"ten%", "is not a percent"},
                        Case{"nan%", "is not a percent"}, Case{"inf%", "is not a percent"},
                        Case{"5%%", "is not a percent"}, Case{"99999999999TiB", "too large"}}) {
    auto t = parse_threshold(c.text);
    ASSERT_FALSE(t.has_value()) << "'" << c.text << "' parsed";
    EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(t.error().message.rfind("tiers: threshold", 0), 0u) << t.error().message;
    EXPECT_NE(t.error().message.find(c.needle), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find(std::string(c.text)), std::string::npos) << t.error().message;
  }
}

TEST(Tiers, ValidateAcceptsDefaultsAndEqualThresholds) {
  EXPECT_TRUE(validate(TierThresholds{}, 16000000000).has_value());
  TierThresholds t;
  t.warning = t.caution;  // collapses Caution; allowed
  EXPECT_TRUE(validate(t, 16000000000).has_value());
}

void expect_invalid(const TierThresholds& t, int64_t total_bytes, std::string_view first,
                    std::string_view second) {
  auto ok = validate(t, total_bytes);
  ASSERT_FALSE(ok.has_value());
  EXPECT_EQ(ok.error().code, ErrorCode::kInvalidArgument);
  const std::string& message = ok.error().message;
  EXPECT_EQ(message.rfind("tiers: ", 0), 0u) << message;
  EXPECT_NE(message.find(first), std::string::npos) << message;
  EXPECT_NE(message.find(second), std::string::npos) << message;
}

TEST(Tiers, ValidateNamesTheMisorderedPair) {
  TierThresholds t;
  t.warning = Threshold{4000000000};
  expect_invalid(t, 16000000000, "warning threshold (4000000000 bytes)",
                 "caution threshold (3000000000 bytes, at most 25%");
  t = TierThresholds{};
  t.emergency = Threshold{1500000000};
  expect_invalid(t, 16000000000, "emergency threshold", "critical threshold");
  t = TierThresholds{};
  t.critical = Threshold{2500000000};
  expect_invalid(t, 16000000000, "critical threshold", "warning threshold");
}

TEST(Tiers, ValidateResolvesPercentsAgainstTheTotal) {
  TierThresholds t;
  t.caution = Threshold{0, 10.0};
  t.warning = Threshold{1000000000};
  t.critical = Threshold{500000000};
  t.emergency = Threshold{250000000};
  EXPECT_TRUE(validate(t, 16000000000).has_value());  // 1.6 GB >= 1 GB
  expect_invalid(t, 8000000000, "warning threshold (1000000000 bytes) is above caution",
                 "10% of 8000000000 bytes = 800000000 bytes");
}

TEST(Tiers, ValidateRejectsOutOfRangeValues) {
  TierThresholds t;
  t.caution = Threshold{0, 150.0};
  expect_invalid(t, 16000000000, "caution threshold (150%)", "[0, 100]");
  t = TierThresholds{};
  t.emergency = Threshold{-1};
  expect_invalid(t, 16000000000, "emergency threshold (-1 bytes)", ">= 0");
  t = TierThresholds{};
  t.psi_full_warning = 50;
  expect_invalid(t, 16000000000, "PSI warning threshold (50%)", "PSI critical threshold (40%)");
  t = TierThresholds{};
  t.psi_full_critical = 400;
  expect_invalid(t, 16000000000, "PSI threshold 400", "[0, 100]");
  t = TierThresholds{};
  t.psi_full_warning = 50;
  t.psi_full_critical = -1;  // critical off: any warning level is fine
  EXPECT_TRUE(validate(t, 16000000000).has_value());
}

}  // namespace
}  // namespace pensieve::memory
