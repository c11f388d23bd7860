// Expected<T>: the return type of every operation that can fail on user input.
// Mirrors std::expected's names (C++23) so it can be swapped for it later.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "core/check.h"

namespace pensieve {

enum class ErrorCode {
  kInvalidArgument,    // bad value from a user, a flag or a request
  kNotFound,           // a file, key, tensor or model that is not there
  kIo,                 // the operating system refused (open, mmap, read, write)
  kInvalidFormat,      // a file or payload that breaks its format's rules
  kUnsupported,        // well-formed, but something pensieve does not implement
  kOutOfRange,         // a value past a limit (context length, sizes)
  kResourceExhausted,  // memory or queue capacity
  kUnavailable,        // cannot be done now, may work later: memory pressure, shutting down
  kInternal,           // a failure pensieve cannot attribute to its input
};

const char* error_code_name(ErrorCode code);

// An operator-readable error; the message starts with the operation ("gguf: ...").
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

template <class E>
class Unexpected {
 public:
  explicit Unexpected(E error) : error_(std::move(error)) {}
  E& error() { return error_; }

 private:
  E error_;
};

// make_error(code, "gguf: {} ...", args...) builds an Unexpected<Error> for `return`.
template <class... Args>
Unexpected<Error> make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Unexpected<Error>(Error{code, fmt::format(format, std::forward<Args>(args)...)});
}

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Expected(Unexpected<Error> error)                                          // NOLINT
      : storage_(std::in_place_index<1>, std::move(error.error())) {}

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    PV_CHECK(has_value(), "Expected::value() on an error: {}", std::get<1>(storage_).message);
    return std::get<0>(storage_);
  }
  const T& value() const& {
    PV_CHECK(has_value(), "Expected::value() on an error: {}", std::get<1>(storage_).message);
    return std::get<0>(storage_);
  }
  T&& value() && {
    PV_CHECK(has_value(), "Expected::value() on an error: {}", std::get<1>(storage_).message);
    return std::get<0>(std::move(storage_));
  }
  const Error& error() const {
    PV_CHECK(!has_value(), "Expected::error() on a value");
    return std::get<1>(storage_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> storage_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Unexpected<Error> error) : error_(std::move(error.error())), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { PV_CHECK(ok_, "Expected::value() on an error: {}", error_.message); }
  const Error& error() const {
    PV_CHECK(!ok_, "Expected::error() on a value");
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

// PV_TRY(var, expr): evaluate an Expected, return its error from the enclosing function.
#define PV_TRY_CONCAT_INNER(a, b) a##b
#define PV_TRY_CONCAT(a, b) PV_TRY_CONCAT_INNER(a, b)
#define PV_TRY(var, expr)                                                                       \
  auto PV_TRY_CONCAT(pv_try_, __LINE__) = (expr);                                               \
  if (!PV_TRY_CONCAT(pv_try_, __LINE__).has_value())                                            \
    return ::pensieve::Unexpected<::pensieve::Error>(PV_TRY_CONCAT(pv_try_, __LINE__).error()); \
  var = std::move(PV_TRY_CONCAT(pv_try_, __LINE__)).value()

// PV_TRY_VOID(expr): the same for Expected<void>.
#define PV_TRY_VOID(expr)                                                     \
  do {                                                                        \
    auto pv_try_void_ = (expr);                                               \
    if (!pv_try_void_.has_value())                                            \
      return ::pensieve::Unexpected<::pensieve::Error>(pv_try_void_.error()); \
  } while (0)

}  // namespace pensieve
