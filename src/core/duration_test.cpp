#include "core/duration.h"

#include <gtest/gtest.h>

namespace pensieve {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ParsesOllamaStyleValues) {
  const std::pair<const char*, int64_t> good[] = {
      {"5m", 300000},    {"0", 0},           {"-1", -1000},    {"300", 300000},
      {"30s", 30000},    {"1h30m", 5400000}, {"250ms", 250},   {" 2.5 ", 2500},
      {"1.5h", 5400000}, {"-5m", -300000},   {"1m30s", 90000}, {"0s", 0},
  };
  for (const auto& [text, ms] : good) {
    auto d = parse_duration(text);
    ASSERT_TRUE(d.has_value()) << text << ": " << d.error().message;
    EXPECT_EQ(d->count(), ms) << text;
  }
}

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* text : {"", "-", "m", "5x", "5 m", "1h 30m", "abc", "5m3", "1e3s", "..s",
                           "1.2.3s", "9999999999999999h"}) {
    auto d = parse_duration(text);
    ASSERT_FALSE(d.has_value()) << text << " gave " << d->count();
    EXPECT_EQ(d.error().message.rfind(std::string("duration '") + text + "' ", 0), 0u)
        << d.error().message;
  }
}

TEST(Duration, FormatsTheShortestExactSpelling) {
  EXPECT_EQ(format_duration(milliseconds(300000)), "5m");
  EXPECT_EQ(format_duration(milliseconds(5400000)), "1h30m");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(-1000)), "-1s");
  for (int64_t ms : {1, 999, 1000, 61000, 3600000, 3661000, 86400000}) {
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms)))->count(), ms) << ms;
  }
}

TEST(Duration, FormatsRfc3339InUtc) {
  EXPECT_EQ(format_rfc3339_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339_utc(1795869296), "2026-11-28T12:34:56Z");
}

}  // namespace
}  // namespace pensieve
