// Argument binding, the `is` tests, and the globals (range, dict, namespace, raise_exception,
// strftime_now).
#include "jinja/builtins.h"

#include <cmath>
#include <ctime>

#include "jinja/interpreter.h"

namespace pensieve::jinja {

Expected<std::vector<Value>> bind_args(Interpreter& in, std::string_view fn, const CallArgs& args,
                                       std::initializer_list<std::string_view> params, int line) {
  std::vector<Value> out(params.size());
  if (args.positional.size() > params.size()) {
    return in.fail(line, fmt::format("{}: takes at most {} argument(s), got {}", fn, params.size(),
                                     args.positional.size()));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) out[i] = args.positional[i];
  for (const auto& [key, value] : args.kwargs) {
    size_t i = 0;
    for (std::string_view p : params) {
      if (p == key) break;
      ++i;
    }
    if (i == params.size()) {
      return in.fail(line, fmt::format("{}: unexpected keyword argument '{}'", fn, key));
    }
    if (i < args.positional.size()) {
      return in.fail(line, fmt::format("{}: got multiple values for argument '{}'", fn, key));
    }
    out[i] = value;
  }
  return out;
}

namespace {

using TestFn = Expected<bool> (*)(Interpreter& in, const Value& v, const Value& arg, int line);

Expected<bool> compare_test(Interpreter& in, std::string_view op, const Value& v, const Value& arg,
                            int line) {
  return in.compare(op, v, arg, line);
}

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

// Tests with one optional argument; the lambdas convert to TestFn.
const TestEntry kTests[] = {
    {"defined",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return !v.is_undefined();
     }},
    {"undefined",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_undefined();
     }},
    {"none",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> { return v.is_none(); }},
    {"string",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_string();
     }},
    {"number",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_number();
     }},
    {"integer",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> { return v.is_int(); }},
    {"float",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_float();
     }},
    {"boolean",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> { return v.is_bool(); }},
    {"true",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_bool() && v.as_bool();
     }},
    {"false",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_bool() && !v.as_bool();
     }},
    {"mapping",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_object();
     }},
    {"sequence",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_string() || v.is_array() || v.is_object();
     }},
    {"iterable",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_string() || v.is_array() || v.is_object();
     }},
    {"callable",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       return v.is_callable();
     }},
    {"lower",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       if (!v.is_string()) return false;
       bool cased = false;
       for (char c : v.str()) {
         if (c >= 'A' && c <= 'Z') return false;
         cased = cased || (c >= 'a' && c <= 'z');
       }
       return cased;
     }},
    {"upper",
     [](Interpreter&, const Value& v, const Value&, int) -> Expected<bool> {
       if (!v.is_string()) return false;
       bool cased = false;
       for (char c : v.str()) {
         if (c >= 'a' && c <= 'z') return false;
         cased = cased || (c >= 'A' && c <= 'Z');
       }
       return cased;
     }},
    {"even",
     [](Interpreter& in, const Value& v, const Value&, int line) -> Expected<bool> {
       if (!v.is_int() && !v.is_bool()) return in.fail(line, "even: expects an integer");
       return v.as_int() % 2 == 0;
     }},
    {"odd",
     [](Interpreter& in, const Value& v, const Value&, int line) -> Expected<bool> {
       if (!v.is_int() && !v.is_bool()) return in.fail(line, "odd: expects an integer");
       return v.as_int() % 2 != 0;
     }},
    {"divisibleby",
     [](Interpreter& in, const Value& v, const Value& n, int line) -> Expected<bool> {
       if (!(v.is_int() || v.is_bool()) || !(n.is_int() || n.is_bool())) {
         return in.fail(line, "divisibleby: expects integers");
       }
       if (n.as_int() == 0) return in.fail(line, "divisibleby: division by zero");
       if (n.as_int() == -1) return true;
       return v.as_int() % n.as_int() == 0;
     }},
    {"sameas",
     [](Interpreter&, const Value& v, const Value& o, int) -> Expected<bool> {
       if (v.container_id() || o.container_id()) return v.container_id() == o.container_id();
       return v.kind() == o.kind() && v.equals(o);
     }},
    {"eq", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, "==", v, o, line); }},
    {"ne", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, "!=", v, o, line); }},
    {"lt", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, "<", v, o, line); }},
    {"le", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, "<=", v, o, line); }},
    {"gt", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, ">", v, o, line); }},
    {"ge", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, ">=", v, o, line); }},
    {"in", [](Interpreter& in, const Value& v, const Value& o,
              int line) { return compare_test(in, "in", v, o, line); }},
};

