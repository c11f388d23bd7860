// Filters on scalars and strings (trim, tojson, int, replace, indent...) and the filter table.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/json.h"
#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

Expected<Value> string_result(Interpreter& in, std::string s, int line) {
  PV_TRY_VOID(in.charge_text(line, s.size()));
  return Value(std::move(s));
}

Expected<Value> f_abs(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "abs", args, {}, line));
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) return in.fail(line, "integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  return in.fail(line, fmt::format("bad operand type for abs(): '{}'", v.type_name()));
}

Expected<Value> f_capitalize(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "capitalize", args, {}, line));
  return Value(capitalize(v.to_str()));
}

Expected<Value> f_lower(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "lower", args, {}, line));
  return Value(to_lower(v.to_str()));
}

Expected<Value> f_upper(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "upper", args, {}, line));
  return Value(to_upper(v.to_str()));
}

// Jinja's title: capitalize after '-', whitespace and opening brackets; lower elsewhere.
Expected<Value> f_title(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "title", args, {}, line));
  std::string s = v.to_str();
  bool start = true;
  for (char& c : s) {
    if (c == '-' || is_space(c) || c == '(' || c == '{' || c == '[' || c == '<') {
      start = true;
    } else {
      c = start ? ascii_upper(c) : ascii_lower(c);
      start = false;
    }
  }
  return Value(std::move(s));
}

Expected<Value> f_default(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "default", args, {"default_value", "boolean"}, line));
  const Value fallback = a[0].is_undefined() ? Value("") : a[0];
  if (v.is_undefined() || (a[1].truthy() && !v.truthy())) return fallback;
  return v;
}

Expected<Value> f_escape(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "escape", args, {}, line));
  std::string out;
  for (char c : v.to_str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return string_result(in, std::move(out), line);
}

std::optional<double> parse_float(std::string_view s) {
  s = strip(s, "", true, true);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  double d = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  return d;
}

Expected<Value> f_int(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "int", args, {"default", "base"}, line));
  const Value fallback = a[0].is_undefined() ? Value(0) : a[0];
  const int base = a[1].is_int() ? static_cast<int>(a[1].as_int()) : 10;
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    const double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value(static_cast<int64_t>(d));
  }
  if (!v.is_string()) return fallback;
  std::string_view s = strip(v.str(), "", true, true);
  std::string digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  std::string_view d = digits;
  if (!d.empty() && d[0] == '+') d.remove_prefix(1);
  int64_t i = 0;
  if (base >= 2 && base <= 36) {
    auto res = std::from_chars(d.data(), d.data() + d.size(), i, base);
    if (!d.empty() && res.ec == std::errc() && res.ptr == d.data() + d.size()) return Value(i);
  }
  const auto f = parse_float(v.str());
  if (f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) return Value(static_cast<int64_t>(*f));
  return fallback;
}

Expected<Value> f_float(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "float", args, {"default"}, line));
  const Value fallback = a[0].is_undefined() ? Value(0.0) : a[0];
  if (v.is_number()) return Value(v.as_float());
  if (!v.is_string()) return fallback;
  const auto f = parse_float(v.str());
  return f ? Value(*f) : fallback;
}

Expected<Value> f_replace(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "replace", args, {"old", "new", "count"}, line));
  if (!a[0].is_string() || !a[1].is_string()) return in.fail(line, "replace: expects strings");
  const int64_t count = a[2].is_int() ? a[2].as_int() : -1;
  const std::string s = v.to_str();
  const size_t growth = a[1].str().size() > a[0].str().size() ? a[1].str().size() : 0;
  if (growth > 0 && s.size() > 0) {
    // Bound the result before building it: at most one replacement per byte plus one.
    PV_TRY_VOID(in.charge_text(
        line, s.size() + growth * (s.size() / std::max<size_t>(a[0].str().size(), 1) + 1)));
  }
  return string_result(in, replace(s, a[0].str(), a[1].str(), count), line);
}

Expected<Value> f_round(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "round", args, {"precision", "method"}, line));
  const int64_t precision = a[0].is_int() ? a[0].as_int() : 0;
  const std::string method = a[1].is_string() ? a[1].str() : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    return in.fail(line, "round: method must be 'common', 'ceil' or 'floor'");
  }
  if (!v.is_number())
    return in.fail(line, fmt::format("round: expects a number, not {}", v.type_name()));
  if (method == "common" && !v.is_float()) return Value(v.as_int());
  const double x = v.as_float();
  if (!std::isfinite(x) || precision > 300 || precision < -300) return Value(x);
  if (method == "common" && precision >= 0) {
    // Python rounds the exact binary value half-to-even; so does printf.
    char buf[512];
    const int n = std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), x);
    if (n > 0 && static_cast<size_t>(n) < sizeof(buf)) return Value(std::strtod(buf, nullptr));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double y = x * scale;
  const double r = method == "ceil"    ? std::ceil(y)
                   : method == "floor" ? std::floor(y)
                                       : std::nearbyint(y);
  return Value(r / scale);
}

