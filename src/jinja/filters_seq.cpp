// Filters over sequences and dicts: length, first, join, map, select, sort, unique, items...
#include <algorithm>

#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

Expected<Value> f_length(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "length", args, {}, line));
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return Value(0);
    case Value::Kind::kString:
      return Value(utf8_length(v.str()));
    case Value::Kind::kArray:
      return Value(v.array().size());
    case Value::Kind::kObject:
      return Value(v.object().size());
    default:
      return in.fail(line, fmt::format("object of type '{}' has no len()", v.type_name()));
  }
}

Expected<Value> f_first(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "first", args, {}, line));
  if (v.is_array()) return v.array().empty() ? Value() : v.array().front();
  PV_TRY(Array items, in.iterate(v, line));
  return items.empty() ? Value() : items.front();
}

Expected<Value> f_last(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "last", args, {}, line));
  if (v.is_array()) return v.array().empty() ? Value() : v.array().back();
  PV_TRY(Array items, in.iterate(v, line));
  return items.empty() ? Value() : items.back();
}

Expected<Value> f_list(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "list", args, {}, line));
  PV_TRY(Array items, in.iterate(v, line));
  return Value::list(std::move(items));
}

Expected<Value> f_reverse(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "reverse", args, {}, line));
  PV_TRY(Array items, in.iterate(v, line));
  std::reverse(items.begin(), items.end());
  if (!v.is_string()) return Value::list(std::move(items));
  std::string out;
  for (const Value& c : items) out += c.str();
  return Value(std::move(out));
}

Expected<Value> f_join(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "join", args, {"d", "attribute"}, line));
  PV_TRY(Array items, in.iterate(v, line));
  const std::string sep = a[0].is_undefined() ? "" : a[0].to_str();
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    if (!a[1].is_undefined()) {
      PV_TRY(Value item, attribute_path(in, items[i], a[1]));
      out += item.to_str();
    } else {
      out += items[i].to_str();
    }
    PV_TRY_VOID(in.charge_text(line, out.size()));
  }
  return Value(std::move(out));
}

Expected<Value> f_items(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "items", args, {}, line));
  if (v.is_undefined()) return Value::list();
  if (!v.is_object())
    return in.fail(line, fmt::format("items: expected a dict, not {}", v.type_name()));
  Array out;
  for (const auto& [k, item] : v.object().entries()) out.push_back(Value::tuple({Value(k), item}));
  return Value::list(std::move(out));
}

// map(attribute='x', default=d) or map('filter', args...).
Expected<Value> f_map(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(Array items, in.iterate(v, line));
  Array out;
  if (args.positional.empty()) {
    PV_TRY(auto a, bind_args(in, "map", args, {"attribute", "default"}, line));
    if (a[0].is_undefined()) return in.fail(line, "map: expects a filter name or attribute=");
    for (const Value& item : items) {
      PV_TRY(Value x, attribute_path(in, item, a[0]));
      out.push_back(x.is_undefined() && !a[1].is_undefined() ? a[1] : x);
    }
    return Value::list(std::move(out));
  }
  if (!args.positional[0].is_string()) return in.fail(line, "map: filter name must be a string");
  const std::string name = args.positional[0].str();
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.kwargs = args.kwargs;
  for (const Value& item : items) {
    CallArgs copy = rest;
    PV_TRY(Value x, in.filter(name, item, copy, line));
    out.push_back(std::move(x));
  }
  return Value::list(std::move(out));
}

// select/reject/selectattr/rejectattr: keep items whose (attribute's) test result is `keep`.
Expected<Value> select_impl(Interpreter& in, const Value& v, CallArgs& args, int line, bool by_attr,
                            bool keep) {
  PV_TRY(Array items, in.iterate(v, line));
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    if (args.positional.empty()) return in.fail(line, "selectattr: expects an attribute name");
    attribute = args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string())
      return in.fail(line, "select: test name must be a string");
    test = args.positional[next++].str();
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next),
                              args.positional.end());
  test_args.kwargs = args.kwargs;
  Array out;
  for (const Value& item : items) {
    Value x = item;
    if (by_attr) {
      PV_TRY(x, attribute_path(in, item, attribute));
    }
    bool ok = x.truthy();
    if (!test.empty()) {
      CallArgs copy = test_args;
      PV_TRY(ok, in.test(test, x, copy, line));
    }
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Expected<Value> f_select(Interpreter& in, const Value& v, CallArgs& args, int line) {
  return select_impl(in, v, args, line, false, true);
}
Expected<Value> f_reject(Interpreter& in, const Value& v, CallArgs& args, int line) {
  return select_impl(in, v, args, line, false, false);
}
Expected<Value> f_selectattr(Interpreter& in, const Value& v, CallArgs& args, int line) {
  return select_impl(in, v, args, line, true, true);
}
Expected<Value> f_rejectattr(Interpreter& in, const Value& v, CallArgs& args, int line) {
  return select_impl(in, v, args, line, true, false);
}

// Sorts `items` by key(item) with Python's comparison; errors (mixed types) are reported.
Expected<void> sort_by(Interpreter& in, Array& items, const std::vector<Value>& keys, bool reverse,
                       bool case_sensitive, int line) {
  std::vector<size_t> idx(items.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::optional<Error> error;
  PV_TRY_VOID(in.charge(line, items.size() * 8));
  std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
    if (error) return false;
    auto c = reverse ? in.order(keys[y], keys[x], case_sensitive, line)
                     : in.order(keys[x], keys[y], case_sensitive, line);
    if (!c) {
      error = c.error();
      return false;
    }
    return *c < 0;
  });
  if (error) return Unexpected<Error>(*error);
  Array sorted;
  sorted.reserve(items.size());
  for (size_t i : idx) sorted.push_back(items[i]);
  items = std::move(sorted);
  return {};
}

