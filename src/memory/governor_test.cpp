#include "memory/governor.h"

#include <gtest/gtest.h>

namespace pensieve::memory {
namespace {

using std::chrono::milliseconds;
using Clock = Governor::Clock;

MemorySnapshot usable(int64_t bytes) {
  MemorySnapshot s;
  s.total_bytes = 64000000000;
  s.available_bytes = bytes;
  return s;
}

Governor::Options options() {
  Governor::Options o;
  o.thresholds.caution = Threshold{3000000000};
  o.thresholds.warning = Threshold{2000000000};
  o.thresholds.critical = Threshold{1000000000};
  o.thresholds.emergency = Threshold{500000000};
  o.emergency_shutdown = milliseconds(10000);
  return o;
}

// A source whose next read fails.
class FailingSource final : public MemorySource {
 public:
  Expected<MemorySnapshot> read() override {
    return make_error(ErrorCode::kIo, "memory: cannot open /proc/meminfo");
  }
};

TEST(Governor, WorseTiersAreTakenAtOnceBetterOnesAfterAgreement) {
  FixedMemorySource source(usable(8000000000));
  Governor governor(source, options());
  const Clock::time_point t0{};
  governor.poll(t0);
  EXPECT_EQ(governor.tier(), Tier::kSafe);
  EXPECT_TRUE(governor.accepting());
  source.set(usable(800000000));
  governor.poll(t0 + milliseconds(500));
  EXPECT_EQ(governor.tier(), Tier::kCritical);
  EXPECT_FALSE(governor.accepting());
  EXPECT_EQ(governor.status().snapshot.available_bytes, 800000000);
  source.set(usable(8000000000));
  governor.poll(t0 + milliseconds(1000));
  EXPECT_EQ(governor.tier(), Tier::kCritical) << "one good reading is not enough";
  governor.poll(t0 + milliseconds(1500));
  EXPECT_EQ(governor.tier(), Tier::kSafe);
  EXPECT_TRUE(governor.accepting());
  EXPECT_EQ(governor.status().tier_since, t0 + milliseconds(1500));
}

TEST(Governor, HoveringAtAThresholdDoesNotFlipAdmission) {
  FixedMemorySource source(usable(999999999));
  Governor governor(source, options());
  Clock::time_point t{};
  governor.poll(t);
  ASSERT_EQ(governor.tier(), Tier::kCritical);
  for (int i = 0; i < 10; ++i) {  // alternating readings never agree twice in a row
    source.set(usable(i % 2 == 0 ? 1000000001 : 999999999));
    governor.poll(t += milliseconds(500));
    EXPECT_EQ(governor.tier(), Tier::kCritical) << "poll " << i;
  }
}

TEST(Governor, EmergencyShedsEachPollThenAsksForShutdownOnce) {
  FixedMemorySource source(usable(8000000000));
  int shed_calls = 0, shutdowns = 0;
  Governor governor(source, options(),
                    {.shed = [&] { return ++shed_calls <= 2 ? 1 : 0; },
                     .shutdown = [&] { ++shutdowns; },
                     .trim = {}});
  Clock::time_point t{};
  governor.poll(t);
  EXPECT_EQ(shed_calls, 0);
  source.set(usable(100000000));
  governor.poll(t += milliseconds(500));
  EXPECT_EQ(governor.tier(), Tier::kEmergency);
  EXPECT_EQ(shed_calls, 1);
  for (int i = 0; i < 25; ++i) governor.poll(t += milliseconds(500));  // 12.5 s in Emergency
  EXPECT_EQ(shed_calls, 26);
  EXPECT_EQ(governor.status().shed_total, 2);
  EXPECT_EQ(shutdowns, 1);
}

TEST(Governor, ShortEmergenciesDoNotShutDown) {
  FixedMemorySource source(usable(100000000));
  int shutdowns = 0;
  Governor governor(source, options(), {.shed = {}, .shutdown = [&] { ++shutdowns; }, .trim = {}});
  Clock::time_point t{};
  for (int round = 0; round < 3; ++round) {
    source.set(usable(100000000));
    for (int i = 0; i < 10; ++i) governor.poll(t += milliseconds(500));  // 5 s
    source.set(usable(8000000000));
    for (int i = 0; i < 3; ++i) governor.poll(t += milliseconds(500));
    EXPECT_EQ(governor.tier(), Tier::kSafe);
  }
  EXPECT_EQ(shutdowns, 0);
}

TEST(Governor, ShutdownCanBeSwitchedOff) {
  FixedMemorySource source(usable(100000000));
  Governor::Options o = options();
  o.emergency_shutdown = milliseconds(0);
  int shutdowns = 0;
  Governor governor(source, o, {.shed = {}, .shutdown = [&] { ++shutdowns; }, .trim = {}});
  Clock::time_point t{};
  for (int i = 0; i < 100; ++i) governor.poll(t += milliseconds(1000));
  EXPECT_EQ(governor.tier(), Tier::kEmergency);
  EXPECT_EQ(shutdowns, 0);
}

TEST(Governor, WarningAndWorseTrimCachesEachPoll) {
  FixedMemorySource source(usable(2500000000));  // Caution
  int trims = 0;
  Governor governor(source, options(), {.shed = {}, .shutdown = {}, .trim = [&] { ++trims; }});
  Clock::time_point t{};
  governor.poll(t += milliseconds(500));
  EXPECT_EQ(governor.tier(), Tier::kCaution);
  EXPECT_EQ(trims, 0);
  source.set(usable(1500000000));  // Warning
  governor.poll(t += milliseconds(500));
  governor.poll(t += milliseconds(500));
  EXPECT_EQ(governor.tier(), Tier::kWarning);
  EXPECT_EQ(trims, 2);
  source.set(usable(800000000));  // Critical
  governor.poll(t += milliseconds(500));
  EXPECT_EQ(trims, 3);
  source.set(usable(8000000000));  // better: taken after two agreeing readings
  governor.poll(t += milliseconds(500));
  EXPECT_EQ(trims, 4) << "still Critical until the reading is confirmed";
  governor.poll(t += milliseconds(500));
  EXPECT_EQ(governor.tier(), Tier::kSafe);
  EXPECT_EQ(trims, 4);
}

TEST(Governor, AFailedReadKeepsTheTierAndSaysWhy) {
  FailingSource source;
  Governor governor(source, options());
  governor.poll();
  EXPECT_EQ(governor.tier(), Tier::kSafe);
  EXPECT_EQ(governor.status().read_error, "memory: cannot open /proc/meminfo");
}

TEST(Governor, PollsOnItsOwnThread) {
  FixedMemorySource source(usable(8000000000));
  Governor::Options o = options();
  o.poll = milliseconds(10);
  o.recover_after_polls = 1;
  Governor governor(source, o);
  governor.start();
  EXPECT_EQ(governor.tier(), Tier::kSafe);
  source.set(usable(600000000));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (governor.tier() != Tier::kCritical && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(governor.tier(), Tier::kCritical);
}

TEST(Governor, RealMachineReadingClassifies) {
  LinuxMemorySource source;
  Governor governor(source, Governor::Options{});
  governor.poll();
  const Governor::Status status = governor.status();
  EXPECT_TRUE(status.read_error.empty()) << status.read_error;
  EXPECT_GT(status.snapshot.total_bytes, 0);
}

TEST(Governor, FormatsGigabytes) {
  EXPECT_EQ(format_gb(1234567890), "1.23 GB");
  EXPECT_EQ(format_gb(500000000, false), "0.50");
  EXPECT_EQ(format_gb(0, false), "0.00");
}

}  // namespace
}  // namespace pensieve::memory
