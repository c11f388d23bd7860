#include "core/duration.h"

#include <charconv>
#include <cmath>
#include <string>

namespace pensieve {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_number_char(char c) { return (c >= '0' && c <= '9') || c == '.'; }

// Milliseconds per unit; 0 for an unknown unit.
double unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60 * 1000;
  if (unit == "h") return 60 * 60 * 1000;
  return 0;
}

}  // namespace

Expected<std::chrono::milliseconds> parse_duration(std::string_view raw) {
  auto fail = [raw](std::string_view problem) {
    return make_error(ErrorCode::kInvalidArgument, "duration '{}' {}", raw, problem);
  };
  constexpr std::string_view kForm =
      "is not a duration (a number of seconds, or parts like 30s, 5m, 1h30m, 250ms; -1 for "
      "never)";
  std::string_view text = trim(raw);
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty()) return fail(kForm);
  double total_ms = 0;
  bool bare = true;
  while (!text.empty()) {
    size_t n = 0;
    while (n < text.size() && is_number_char(text[n])) ++n;
    if (n == 0) return fail(kForm);
    double number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + n, number);
    if (ec != std::errc() || end != text.data() + n || !std::isfinite(number)) return fail(kForm);
    text.remove_prefix(n);
    size_t u = 0;
    while (u < text.size() && !is_number_char(text[u])) ++u;
    std::string_view unit = text.substr(0, u);
    text.remove_prefix(u);
    if (unit.empty()) {
      if (!bare || !text.empty()) return fail(kForm);
      total_ms += number * 1000;  // a bare number is seconds
      break;
    }
    bare = false;
    const double per = unit_ms(unit);
    if (per == 0) return fail(kForm);
    total_ms += number * per;
  }
  constexpr double kMaxMs = 1e15;  // about 31,000 years
  if (total_ms > kMaxMs) return fail("is too long");
  const auto ms = static_cast<int64_t>(std::llround(total_ms));
  return std::chrono::milliseconds(negative ? -ms : ms);
}

std::string format_duration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms == 0) return "0s";
  if (ms % 1000 != 0) return out + std::to_string(ms) + "ms";
  int64_t s = ms / 1000;
  const int64_t h = s / 3600, m = (s / 60) % 60;
  s %= 60;
  if (h > 0) out += std::to_string(h) + "h";
  if (m > 0) out += std::to_string(m) + "m";
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

std::string format_rfc3339_utc(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace pensieve
