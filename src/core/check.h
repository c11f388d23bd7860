// PV_CHECK: invariants and bugs. Logs file:line and aborts; never reachable from user input.
#pragma once

#include <fmt/format.h>

namespace pensieve::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* condition,
                               const std::string& message);
}  // namespace pensieve::detail

#define PV_CHECK(cond, ...)                                                                     \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      ::pensieve::detail::check_failed(__FILE__, __LINE__, #cond, fmt::format("" __VA_ARGS__)); \
    }                                                                                           \
  } while (0)
