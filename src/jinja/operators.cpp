// Python semantics of operators, comparisons, iteration and attribute/item access.
#include <cmath>
#include <limits>

#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

bool contains_container(const Value& v, const void* target, int depth, uint64_t& visited) {
  if (++visited > 1'000'000 || depth > 128) return true;  // too large to tell: refuse
  if (v.container_id() == nullptr) return false;
  if (v.container_id() == target) return true;
  if (v.is_array()) {
    for (const Value& item : v.array()) {
      if (item.container_id() && contains_container(item, target, depth + 1, visited)) return true;
    }
  } else {
    for (const auto& [k, item] : v.object().entries()) {
      if (item.container_id() && contains_container(item, target, depth + 1, visited)) return true;
    }
  }
  return false;
}

int sign(double d) { return d < 0 ? -1 : d > 0 ? 1 : 0; }

}  // namespace

Expected<void> Interpreter::check_insert(const Value& container, const Value& item, int line) {
  if (item.container_id() == nullptr) return {};
  uint64_t visited = 0;
  const bool cycle = contains_container(item, container.container_id(), 0, visited);
  PV_TRY_VOID(charge(line, visited));
  if (cycle) return fail(line, "cannot put a list or dict inside itself");
  return {};
}

Expected<Array> Interpreter::iterate(const Value& v, int line) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return Array{};
    case Value::Kind::kArray:
      PV_TRY_VOID(charge(line, v.array().size() / 16));
      return v.array();
    case Value::Kind::kObject: {
      Array keys;
      for (const auto& [k, item] : v.object().entries()) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      Array chars;
      for (std::string& c : utf8_chars(v.str())) chars.emplace_back(std::move(c));
      return chars;
    }
    default:
      return fail(line, fmt::format("'{}' object is not iterable", v.type_name()));
  }
}

Expected<int> Interpreter::order(const Value& a, const Value& b, bool case_sensitive, int line) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return sign(a.as_float() - b.as_float());
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c =
        case_sensitive ? a.str().compare(b.str()) : to_lower(a.str()).compare(to_lower(b.str()));
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    const Array& x = a.array();
    const Array& y = b.array();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i].equals(y[i])) continue;
      PV_TRY_VOID(charge(line, 1));
      return order(x[i], y[i], case_sensitive, line);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return fail(line, fmt::format("'<' not supported between instances of '{}' and '{}'",
                                a.type_name(), b.type_name()));
}

Expected<bool> Interpreter::compare(std::string_view op, const Value& a, const Value& b, int line) {
  if (op == "==") return a.equals(b);
  if (op == "!=") return !a.equals(b);
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) {
        return fail(line, fmt::format("'in <string>' requires string as left operand, not {}",
                                      a.type_name()));
      }
      found = b.str().find(a.str()) != std::string::npos;
    } else if (b.is_array()) {
      PV_TRY_VOID(charge(line, b.array().size() / 16));
      for (const Value& item : b.array()) {
        if (item.equals(a)) {
          found = true;
          break;
        }
      }
    } else if (b.is_object()) {
      found = a.is_string() && b.object().find(a.str()) != nullptr;
    } else if (!b.is_undefined()) {
      return fail(line, fmt::format("argument of type '{}' is not iterable", b.type_name()));
    }
    return op == "in" ? found : !found;
  }
  if (a.is_float() || b.is_float()) {
    // NaN compares false with everything, as in Python.
    if (a.is_number() && b.is_number() && (std::isnan(a.as_float()) || std::isnan(b.as_float())))
      return false;
  }
  PV_TRY(int c, order(a, b, true, line));
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