Expected<Value> f_string(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "string", args, {}, line));
  if (v.is_string()) return v;
  return string_result(in, v.to_str(), line);
}

Expected<Value> f_tojson(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "tojson", args,
                           {"indent", "ensure_ascii", "separators", "sort_keys"}, line));
  JsonStyle style;
  if (a[0].is_int()) {
    style.indent = static_cast<int>(std::min<int64_t>(std::max<int64_t>(a[0].as_int(), 0), 64));
  } else if (!a[0].is_undefined() && !a[0].is_none()) {
    return in.fail(line, "tojson: indent must be an integer");
  }
  style.ensure_ascii = a[1].truthy();
  if (a[2].is_array() && a[2].array().size() == 2 && a[2].array()[0].is_string() &&
      a[2].array()[1].is_string()) {
    style.item_separator = a[2].array()[0].str();
    style.key_separator = a[2].array()[1].str();
  } else if (!a[2].is_undefined() && !a[2].is_none()) {
    return in.fail(line, "tojson: separators must be a pair of strings");
  }
  style.sort_keys = a[3].truthy();
  auto json = to_json(v, style);
  if (!json) return in.fail(line, json.error().message);
  return string_result(in, std::move(json).value(), line);
}

Expected<Value> f_trim(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "trim", args, {"chars"}, line));
  const std::string chars = a[0].is_string() ? a[0].str() : "";
  return Value(strip(v.to_str(), chars, true, true));
}

Expected<Value> f_safe(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "safe", args, {}, line));
  if (v.is_string()) return v;
  return string_result(in, v.to_str(), line);
}

// Lines after the first are indented; blank lines only when `blank` is set (Jinja 3).
Expected<Value> f_indent(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "indent", args, {"width", "first", "blank"}, line));
  std::string pad = "    ";
  if (a[0].is_string()) {
    pad = a[0].str();
  } else if (a[0].is_int()) {
    const int64_t w = a[0].as_int();
    if (w > 1024) return in.fail(line, "indent: width too large");
    pad.assign(static_cast<size_t>(std::max<int64_t>(w, 0)), ' ');
  }
  const std::vector<std::string> lines = splitlines(v.to_str() + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (a[2].truthy() || !lines[i].empty()) out += pad;
    }
    out += lines[i];
    if (out.size() > (size_t{1} << 31)) return in.fail(line, "indent: result too large");
  }
  if (a[1].truthy()) out = pad + out;
  return string_result(in, std::move(out), line);
}

Expected<Value> f_wordcount(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "wordcount", args, {}, line));
  int64_t n = 0;
  bool in_word = false;
  for (char c : v.to_str()) {
    const bool word =
        is_alpha(c) || is_digit(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value(n);
}

Expected<Value> f_attr(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "attr", args, {"name"}, line));
  if (!a[0].is_string()) return in.fail(line, "attr: expects a name");
  // Python getattr: a dict's keys are not attributes (a namespace's are).
  if (v.is_object() && !v.object().is_namespace && !has_method(v, a[0].str())) return Value();
  return in.get_attr(v, a[0].str());
}

constexpr FilterEntry kScalarFilters[] = {
    {"abs", f_abs},       {"attr", f_attr},           {"capitalize", f_capitalize},
    {"d", f_default},     {"default", f_default},     {"e", f_escape},
    {"escape", f_escape}, {"float", f_float},         {"indent", f_indent},
    {"int", f_int},       {"lower", f_lower},         {"replace", f_replace},
    {"round", f_round},   {"safe", f_safe},           {"string", f_string},
    {"title", f_title},   {"tojson", f_tojson},       {"trim", f_trim},
    {"upper", f_upper},   {"wordcount", f_wordcount},
};

FilterFn find_filter(std::string_view name) {
  for (const FilterEntry& e : kScalarFilters) {
    if (e.name == name) return e.fn;
  }
  for (const FilterEntry& e : sequence_filters()) {
    if (e.name == name) return e.fn;
  }
  return nullptr;
}

}  // namespace

bool has_builtin_filter(std::string_view name) { return find_filter(name) != nullptr; }

std::optional<Expected<Value>> apply_builtin_filter(Interpreter& in, std::string_view name,
                                                    const Value& input, CallArgs& args, int line) {
  const FilterFn fn = find_filter(name);
  if (fn == nullptr) return std::nullopt;
  return fn(in, input, args, line);
}

}  // namespace pensieve::jinja
