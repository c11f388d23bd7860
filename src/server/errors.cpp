#include "server/errors.h"

#include <random>

#include "server/json_fields.h"

namespace pensieve::server {

ApiError api_error(int status, std::string message) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  switch (status) {
    case 400:
      e.type = "invalid_request_error";
      break;
    case 401:
      e.type = "authentication_error";
      break;
    case 403:
      e.type = "permission_error";
      break;
    case 404:
      e.type = "not_found_error";
      break;
    case 413:
      e.type = "request_too_large";
      break;
    case 429:
      e.type = "rate_limit_error";
      e.retry_after_s = 1;
      break;
    case 529:
      e.type = "overloaded_error";
      e.retry_after_s = 5;
      break;
    default:
      e.type = "api_error";
      break;
  }
  return e;
}

ApiError api_error_from(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidFormat:
    case ErrorCode::kUnsupported:
    case ErrorCode::kOutOfRange:
      return api_error(400, error.message);
    case ErrorCode::kNotFound:
      return api_error(404, error.message);
    case ErrorCode::kResourceExhausted:
      return api_error(429, error.message);
    case ErrorCode::kUnavailable:
      return api_error(529, error.message);
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      break;
  }
  return api_error(500, error.message);
}

std::string anthropic_error_body(const ApiError& error, std::string_view request_id) {
  return dump_json(Json{{"type", "error"},
                        {"error", {{"type", error.type}, {"message", error.message}}},
                        {"request_id", request_id}});
}

std::string openai_error_body(const ApiError& error) {
  return dump_json(Json{
      {"error",
       {{"message", error.message}, {"type", error.type}, {"param", nullptr}, {"code", nullptr}}}});
}

std::string random_id(std::string_view prefix) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(prefix);
  std::uniform_int_distribution<int> pick(0, 61);
  for (int i = 0; i < 24; ++i) id.push_back(kAlphabet[pick(rng)]);
  return id;
}

}  // namespace pensieve::server
