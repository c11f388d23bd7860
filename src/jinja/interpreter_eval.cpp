// Expression evaluation.
#include <limits>

#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

// Python's slice.indices(): normalized start, stop and step for a sequence of length n.
struct SliceIndices {
  int64_t start;
  int64_t stop;
  int64_t step;
};

SliceIndices slice_indices(const Value& start, const Value& stop, int64_t step, int64_t n) {
  auto clamp = [&](const Value& v, int64_t fallback, int64_t lo, int64_t hi) {
    if (!v.is_number()) return fallback;
    int64_t x = v.as_int();
    if (x < 0) x += n;
    if (x < lo) x = lo;
    if (x > hi) x = hi;
    return x;
  };
  // A step longer than the sequence takes one element; clamping keeps i + step in range.
  if (step > n) step = n + 1;
  if (step < -n) step = -n - 1;
  if (step > 0) return {clamp(start, 0, 0, n), clamp(stop, n, 0, n), step};
  return {clamp(start, n - 1, -1, n - 1), clamp(stop, -1, -1, n - 1), step};
}

}  // namespace

Expected<CallArgs> Interpreter::eval_args(const Expr& e, size_t first_arg) {
  CallArgs args;
  for (size_t i = first_arg; i < e.children.size(); ++i) {
    PV_TRY(Value v, eval(*e.children[i]));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [key, expr] : e.kwargs) {
    PV_TRY(Value v, eval(*expr));
    args.kwargs.emplace_back(key, std::move(v));
  }
  return args;
}

