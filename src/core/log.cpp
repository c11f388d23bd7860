#include "core/log.h"

#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace pensieve::log {
namespace {

// All log output goes to stderr so stdout stays clean for command output.
void ensure_stderr_logger() {
  static bool installed = [] {
    auto logger = spdlog::stderr_color_mt("pensieve");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
    return true;
  }();
  (void)installed;
}

}  // namespace

bool parse_level(std::string_view text, Level* level) {
  struct Name {
    std::string_view name;
    Level level;
  };
  static constexpr Name kNames[] = {{"trace", Level::kTrace}, {"debug", Level::kDebug},
                                    {"info", Level::kInfo},   {"warn", Level::kWarn},
                                    {"error", Level::kError}, {"off", Level::kOff}};
  for (const Name& n : kNames) {
    if (n.name == text) {
      *level = n.level;
      return true;
    }
  }
  return false;
}

void set_level(Level level) {
  ensure_stderr_logger();
  static constexpr spdlog::level::level_enum kMap[] = {spdlog::level::trace, spdlog::level::debug,
                                                       spdlog::level::info,  spdlog::level::warn,
                                                       spdlog::level::err,   spdlog::level::off};
  spdlog::set_level(kMap[static_cast<int>(level)]);
}

}  // namespace pensieve::log
