// Values a Jinja template computes with: Python's dynamic types (undefined, None, bool, int,
// float, str, list, dict, callables). Lists and dicts are shared by reference, as in Python;
// strings are immutable and shared, so copying a Value never copies text.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"

namespace pensieve::jinja {

class Value;
class Interpreter;
using Array = std::vector<Value>;

class Object;
struct Callable;
struct CallArgs;

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kArray,
    kObject,
    kCallable,
  };

  Value() = default;           // undefined
  Value(bool b) : data_(b) {}  // NOLINT: implicit, like Python literals
  template <std::integral T>
  requires(!std::same_as<T, bool>) Value(T v) : data_(static_cast<int64_t>(v)) {}     // NOLINT
  Value(double v) : data_(v) {}                                                       // NOLINT
  Value(const char* s) : Value(std::string(s)) {}                                     // NOLINT
  Value(std::string_view s) : Value(std::string(s)) {}                                // NOLINT
  Value(std::string s) : data_(std::make_shared<const std::string>(std::move(s))) {}  // NOLINT

  static Value none() {
    Value v;
    v.data_ = NoneTag{};
    return v;
  }
  static Value list(Array items = {});
  // A list that prints as a Python tuple: (a, b).
  static Value tuple(Array items);
  static Value dict(std::initializer_list<std::pair<std::string, Value>> entries = {});
  static Value dict(Object object);
  static Value callable(std::string name,
                        std::function<Expected<Value>(Interpreter&, CallArgs&, int line)> fn);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // int, float or bool: what Python arithmetic accepts.
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_tuple() const { return is_tuple_; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(data_); }
  // Integer value of an int or bool.
  int64_t as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(data_); }
  // Numeric value of an int, float or bool.
  double as_float() const {
    return is_float() ? std::get<double>(data_) : static_cast<double>(as_int());
  }
  const std::string& str() const { return *std::get<StringPtr>(data_); }
  Array& array() const { return *std::get<ArrayPtr>(data_); }
  Object& object() const;
  const Callable& callable() const;
  // Identity of a list or dict (for cycle checks); null for other kinds.
  const void* container_id() const;

  // Python truthiness.
  bool truthy() const;
  // Python str(): what {{ value }} prints. Undefined prints as nothing.
  std::string to_str() const;
  // Python repr(): how values print inside lists and dicts.
  std::string repr() const;
  // Python ==, with int/float/bool compared numerically and containers by content.
  bool equals(const Value& other) const;
  // "str", "int", "list"...: Python's type names, for error messages.
  std::string_view type_name() const;

  // Fill a dict or list built with Value::dict({{"role", "user"}}) or Value::list().
  // set adds (or replaces) a key of a dict; push_back appends to a list.
  void set(std::string key, Value value) const;
  void push_back(Value value) const { array().push_back(std::move(value)); }

  // A copy whose lists and dicts are new containers (strings stay shared).
  Value deep_copy() const;

 private:
  struct NoneTag {};
  using StringPtr = std::shared_ptr<const std::string>;
  using ArrayPtr = std::shared_ptr<Array>;
  using ObjectPtr = std::shared_ptr<Object>;
  using CallablePtr = std::shared_ptr<const Callable>;

  void write_repr(std::string& out, int depth) const;
  bool equals_at(const Value& other, int depth) const;
  Value deep_copy_at(int depth) const;

  std::variant<std::monostate, NoneTag, bool, int64_t, double, StringPtr, ArrayPtr, ObjectPtr,
               CallablePtr>
      data_;
  bool is_tuple_ = false;
};

// Arguments of a call: positional, then keyword (in call order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// A function a template can call: a macro, a global (range, namespace...) or a bound method.
struct Callable {
  std::string name;
  std::function<Expected<Value>(Interpreter&, CallArgs&, int line)> fn;
};

// A dict: string keys in insertion order (Python 3.7+ dict order, which tojson preserves).
class Object {
 public:
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Inserts at the end, or replaces in place when the key exists.
  void set(std::string key, Value value);
  bool erase(std::string_view key);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

  // namespace() objects accept `{% set ns.attr = ... %}`; plain dicts do not.
  bool is_namespace = false;

 private:
  void reindex();
  std::vector<std::pair<std::string, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;  // built only for large objects
};

inline Object& Value::object() const { return *std::get<ObjectPtr>(data_); }
inline const Callable& Value::callable() const { return *std::get<CallablePtr>(data_); }
inline void Value::set(std::string key, Value value) const {
  object().set(std::move(key), std::move(value));
}

}  // namespace pensieve::jinja
