// Built-ins of the Jinja interpreter: filters (x | f), tests (x is t), methods of str, list and
// dict (x.strip()), and the globals HF chat templates expect (namespace, range, raise_exception,
// strftime_now, dict).
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "jinja/value.h"

namespace pensieve::jinja {

class Interpreter;

// Binds a call's arguments to named parameters as Python does (positional first, then by
// keyword); missing ones are undefined. Unknown keywords and extra positionals fail.
Expected<std::vector<Value>> bind_args(Interpreter& in, std::string_view fn, const CallArgs& args,
                                       std::initializer_list<std::string_view> params, int line);

using FilterFn = Expected<Value> (*)(Interpreter& in, const Value& input, CallArgs& args, int line);
struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};
// filters_seq.cpp: the filters over lists and dicts (map, select, sort, join...).
std::span<const FilterEntry> sequence_filters();
// The value at `attribute` of item: "a.b.0" walks keys and indices, like Jinja's attrgetter.
Expected<Value> attribute_path(Interpreter& in, const Value& item, const Value& attribute);

// filters.cpp. nullopt: no such filter.
std::optional<Expected<Value>> apply_builtin_filter(Interpreter& in, std::string_view name,
                                                    const Value& input, CallArgs& args, int line);
bool has_builtin_filter(std::string_view name);
// builtins.cpp. nullopt: no such test.
std::optional<Expected<bool>> apply_builtin_test(Interpreter& in, std::string_view name,
                                                 const Value& v, CallArgs& args, int line);
bool has_builtin_test(std::string_view name);

// methods.cpp. Whether `obj.name` is a method (dict methods win over keys, as in Jinja).
bool has_method(const Value& obj, std::string_view name);
Expected<Value> call_method(Interpreter& in, const Value& obj, std::string_view name,
                            CallArgs& args, int line);

// builtins.cpp: range, dict, namespace, raise_exception, strftime_now.
void add_globals(Object& globals);

// The error code raise_exception's errors carry, so callers can tell them apart.
inline constexpr ErrorCode kTemplateRaisedError = ErrorCode::kInvalidArgument;

}  // namespace pensieve::jinja