Expected<Value> f_sort(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "sort", args, {"reverse", "case_sensitive", "attribute"}, line));
  PV_TRY(Array items, in.iterate(v, line));
  std::vector<Value> keys;
  for (const Value& item : items) {
    if (a[2].is_undefined()) {
      keys.push_back(item);
    } else {
      PV_TRY(Value k, attribute_path(in, item, a[2]));
      keys.push_back(std::move(k));
    }
  }
  PV_TRY_VOID(sort_by(in, items, keys, a[0].truthy(), a[1].truthy(), line));
  return Value::list(std::move(items));
}

Expected<Value> f_dictsort(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "dictsort", args, {"case_sensitive", "by", "reverse"}, line));
  if (!v.is_object()) return in.fail(line, "dictsort: expects a dict");
  const bool by_value = a[1].is_string() && a[1].str() == "value";
  if (a[1].is_string() && !by_value && a[1].str() != "key") {
    return in.fail(line, "dictsort: 'by' must be 'key' or 'value'");
  }
  Array items;
  std::vector<Value> keys;
  for (const auto& [k, item] : v.object().entries()) {
    items.push_back(Value::tuple({Value(k), item}));
    keys.push_back(by_value ? item : Value(k));
  }
  PV_TRY_VOID(sort_by(in, items, keys, a[2].truthy(), a[0].truthy(), line));
  return Value::list(std::move(items));
}

Expected<Value> f_unique(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "unique", args, {"case_sensitive", "attribute"}, line));
  PV_TRY(Array items, in.iterate(v, line));
  Array out;
  std::vector<Value> seen;
  for (const Value& item : items) {
    Value key = item;
    if (!a[1].is_undefined()) {
      PV_TRY(key, attribute_path(in, item, a[1]));
    }
    if (key.is_string() && !a[0].truthy()) key = Value(to_lower(key.str()));
    PV_TRY_VOID(in.charge(line, seen.size() / 16 + 1));
    bool dup = false;
    for (const Value& s : seen) {
      if (s.equals(key)) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Expected<Value> min_max(Interpreter& in, const Value& v, CallArgs& args, int line, bool want_max) {
  PV_TRY(auto a,
         bind_args(in, want_max ? "max" : "min", args, {"case_sensitive", "attribute"}, line));
  PV_TRY(Array items, in.iterate(v, line));
  Value best;
  Value best_key;
  for (const Value& item : items) {
    Value key = item;
    if (!a[1].is_undefined()) {
      PV_TRY(key, attribute_path(in, item, a[1]));
    }
    if (!best.is_undefined()) {
      PV_TRY(int c, in.order(key, best_key, a[0].truthy(), line));
      if (want_max ? c <= 0 : c >= 0) continue;
    }
    best = item;
    best_key = std::move(key);
  }
  return best;
}

Expected<Value> f_min(Interpreter& in, const Value& v, CallArgs& args, int line) {
  return min_max(in, v, args, line, false);
}
Expected<Value> f_max(Interpreter& in, const Value& v, CallArgs& args, int line) {
  return min_max(in, v, args, line, true);
}

Expected<Value> f_sum(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "sum", args, {"attribute", "start"}, line));
  PV_TRY(Array items, in.iterate(v, line));
  Value total = a[1].is_undefined() ? Value(0) : a[1];
  for (const Value& item : items) {
    Value x = item;
    if (!a[0].is_undefined()) {
      PV_TRY(x, attribute_path(in, item, a[0]));
    }
    PV_TRY(total, in.binary("+", total, x, line));
  }
  return total;
}

Expected<Value> f_batch(Interpreter& in, const Value& v, CallArgs& args, int line) {
  PV_TRY(auto a, bind_args(in, "batch", args, {"linecount", "fill_with"}, line));
  if (!a[0].is_int() || a[0].as_int() <= 0) return in.fail(line, "batch: linecount must be > 0");
  const auto n = static_cast<size_t>(a[0].as_int());
  PV_TRY(Array items, in.iterate(v, line));
  Array out;
  for (size_t i = 0; i < items.size(); i += n) {
    Array row(items.begin() + static_cast<std::ptrdiff_t>(i),
              items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), i + n)));
    if (!a[1].is_undefined()) {
      while (row.size() < n) row.push_back(a[1]);
    }
    out.push_back(Value::list(std::move(row)));
  }
  return Value::list(std::move(out));
}

constexpr FilterEntry kSequenceFilters[] = {
    {"batch", f_batch},
    {"count", f_length},
    {"dictsort", f_dictsort},
    {"first", f_first},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"reverse", f_reverse},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"sum", f_sum},
    {"unique", f_unique},
};

}  // namespace

std::span<const FilterEntry> sequence_filters() { return kSequenceFilters; }

Expected<Value> attribute_path(Interpreter& in, const Value& item, const Value& attribute) {
  if (attribute.is_int()) return in.get_item(item, attribute);
  if (!attribute.is_string()) return Value();
  Value cur = item;
  for (const std::string& part : split(attribute.str(), ".", -1)) {
    bool numeric = !part.empty();
    for (char c : part) numeric = numeric && is_digit(c);
    if (numeric && part.size() < 18) {
      PV_TRY(cur, in.get_item(cur, Value(std::stoll(part))));
    } else {
      PV_TRY(cur, in.get_item(cur, Value(part)));
    }
  }
  return cur;
}

}  // namespace pensieve::jinja
