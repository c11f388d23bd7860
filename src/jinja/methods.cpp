// Methods of str, list and dict values, as templates call them: s.strip(), l.append(x),
// d.items(). Python's semantics, on code points for str positions.
#include <array>

#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

constexpr std::string_view kStringMethods[] = {
    "strip",      "lstrip", "rstrip",     "split",   "rsplit",  "startswith", "endswith", "upper",
    "lower",      "title",  "capitalize", "replace", "find",    "rfind",      "count",    "join",
    "splitlines", "format", "isdigit",    "isalpha", "isalnum", "isspace",    "isupper",  "islower",
};
constexpr std::string_view kListMethods[] = {"append", "pop",    "index", "count",
                                             "insert", "extend", "copy",  "reverse"};
constexpr std::string_view kDictMethods[] = {"items",  "keys", "values", "get",
                                             "update", "pop",  "copy",   "setdefault"};

template <size_t N>
bool in_list(const std::string_view (&list)[N], std::string_view name) {
  for (std::string_view m : list) {
    if (m == name) return true;
  }
  return false;
}

// Code-point index of byte offset `at` in s.
int64_t char_index(std::string_view s, size_t at) {
  return static_cast<int64_t>(utf8_length(s.substr(0, at)));
}

Expected<Value> str_format(Interpreter& in, const std::string& fmt_text, CallArgs& args, int line) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt_text.size(); ++i) {
    const char c = fmt_text[i];
    if (c == '}' && i + 1 < fmt_text.size() && fmt_text[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt_text.size() && fmt_text[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = fmt_text.find('}', i);
    if (close == std::string::npos) return in.fail(line, "format: single '{' in format string");
    const std::string field = fmt_text.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) {
      return in.fail(line, "format: format specs are not supported");
    }
    Value v;
    if (field.empty() || is_digit(field[0])) {
      const size_t k = field.empty() ? auto_index++ : static_cast<size_t>(std::atoi(field.c_str()));
      if (k >= args.positional.size()) return in.fail(line, "format: index out of range");
      v = args.positional[k];
    } else {
      bool found = false;
      for (const auto& [key, value] : args.kwargs) {
        if (key == field) {
          v = value;
          found = true;
        }
      }
      if (!found) return in.fail(line, "format: no argument named '" + field + "'");
    }
    out += v.to_str();
    PV_TRY_VOID(in.charge_text(line, out.size()));
    i = close;
  }
  return Value(std::move(out));
}

Expected<Value> string_method(Interpreter& in, const std::string& s, std::string_view name,
                              CallArgs& args, int line) {
  const std::string fn = "str." + std::string(name);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    PV_TRY(auto a, bind_args(in, fn, args, {"chars"}, line));
    const std::string chars = a[0].is_string() ? a[0].str() : "";
    return Value(strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    PV_TRY(auto a, bind_args(in, fn, args, {"sep", "maxsplit"}, line));
    if (a[0].is_string() && a[0].str().empty()) return in.fail(line, fn + ": empty separator");
    const int64_t maxsplit = a[1].is_int() ? a[1].as_int() : -1;
    if (name == "rsplit" && maxsplit >= 0)
      return in.fail(line, "str.rsplit: maxsplit is not supported");
    Array out;
    for (std::string& part : split(s, a[0].is_string() ? a[0].str() : "", maxsplit)) {
      out.emplace_back(std::move(part));
    }
    PV_TRY_VOID(in.charge(line, out.size()));
    return Value::list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    PV_TRY(auto a, bind_args(in, fn, args, {"prefix"}, line));
    std::vector<Value> options = a[0].is_array() ? a[0].array() : std::vector<Value>{a[0]};
    for (const Value& o : options) {
      if (!o.is_string()) return in.fail(line, fn + ": expects a string or a tuple of strings");
      const std::string& p = o.str();
      const bool hit = name == "startswith" ? s.compare(0, p.size(), p) == 0 && s.size() >= p.size()
                                            : s.size() >= p.size() &&
                                                  s.compare(s.size() - p.size(), p.size(), p) == 0;
      if (hit) return Value(true);
    }
    return Value(false);
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "splitlines" || name.substr(0, 2) == "is") {
    PV_TRY(auto a, bind_args(in, fn, args, {}, line));
    if (name == "upper") return Value(to_upper(s));
    if (name == "lower") return Value(to_lower(s));
    if (name == "title") return Value(python_title(s));
    if (name == "capitalize") return Value(capitalize(s));
    if (name == "splitlines") {
      Array out;
      for (std::string& l : splitlines(s)) out.emplace_back(std::move(l));
      return Value::list(std::move(out));
    }
    bool all = !s.empty();
    bool cased = false;
    for (char c : s) {
      const bool alpha = is_alpha(c);
      cased = cased || alpha;
      if (name == "isdigit") all = all && is_digit(c);
      if (name == "isalpha") all = all && alpha;
      if (name == "isalnum") all = all && (alpha || is_digit(c));
      if (name == "isspace") all = all && is_space(c);
      if (name == "isupper") all = all && !(c >= 'a' && c <= 'z');
      if (name == "islower") all = all && !(c >= 'A' && c <= 'Z');
    }
    if (name == "isupper" || name == "islower") all = all && cased;
    return Value(all);
  }
  if (name == "replace") {
    PV_TRY(auto a, bind_args(in, fn, args, {"old", "new", "count"}, line));
    CallArgs fargs;
    fargs.positional = {a[0], a[1], a[2].is_undefined() ? Value::none() : a[2]};
    return in.filter("replace", Value(s), fargs, line);
  }
  if (name == "find" || name == "rfind" || name == "count") {
    PV_TRY(auto a, bind_args(in, fn, args, {"sub"}, line));
    if (!a[0].is_string()) return in.fail(line, fn + ": expects a string");
    const std::string& sub = a[0].str();
    if (name == "count") {
      if (sub.empty()) return Value(utf8_length(s) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    const size_t at = name == "find" ? s.find(sub) : s.rfind(sub);
    return Value(at == std::string::npos ? int64_t{-1} : char_index(s, at));
  }
  if (name == "join") {
    PV_TRY(auto a, bind_args(in, fn, args, {"iterable"}, line));
    PV_TRY(Array items, in.iterate(a[0], line));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) return in.fail(line, "str.join: expects strings");
      if (i > 0) out += s;
      out += items[i].str();
      PV_TRY_VOID(in.charge_text(line, out.size()));
    }
    return Value(std::move(out));
  }
  return str_format(in, s, args, line);  // "format"
}

Expected<Value> list_method(Interpreter& in, const Value& list, std::string_view name,
                            CallArgs& args, int line) {
  const std::string fn = "list." + std::string(name);
  Array& items = list.array();
  if (name == "append") {
    PV_TRY(auto a, bind_args(in, fn, args, {"item"}, line));
    PV_TRY_VOID(in.check_insert(list, a[0], line));
    items.push_back(a[0]);
    return Value::none();
  }
  if (name == "extend") {
    PV_TRY(auto a, bind_args(in, fn, args, {"iterable"}, line));
    PV_TRY(Array more, in.iterate(a[0], line));
    for (const Value& m : more) PV_TRY_VOID(in.check_insert(list, m, line));
    PV_TRY_VOID(in.charge(line, more.size()));
    items.insert(items.end(), more.begin(), more.end());
    return Value::none();
  }
  if (name == "insert") {
    PV_TRY(auto a, bind_args(in, fn, args, {"index", "item"}, line));
    if (!a[0].is_int()) return in.fail(line, "list.insert: index must be an integer");
    PV_TRY_VOID(in.check_insert(list, a[1], line));
    const auto n = static_cast<int64_t>(items.size());
    int64_t i = a[0].as_int();
    if (i < 0) i = std::max<int64_t>(i + n, 0);
    i = std::min(i, n);
    items.insert(items.begin() + i, a[1]);
    return Value::none();
  }
  if (name == "pop") {
    PV_TRY(auto a, bind_args(in, fn, args, {"index"}, line));
    const auto n = static_cast<int64_t>(items.size());
    int64_t i = a[0].is_int() ? a[0].as_int() : n - 1;
    if (i < 0 && a[0].is_int()) i += n;
    if (i < 0 || i >= n) return in.fail(line, "list.pop: index out of range");
    Value v = items[static_cast<size_t>(i)];
    items.erase(items.begin() + i);
    return v;
  }
  if (name == "index" || name == "count") {
    PV_TRY(auto a, bind_args(in, fn, args, {"item"}, line));
    PV_TRY_VOID(in.charge(line, items.size() / 16));
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].equals(a[0])) continue;
      if (name == "index") return Value(i);
      ++n;
    }
    if (name == "index") return in.fail(line, "list.index: item is not in list");
    return Value(n);
  }
  if (name == "reverse") {
    PV_TRY(auto a, bind_args(in, fn, args, {}, line));
    std::reverse(items.begin(), items.end());
    return Value::none();
  }
  PV_TRY(auto a, bind_args(in, fn, args, {}, line));  // copy
  return Value::list(items);
}

