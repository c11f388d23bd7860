#include "server/json_fields.h"

#include <cmath>

namespace pensieve::server {
namespace {

const Json* find(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

Expected<Json> parse_json_object(std::string_view body) {
  Json value;
  try {
    value = Json::parse(body);
  } catch (const Json::exception& e) {
    return make_error(ErrorCode::kInvalidFormat, "request body is not valid JSON: {}", e.what());
  }
  if (!value.is_object()) {
    return make_error(ErrorCode::kInvalidFormat, "request body: expected a JSON object");
  }
  return value;
}

std::string field_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

std::string field_path(std::string_view parent, size_t index) {
  return field_path(parent, std::to_string(index));
}

Expected<std::optional<std::string>> optional_string(const Json& object, std::string_view key,
                                                     std::string_view path) {
  const Json* v = find(object, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected a string", field_path(path, key));
  }
  return std::optional<std::string>(v->get<std::string>());
}

Expected<std::optional<double>> optional_number(const Json& object, std::string_view key,
                                                std::string_view path, double min, double max) {
  const Json* v = find(object, key);
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected a number", field_path(path, key));
  }
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    return make_error(ErrorCode::kInvalidArgument, "{}: {} is outside {}..{}",
                      field_path(path, key), x, min, max);
  }
  return std::optional<double>(x);
}

Expected<std::optional<int64_t>> optional_integer(const Json& object, std::string_view key,
                                                  std::string_view path, int64_t min, int64_t max) {
  const Json* v = find(object, key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: {} is outside {}..{}",
                        field_path(path, key), u, min, max);
    }
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected an integer",
                      field_path(path, key));
  }
  if (x < min || x > max) {
    return make_error(ErrorCode::kInvalidArgument, "{}: {} is outside {}..{}",
                      field_path(path, key), x, min, max);
  }
  return std::optional<int64_t>(x);
}

Expected<std::optional<bool>> optional_bool(const Json& object, std::string_view key,
                                            std::string_view path) {
  const Json* v = find(object, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected true or false",
                      field_path(path, key));
  }
  return std::optional<bool>(v->get<bool>());
}

std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace pensieve::server
