// What `pensieve pull` shows while it downloads: a bar redrawn in place on a terminal (bytes of
// total, rate, time left), or a plain line every few seconds when stderr is not a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "hub/download.h"

namespace pensieve::hub {

// 1536 -> "1.50 KiB"; under 1 KiB in bytes: "512 B".
std::string format_bytes(int64_t bytes);
// Seconds as "m:ss" or "h:mm:ss"; "--:--" for a negative or unbounded time.
std::string format_eta(double seconds);
// One line: "[#######.....]  40%  1.20 GiB / 3.00 GiB  25.0 MiB/s  eta 1:13"; without a total
// "1.20 GiB  25.0 MiB/s". `bar_width` cells for the bar.
std::string format_progress(int64_t done_bytes, std::optional<int64_t> total_bytes,
                            double bytes_per_s, int bar_width);

class ProgressMeter {
 public:
  using Clock = std::chrono::steady_clock;

  // `interactive`: redraw a bar on `out`; otherwise a line every `line_period`.
  ProgressMeter(std::FILE* out, bool interactive,
                std::chrono::milliseconds line_period = std::chrono::seconds(10));

  void update(const DownloadProgress& progress, Clock::time_point now = Clock::now());
  // Draws the last state (a final bar ends its line).
  void finish(Clock::time_point now = Clock::now());

 private:
  void draw(Clock::time_point now);

  std::FILE* out_;
  bool interactive_;
  std::chrono::milliseconds period_;
  bool started_ = false;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  int64_t baseline_bytes_ = 0;  // what was there before this run: not part of the rate
  DownloadProgress last_;
};

}  // namespace pensieve::hub