// Jinja's aliases for the comparison tests.
std::string_view canonical_test(std::string_view name) {
  if (name == "equalto" || name == "==") return "eq";
  if (name == "!=") return "ne";
  if (name == "lessthan" || name == "<") return "lt";
  if (name == "greaterthan" || name == ">") return "gt";
  if (name == "<=") return "le";
  if (name == ">=") return "ge";
  return name;
}

TestFn find_test(std::string_view name) {
  name = canonical_test(name);
  for (const TestEntry& e : kTests) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

Expected<Value> g_range(Interpreter& in, CallArgs& args, int line) {
  if (!args.kwargs.empty() || args.positional.empty() || args.positional.size() > 3) {
    return in.fail(line, "range: expects 1 to 3 integer arguments");
  }
  for (const Value& a : args.positional) {
    if (!a.is_int() && !a.is_bool()) return in.fail(line, "range: expects integers");
  }
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].as_int();
  } else {
    start = args.positional[0].as_int();
    stop = args.positional[1].as_int();
    if (args.positional.size() == 3) step = args.positional[2].as_int();
  }
  if (step == 0) return in.fail(line, "range: step must not be zero");
  // Count first (in floating point, so huge ranges cannot overflow) and charge for it.
  const double span =
      (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step);
  const double count = span > 0 ? std::ceil(span) : 0;
  PV_TRY_VOID(in.charge(line, count > 1e15 ? uint64_t{1} << 50 : static_cast<uint64_t>(count)));
  Array out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) out.emplace_back(start + i * step);
  return Value::list(std::move(out));
}

Expected<Value> g_dict(Interpreter& in, CallArgs& args, int line) {
  Object o;
  if (args.positional.size() > 1) return in.fail(line, "dict: expects at most 1 argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (!src.is_object()) return in.fail(line, "dict: expects a dict or keyword arguments");
    o = src.object();
    o.is_namespace = false;
  }
  for (auto& [k, v] : args.kwargs) o.set(k, v);
  return Value::dict(std::move(o));
}

Expected<Value> g_namespace(Interpreter& in, CallArgs& args, int line) {
  PV_TRY(Value v, g_dict(in, args, line));
  v.object().is_namespace = true;
  return v;
}

Expected<Value> g_raise_exception(Interpreter& in, CallArgs& args, int line) {
  (void)in;
  const std::string msg = args.positional.empty() ? "" : args.positional[0].to_str();
  return make_error(kTemplateRaisedError, "jinja: line {}: {}", line, msg);
}

Expected<Value> g_strftime_now(Interpreter& in, CallArgs& args, int line) {
  if (args.positional.size() != 1 || !args.positional[0].is_string()) {
    return in.fail(line, "strftime_now: expects a format string");
  }
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof(buf), args.positional[0].str().c_str(), &tm);
  return Value(std::string(buf, n));
}

}  // namespace

std::optional<Expected<bool>> apply_builtin_test(Interpreter& in, std::string_view name,
                                                 const Value& v, CallArgs& args, int line) {
  const TestFn fn = find_test(name);
  if (fn == nullptr) return std::nullopt;
  if (args.positional.size() > 1 || !args.kwargs.empty()) {
    return Expected<bool>(in.fail(line, fmt::format("test '{}': too many arguments", name)));
  }
  const Value arg = args.positional.empty() ? Value() : args.positional[0];
  return fn(in, v, arg, line);
}

bool has_builtin_test(std::string_view name) { return find_test(name) != nullptr; }

void add_globals(Object& globals) {
  globals.set("range", Value::callable("range", g_range));
  globals.set("dict", Value::callable("dict", g_dict));
  globals.set("namespace", Value::callable("namespace", g_namespace));
  globals.set("raise_exception", Value::callable("raise_exception", g_raise_exception));
  globals.set("strftime_now", Value::callable("strftime_now", g_strftime_now));
}

}  // namespace pensieve::jinja
