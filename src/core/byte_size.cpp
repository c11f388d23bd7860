#include "core/byte_size.h"

#include <charconv>
#include <limits>

namespace pensieve {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char ca = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (ca != b[i]) return false;
  }
  return true;
}

struct Unit {
  std::string_view name;  // lower case
  uint64_t multiplier;
};

constexpr Unit kUnits[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1000ull},
    {"mb", 1000ull * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"kib", 1ull << 10},
    {"mib", 1ull << 20},
    {"gib", 1ull << 30},
    {"tib", 1ull << 40},
};

}  // namespace

Expected<int64_t> parse_byte_size(std::string_view raw) {
  auto fail = [raw](std::string_view problem) {
    return make_error(ErrorCode::kInvalidArgument, "byte size '{}' {}", raw, problem);
  };
  std::string_view text = trim(raw);
  if (!text.empty() && text[0] == '-') return fail("is negative");
  size_t n_digits = 0;
  while (n_digits < text.size() && text[n_digits] >= '0' && text[n_digits] <= '9') ++n_digits;
  constexpr std::string_view kNotSize =
      "is not a byte size (a whole number with an optional unit B, KB, MB, GB, TB, KiB, MiB, "
      "GiB, TiB)";
  if (n_digits == 0) return fail(kNotSize);
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + n_digits, number);
  if (ec == std::errc::result_out_of_range) return fail("is too large");
  if (ec != std::errc() || end != text.data() + n_digits) return fail(kNotSize);
  std::string_view unit = trim(text.substr(n_digits));
  for (const Unit& u : kUnits) {
    if (!iequals(unit, u.name)) continue;
    constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (number > kMax / u.multiplier) return fail("is too large");
    return static_cast<int64_t>(number * u.multiplier);
  }
  return fail(kNotSize);
}

}  // namespace pensieve
