// Typed, validating access to request JSON fields, with errors that name the field's path
// ("messages.2.content.0.text: expected a string"). Shared by the Anthropic and OpenAI parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace pensieve::server {

using Json = nlohmann::ordered_json;

// Parses a request body that must be a JSON object. Errors (kInvalidFormat) say where the JSON
// broke, including ill-formed UTF-8.
Expected<Json> parse_json_object(std::string_view body);

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c"; indexes print as numbers.
std::string field_path(std::string_view parent, std::string_view key);
std::string field_path(std::string_view parent, size_t index);

// The field `key` of `object` at `path`: nullopt when absent or null, an error when of another
// type (or out of range).
Expected<std::optional<std::string>> optional_string(const Json& object, std::string_view key,
                                                     std::string_view path);
Expected<std::optional<double>> optional_number(const Json& object, std::string_view key,
                                                std::string_view path, double min, double max);
Expected<std::optional<int64_t>> optional_integer(const Json& object, std::string_view key,
                                                  std::string_view path, int64_t min, int64_t max);
Expected<std::optional<bool>> optional_bool(const Json& object, std::string_view key,
                                            std::string_view path);

// Compact serialization that never throws (invalid UTF-8 is replaced).
std::string dump_json(const Json& value);

}  // namespace pensieve::server
