#include "hub/progress.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace pensieve::hub {

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 360000) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_progress(int64_t done_bytes, std::optional<int64_t> total_bytes,
                            double bytes_per_s, int bar_width) {
  const std::string rate = format_bytes(static_cast<int64_t>(bytes_per_s)) + "/s";
  if (!total_bytes || *total_bytes <= 0) return format_bytes(done_bytes) + "  " + rate;
  const double fraction = std::clamp(static_cast<double>(done_bytes) / *total_bytes, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * bar_width);
  std::string bar = "[";
  bar.append(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(bar_width - filled), '.');
  bar += ']';
  const double eta = bytes_per_s > 0 ? (*total_bytes - done_bytes) / bytes_per_s : -1;
  return fmt::format("{} {:3}%  {} / {}  {}  eta {}", bar, static_cast<int>(fraction * 100),
                     format_bytes(done_bytes), format_bytes(*total_bytes), rate, format_eta(eta));
}

ProgressMeter::ProgressMeter(std::FILE* out, bool interactive, std::chrono::milliseconds period)
    : out_(out), interactive_(interactive), period_(period) {}

void ProgressMeter::update(const DownloadProgress& progress, Clock::time_point now) {
  if (!started_) {
    started_ = true;
    start_ = now;
    last_draw_ = now;
    baseline_bytes_ = progress.resumed_from_bytes;
  }
  // A transfer that started over from byte 0 (the server ignored the range) resets the rate.
  if (progress.done_bytes < baseline_bytes_) baseline_bytes_ = 0;
  last_ = progress;
  const auto redraw = interactive_ ? std::chrono::milliseconds(100) : period_;
  if (now - last_draw_ >= redraw) draw(now);
}

void ProgressMeter::finish(Clock::time_point now) {
  if (!started_) return;
  if (interactive_ || drawn_) draw(now);
  if (interactive_) std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressMeter::draw(Clock::time_point now) {
  last_draw_ = now;
  drawn_ = true;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? (last_.done_bytes - baseline_bytes_) / seconds : 0;
  const std::string line = format_progress(last_.done_bytes, last_.total_bytes, rate, 30);
  if (interactive_) {
    std::fprintf(out_, "\r%s\033[K", line.c_str());  // \033[K clears what a longer line left
  } else {
    std::fprintf(out_, "pull: %s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace pensieve::hub