Expected<Value> Interpreter::eval(const Expr& e) {
  if (++depth_ > kMaxEvalDepth) {
    --depth_;
    return make_error(ErrorCode::kResourceExhausted,
                      "jinja: line {}: expression recursion too deep", e.line);
  }
  DepthGuard guard{depth_};
  PV_TRY_VOID(charge(e.line, 1));
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      Array items;
      for (const ExprPtr& c : e.children) {
        PV_TRY(Value v, eval(*c));
        items.push_back(std::move(v));
      }
      return e.kind == ExprKind::kTuple ? Value::tuple(std::move(items))
                                        : Value::list(std::move(items));
    }
    case ExprKind::kDict: {
      Object o;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        PV_TRY(Value k, eval(*e.children[i]));
        PV_TRY(Value v, eval(*e.children[i + 1]));
        if (!k.is_string()) {
          return fail(e.line, fmt::format("dict keys must be strings, not {}", k.type_name()));
        }
        o.set(k.str(), std::move(v));
      }
      return Value::dict(std::move(o));
    }
    case ExprKind::kGetAttr: {
      PV_TRY(Value obj, eval(*e.children[0]));
      return get_attr(obj, e.name);
    }
    case ExprKind::kGetItem: {
      PV_TRY(Value obj, eval(*e.children[0]));
      PV_TRY(Value key, eval(*e.children[1]));
      return get_item(obj, key);
    }
    case ExprKind::kSlice:
      return eval_slice(e);
    case ExprKind::kCall:
      return eval_call(e);
    case ExprKind::kFilter: {
      Value input;
      if (e.children[0]) {
        PV_TRY(input, eval(*e.children[0]));
      }
      PV_TRY(CallArgs args, eval_args(e, 1));
      return filter(e.name, input, args, e.line);
    }
    case ExprKind::kTest: {
      PV_TRY(Value v, eval(*e.children[0]));
      PV_TRY(CallArgs args, eval_args(e, 1));
      PV_TRY(bool r, test(e.name, v, args, e.line));
      return Value(r != e.negated);
    }
    case ExprKind::kUnary: {
      PV_TRY(Value v, eval(*e.children[0]));
      if (e.name == "not") return Value(!v.truthy());
      if (!v.is_number()) {
        return fail(e.line,
                    fmt::format("bad operand type for unary {}: '{}'", e.name, v.type_name()));
      }
      if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
      if (v.is_float()) return Value(-v.as_float());
      if (v.as_int() == std::numeric_limits<int64_t>::min())
        return fail(e.line, "integer overflow");
      return Value(-v.as_int());
    }
    case ExprKind::kBinary: {
      PV_TRY(Value a, eval(*e.children[0]));
      if (e.name == "and") {
        if (!a.truthy()) return a;
        return eval(*e.children[1]);
      }
      if (e.name == "or") {
        if (a.truthy()) return a;
        return eval(*e.children[1]);
      }
      PV_TRY(Value b, eval(*e.children[1]));
      return binary(e.name, a, b, e.line);
    }
    case ExprKind::kCompare: {
      PV_TRY(Value left, eval(*e.children[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        PV_TRY(Value right, eval(*e.children[i + 1]));
        PV_TRY(bool ok, compare(e.ops[i], left, right, e.line));
        if (!ok) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kCond: {
      PV_TRY(Value c, eval(*e.children[1]));
      if (c.truthy()) return eval(*e.children[0]);
      if (e.children[2]) return eval(*e.children[2]);
      return Value();
    }
  }
  return Value();
}

Expected<Value> Interpreter::eval_call(const Expr& e) {
  const Expr& fn = *e.children[0];
  Value callee;
  if (fn.kind == ExprKind::kGetAttr) {
    PV_TRY(Value obj, eval(*fn.children[0]));
    if (has_method(obj, fn.name)) {
      PV_TRY(CallArgs args, eval_args(e, 1));
      return call_method(*this, obj, fn.name, args, e.line);
    }
    PV_TRY(callee, get_attr(obj, fn.name));
  } else {
    PV_TRY(callee, eval(fn));
  }
  PV_TRY(CallArgs args, eval_args(e, 1));
  return call(callee, args, e.line,
              fn.kind == ExprKind::kName || fn.kind == ExprKind::kGetAttr
                  ? std::string_view(fn.name)
                  : std::string_view("expression"));
}

Expected<Value> Interpreter::eval_slice(const Expr& e) {
  PV_TRY(Value obj, eval(*e.children[0]));
  Value parts[3];
  for (int i = 0; i < 3; ++i) {
    if (e.children[static_cast<size_t>(i) + 1]) {
      PV_TRY(parts[i], eval(*e.children[static_cast<size_t>(i) + 1]));
      if (!parts[i].is_none() && !parts[i].is_int() && !parts[i].is_bool()) {
        return fail(e.line, "slice indices must be integers or none");
      }
    }
  }
  const int64_t step = parts[2].is_number() ? parts[2].as_int() : 1;
  if (step == 0) return fail(e.line, "slice step cannot be zero");
  if (obj.is_undefined()) return Value();
  if (obj.is_array()) {
    const Array& a = obj.array();
    const SliceIndices s = slice_indices(parts[0], parts[1], step, static_cast<int64_t>(a.size()));
    Array out;
    for (int64_t i = s.start; s.step > 0 ? i < s.stop : i > s.stop; i += s.step) {
      out.push_back(a[static_cast<size_t>(i)]);
    }
    PV_TRY_VOID(charge(e.line, out.size()));
    return Value::list(std::move(out));
  }
  if (obj.is_string()) {
    const std::string& str = obj.str();
    const std::vector<size_t> b = utf8_boundaries(str);
    const auto n = static_cast<int64_t>(b.size() - 1);
    const SliceIndices s = slice_indices(parts[0], parts[1], step, n);
    std::string out;
    if (step == 1) {
      if (s.start < s.stop) out = str.substr(b[s.start], b[s.stop] - b[s.start]);
    } else {
      for (int64_t i = s.start; s.step > 0 ? i < s.stop : i > s.stop; i += s.step) {
        out.append(str, b[i], b[i + 1] - b[i]);
      }
    }
    PV_TRY_VOID(charge_text(e.line, out.size()));
    return Value(std::move(out));
  }
  return fail(e.line, fmt::format("'{}' object is not subscriptable", obj.type_name()));
}

}  // namespace pensieve::jinja
