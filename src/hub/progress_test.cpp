#include "hub/progress.h"

#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

namespace pensieve::hub {
namespace {

TEST(Progress, FormatsBytesAndTimes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(int64_t{3} << 30), "3.00 GiB");
  EXPECT_EQ(format_eta(0), "0:00");
  EXPECT_EQ(format_eta(73), "1:13");
  EXPECT_EQ(format_eta(3725), "1:02:05");
  EXPECT_EQ(format_eta(-1), "--:--");
}

TEST(Progress, FormatsALine) {
  EXPECT_EQ(format_progress(512, 1024, 256, 10),
            "[#####.....]  50%  512 B / 1.00 KiB  256 B/s  eta 0:02");
  EXPECT_EQ(format_progress(1024, 1024, 0, 4),
            "[####] 100%  1.00 KiB / 1.00 KiB  0 B/s  eta --:--");
  EXPECT_EQ(format_progress(2048, std::nullopt, 1024, 10), "2.00 KiB  1.00 KiB/s");
}

// What the meter wrote to a memory stream.
struct Captured {
  char* data = nullptr;
  size_t size = 0;
  std::FILE* file = open_memstream(&data, &size);
  ~Captured() {
    if (file) std::fclose(file);
    std::free(data);
  }
  std::string text() {
    std::fflush(file);
    return std::string(data, size);
  }
};

TEST(Progress, PlainLinesArePeriodic) {
  Captured out;
  ProgressMeter meter(out.file, false, std::chrono::seconds(10));
  const auto t0 = ProgressMeter::Clock::time_point{};
  // Resumed from 1000 bytes: the rate counts only this run's bytes.
  meter.update({.done_bytes = 1000, .total_bytes = 4096, .resumed_from_bytes = 1000}, t0);
  meter.update({.done_bytes = 2048, .total_bytes = 4096, .resumed_from_bytes = 1000},
               t0 + std::chrono::seconds(5));
  EXPECT_EQ(out.text(), "");
  meter.update({.done_bytes = 3048, .total_bytes = 4096, .resumed_from_bytes = 1000},
               t0 + std::chrono::seconds(10));
  EXPECT_EQ(
      out.text(),
      "pull: [######################........]  74%  2.98 KiB / 4.00 KiB  204 B/s  eta 0:05\n");
}

TEST(Progress, TerminalBarRedrawsInPlace) {
  Captured out;
  ProgressMeter meter(out.file, true);
  const auto t0 = ProgressMeter::Clock::time_point{};
  meter.update({.done_bytes = 0, .total_bytes = 100, .resumed_from_bytes = 0}, t0);
  meter.update({.done_bytes = 100, .total_bytes = 100, .resumed_from_bytes = 0},
               t0 + std::chrono::seconds(1));
  meter.finish(t0 + std::chrono::seconds(1));
  const std::string text = out.text();
  EXPECT_EQ(text.front(), '\r');
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("100%  100 B / 100 B  100 B/s"), std::string::npos) << text;
}

}  // namespace
}  // namespace pensieve::hub