Expected<Value> Interpreter::binary(std::string_view op, const Value& a, const Value& b, int line) {
  const bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
  const bool nums = a.is_number() && b.is_number();
  auto unsupported = [&]() {
    return fail(line, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op,
                                  a.type_name(), b.type_name()));
  };
  if (op == "~") {
    std::string s = a.to_str();
    s += b.to_str();
    PV_TRY_VOID(charge_text(line, s.size()));
    return Value(std::move(s));
  }
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) return fail(line, "integer overflow");
      return Value(r);
    }
    if (nums) return Value(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) {
      PV_TRY_VOID(charge_text(line, a.str().size() + b.str().size()));
      return Value(a.str() + b.str());
    }
    if (a.is_array() && b.is_array()) {
      PV_TRY_VOID(charge(line, a.array().size() + b.array().size()));
      Array out = a.array();
      out.insert(out.end(), b.array().begin(), b.array().end());
      return Value::list(std::move(out));
    }
    return unsupported();
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return fail(line, "integer overflow");
      return Value(r);
    }
    if (nums) return Value(a.as_float() - b.as_float());
    return unsupported();
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return fail(line, "integer overflow");
      return Value(r);
    }
    if (nums) return Value(a.as_float() * b.as_float());
    const Value& seq = (b.is_int() || b.is_bool()) ? a : b;
    const Value& count = (b.is_int() || b.is_bool()) ? b : a;
    if (!(count.is_int() || count.is_bool()) || !(seq.is_string() || seq.is_array())) {
      return unsupported();
    }
    const int64_t n = count.as_int() < 0 ? 0 : count.as_int();
    if (seq.is_string()) {
      const size_t len = seq.str().size();
      if (len > 0 && static_cast<uint64_t>(n) > limits_.max_output_bytes / len) {
        PV_TRY_VOID(charge_text(line, limits_.max_output_bytes + 1));  // fails: too large
      }
      PV_TRY_VOID(charge_text(line, len * static_cast<size_t>(n)));
      std::string out;
      out.reserve(len * static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) out += seq.str();
      return Value(std::move(out));
    }
    const size_t len = seq.array().size();
    if (len > 0 && static_cast<uint64_t>(n) > limits_.max_steps / len) {
      PV_TRY_VOID(charge(line, limits_.max_steps + 1));  // fails: too large
    }
    PV_TRY_VOID(charge(line, len * static_cast<uint64_t>(n)));
    Array out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.array().begin(), seq.array().end());
    return Value::list(std::move(out));
  }
  if (!nums) {
    if (op == "%" && a.is_string()) return fail(line, "string formatting with % is not supported");
    return unsupported();
  }
  if (op == "/") {
    if (b.as_float() == 0) return fail(line, "division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (ints) {
      const int64_t x = a.as_int();
      const int64_t y = b.as_int();
      if (y == 0) return fail(line, "integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) {
        if (op == "%") return Value(int64_t{0});
        return fail(line, "integer overflow");
      }
      int64_t q = x / y;
      int64_t r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return op == "//" ? Value(q) : Value(r);
    }
    const double x = a.as_float();
    const double y = b.as_float();
    if (y == 0) return fail(line, "float division by zero");
    if (op == "//") return Value(std::floor(x / y));
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value(r);
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int();
      int64_t e = b.as_int();
      int64_t r = 1;
      while (e > 0) {
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) return fail(line, "integer overflow");
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) {
          return fail(line, "integer overflow");
        }
      }
      return Value(r);
    }
    return Value(std::pow(a.as_float(), b.as_float()));
  }
  return unsupported();
}

Expected<Value> Interpreter::get_attr(const Value& obj, std::string_view name) {
  if (has_method(obj, name)) {
    Value bound = obj;
    std::string method(name);
    return Value::callable(method, [bound, method](Interpreter& in, CallArgs& args, int line) {
      return call_method(in, bound, method, args, line);
    });
  }
  if (obj.is_object()) {
    const Value* v = obj.object().find(name);
    return v ? *v : Value();
  }
  return Value();
}

Expected<Value> Interpreter::get_item(const Value& obj, const Value& key) {
  if (obj.is_object()) {
    if (!key.is_string()) return Value();
    const Value* v = obj.object().find(key.str());
    if (v) return *v;
    return get_attr(obj, key.str());
  }
  if (obj.is_array() && (key.is_int() || key.is_bool())) {
    const auto n = static_cast<int64_t>(obj.array().size());
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return obj.array()[static_cast<size_t>(i)];
  }
  if (obj.is_string() && (key.is_int() || key.is_bool())) {
    const std::vector<size_t> b = utf8_boundaries(obj.str());
    const auto n = static_cast<int64_t>(b.size() - 1);
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return Value(obj.str().substr(b[i], b[i + 1] - b[i]));
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return Value();
}

}  // namespace pensieve::jinja
