// Durations as operators write them ("5m", "30s", "1h30m", "250ms", "-1", "0"): the keep-alive
// and drain settings. A bare number is seconds, as in Ollama's keep_alive. And points in time as
// RFC 3339 text.
#pragma once

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pensieve {

// Parses an optional '-' then one or more <number><unit> parts (units ms, s, m, h; the number may
// have a fraction: "1.5h"), or a bare number of seconds ("300", "-1", "2.5"). Blanks around are
// allowed. Errors (kInvalidArgument) read "duration '<text>' <problem>".
Expected<std::chrono::milliseconds> parse_duration(std::string_view text);

// "5m", "30s", "1h30m", "250ms", "0s", "-1s": the shortest exact spelling, for messages.
std::string format_duration(std::chrono::milliseconds duration);

// "2026-11-28T12:34:56Z": `t` in UTC, to the second.
std::string format_rfc3339_utc(std::time_t t);

}  // namespace pensieve