Expected<Value> dict_method(Interpreter& in, const Value& dict, std::string_view name,
                            CallArgs& args, int line) {
  const std::string fn = "dict." + std::string(name);
  Object& o = dict.object();
  if (name == "items" || name == "keys" || name == "values" || name == "copy") {
    PV_TRY(auto a, bind_args(in, fn, args, {}, line));
    PV_TRY_VOID(in.charge(line, o.size() / 16));
    if (name == "copy") return Value::dict(o);
    Array out;
    for (const auto& [k, v] : o.entries()) {
      if (name == "items") out.push_back(Value::tuple({Value(k), v}));
      if (name == "keys") out.emplace_back(k);
      if (name == "values") out.push_back(v);
    }
    return Value::list(std::move(out));
  }
  if (name == "get" || name == "pop" || name == "setdefault") {
    PV_TRY(auto a, bind_args(in, fn, args, {"key", "default"}, line));
    const Value* v = a[0].is_string() ? o.find(a[0].str()) : nullptr;
    const Value fallback = a[1].is_undefined() ? Value::none() : a[1];
    if (name == "get") return v ? *v : fallback;
    if (name == "setdefault") {
      if (v) return *v;
      if (!a[0].is_string()) return in.fail(line, "dict.setdefault: keys must be strings");
      PV_TRY_VOID(in.check_insert(dict, fallback, line));
      o.set(a[0].str(), fallback);
      return fallback;
    }
    if (!v) {
      if (a[1].is_undefined()) return in.fail(line, "dict.pop: key not found");
      return a[1];
    }
    Value out = *v;
    o.erase(a[0].str());
    return out;
  }
  // update(other, **kwargs)
  if (args.positional.size() > 1) return in.fail(line, "dict.update: expects at most 1 argument");
  std::vector<std::pair<std::string, Value>> entries;
  if (!args.positional.empty()) {
    const Value& other = args.positional[0];
    if (!other.is_object()) return in.fail(line, "dict.update: expects a dict");
    entries = other.object().entries();
  }
  for (auto& kw : args.kwargs) entries.push_back(kw);
  for (auto& [k, v] : entries) {
    PV_TRY_VOID(in.check_insert(dict, v, line));
    o.set(k, v);
  }
  PV_TRY_VOID(in.charge(line, entries.size()));
  return Value::none();
}

}  // namespace

bool has_method(const Value& obj, std::string_view name) {
  if (obj.is_string()) return in_list(kStringMethods, name);
  if (obj.is_array()) return in_list(kListMethods, name);
  if (obj.is_object() && !obj.object().is_namespace) return in_list(kDictMethods, name);
  return false;
}

Expected<Value> call_method(Interpreter& in, const Value& obj, std::string_view name,
                            CallArgs& args, int line) {
  if (obj.is_string()) return string_method(in, obj.str(), name, args, line);
  if (obj.is_array()) return list_method(in, obj, name, args, line);
  return dict_method(in, obj, name, args, line);
}

}  // namespace pensieve::jinja
