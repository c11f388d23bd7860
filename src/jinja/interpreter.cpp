// Statement execution: output, control flow, assignment, macros.
#include "jinja/interpreter.h"

#include "jinja/builtins.h"

namespace pensieve::jinja {

struct Interpreter::Frame {
  std::shared_ptr<Frame> parent;
  Object vars;
};

Interpreter::Interpreter(const RenderLimits& limits) : limits_(limits) { add_globals(globals_); }

Interpreter::~Interpreter() = default;

Unexpected<Error> Interpreter::fail(int line, std::string_view what) const {
  return make_error(ErrorCode::kInvalidFormat, "jinja: line {}: {}", line, what);
}

Expected<void> Interpreter::charge(int line, uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    return make_error(ErrorCode::kResourceExhausted,
                      "jinja: line {}: rendering took more than {} steps", line, limits_.max_steps);
  }
  return {};
}

Expected<void> Interpreter::charge_text(int line, size_t bytes) {
  if (bytes > limits_.max_output_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      "jinja: line {}: text larger than the {}-byte output limit", line,
                      limits_.max_output_bytes);
  }
  return charge(line, bytes / 64);
}

Expected<std::string> Interpreter::render(const Body& body, const Value& context) {
  root_ = std::make_shared<Frame>();
  if (context.is_object()) {
    for (const auto& [k, v] : context.object().entries()) root_->vars.set(k, v.deep_copy());
  } else if (!context.is_undefined() && !context.is_none()) {
    return fail(0, "the render context must be a dict");
  }
  frame_ = root_;
  std::string out;
  PV_TRY(Flow flow, exec_body(body, out));
  (void)flow;
  frame_.reset();
  root_.reset();
  return out;
}

Value Interpreter::lookup(std::string_view name) const {
  for (const Frame* f = frame_.get(); f != nullptr; f = f->parent.get()) {
    if (const Value* v = f->vars.find(name)) return *v;
  }
  if (const Value* v = globals_.find(name)) return *v;
  return Value();
}

Expected<Interpreter::Flow> Interpreter::exec_body(const Body& body, std::string& out) {
  for (const StmtPtr& s : body) {
    PV_TRY(Flow flow, exec(*s, out));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Expected<std::string> Interpreter::render_block(const Body& body, int line) {
  (void)line;
  std::string buf;
  PV_TRY(Flow flow, exec_body(body, buf));
  (void)flow;  // break/continue inside a captured block end the block
  return buf;
}

Expected<Value> Interpreter::apply_filters(const std::vector<ExprPtr>& filters, Value v) {
  for (const ExprPtr& f : filters) {
    PV_TRY(CallArgs args, eval_args(*f, 1));
    PV_TRY(v, filter(f->name, v, args, f->line));
  }
  return v;
}

Expected<Interpreter::Flow> Interpreter::exec(const Stmt& s, std::string& out) {
  if (++depth_ > kMaxEvalDepth) {
    --depth_;
    return make_error(ErrorCode::kResourceExhausted, "jinja: line {}: template recursion too deep",
                      s.line);
  }
  DepthGuard guard{depth_};
  PV_TRY_VOID(charge(s.line, 1));
  switch (s.kind) {
    case StmtKind::kText:
    case StmtKind::kOutput:
    case StmtKind::kFilterBlock:
    case StmtKind::kCallBlock: {
      const size_t before = out.size();
      if (s.kind == StmtKind::kText) {
        out += s.text;
      } else if (s.kind == StmtKind::kOutput) {
        PV_TRY(Value v, eval(*s.expr));
        out += v.to_str();
      } else if (s.kind == StmtKind::kFilterBlock) {
        PV_TRY(std::string body, render_block(s.body, s.line));
        PV_TRY(Value v, apply_filters(s.filters, Value(std::move(body))));
        out += v.to_str();
      } else {
        const Expr& call = *s.expr;
        PV_TRY(Value callee, eval(*call.children[0]));
        PV_TRY(CallArgs args, eval_args(call, 1));
        args.kwargs.emplace_back("caller", make_caller(s));
        PV_TRY(Value v, this->call(callee, args, s.line, call.children[0]->name));
        out += v.to_str();
      }
      if (out.size() > limits_.max_output_bytes) PV_TRY_VOID(charge_text(s.line, out.size()));
      PV_TRY_VOID(charge(s.line, (out.size() - before) / 64));
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const Branch& b : s.branches) {
        bool take = true;
        if (b.cond) {
          PV_TRY(Value c, eval(*b.cond));
          take = c.truthy();
        }
        if (take) return exec_body(b.body, out);
      }
      return Flow::kNormal;
    case StmtKind::kFor:
      return exec_for(s, out);
    case StmtKind::kSet:
      PV_TRY_VOID(exec_set(s));
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      PV_TRY(std::string body, render_block(s.body, s.line));
      PV_TRY(Value v, apply_filters(s.filters, Value(std::move(body))));
      PV_TRY_VOID(assign(s.targets, v, s.line));
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      frame_->vars.set(s.name, make_macro(s));
      return Flow::kNormal;
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kDo: {
      PV_TRY(Value v, eval(*s.expr));
      (void)v;
      return Flow::kNormal;
    }
    case StmtKind::kGeneration:
      return exec_body(s.body, out);
  }
  return Flow::kNormal;
}

Expected<Interpreter::Flow> Interpreter::exec_for(const Stmt& s, std::string& out) {
  PV_TRY(Value iterable, eval(*s.expr));
  PV_TRY(Array all, iterate(iterable, s.line));
  const std::shared_ptr<Frame> outer = frame_;
  struct Restore {
    Interpreter* in;
    std::shared_ptr<Frame> frame;
    ~Restore() { in->frame_ = frame; }
  } restore{this, outer};

  Array items;
  if (s.cond) {
    for (const Value& item : all) {
      frame_ = std::make_shared<Frame>();
      frame_->parent = outer;
      PV_TRY_VOID(assign(s.targets, item, s.line));
      PV_TRY(Value keep, eval(*s.cond));
      if (keep.truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) {
    frame_ = std::make_shared<Frame>();
    frame_->parent = outer;
    PV_TRY(Flow flow, exec_body(s.else_body, out));
    (void)flow;
    return Flow::kNormal;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    PV_TRY_VOID(charge(s.line, 1));
    frame_ = std::make_shared<Frame>();
    frame_->parent = outer;
    PV_TRY_VOID(assign(s.targets, items[i], s.line));
    frame_->vars.set("loop", make_loop(items, i));
    PV_TRY(Flow flow, exec_body(s.body, out));
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Interpreter::make_loop(const Array& items, size_t i) {
  const auto n = static_cast<int64_t>(items.size());
  const auto k = static_cast<int64_t>(i);
  Value loop = Value::dict({
      {"index", k + 1},
      {"index0", k},
      {"revindex", n - k},
      {"revindex0", n - k - 1},
      {"first", k == 0},
      {"last", k == n - 1},
      {"length", n},
      {"depth", 1},
      {"depth0", 0},
  });
  if (i > 0) loop.set("previtem", items[i - 1]);
  if (i + 1 < items.size()) loop.set("nextitem", items[i + 1]);
  loop.set("cycle", Value::callable(
                        "cycle", [k](Interpreter& in, CallArgs& args, int line) -> Expected<Value> {
                          if (args.positional.empty()) return in.fail(line, "loop.cycle: no items");
                          const auto m = static_cast<int64_t>(args.positional.size());
                          return args.positional[static_cast<size_t>(k % m)];
                        }));
  return loop;
}

Expected<void> Interpreter::assign(const std::vector<std::string>& targets, const Value& v,
                                   int line) {
  if (targets.size() == 1) {
    frame_->vars.set(targets[0], v);
    return {};
  }
  PV_TRY(Array parts, iterate(v, line));
  if (parts.size() != targets.size()) {
    return fail(line,
                fmt::format("cannot unpack {} values into {} names", parts.size(), targets.size()));
  }
  for (size_t i = 0; i < targets.size(); ++i) frame_->vars.set(targets[i], parts[i]);
  return {};
}

Expected<void> Interpreter::exec_set(const Stmt& s) {
  PV_TRY(Value v, eval(*s.expr));
  if (s.attr.empty()) return assign(s.targets, v, s.line);
  const Value ns = lookup(s.targets[0]);
  if (!ns.is_object() || !ns.object().is_namespace) {
    return fail(s.line, fmt::format("cannot assign attribute '{}' on '{}' of type {}: only "
                                    "namespace() objects accept attribute assignment",
                                    s.attr, s.targets[0], ns.type_name()));
  }
  PV_TRY_VOID(check_insert(ns, v, s.line));
  ns.object().set(s.attr, std::move(v));
  return {};
}

Value Interpreter::make_macro(const Stmt& s) {
  const Stmt* macro = &s;
  std::weak_ptr<Frame> defined_in = frame_;
  return Value::callable(s.name, [macro, defined_in](Interpreter& in, CallArgs& args, int line) {
    return in.call_macro(*macro, defined_in.lock(), args, line);
  });
}

Value Interpreter::make_caller(const Stmt& s) {
  const Stmt* block = &s;
  std::weak_ptr<Frame> call_site = frame_;
  return Value::callable("caller", [block, call_site](Interpreter& in, CallArgs& args, int line) {
    return in.call_macro(*block, call_site.lock(), args, line);
  });
}

Expected<Value> Interpreter::call_macro(const Stmt& macro, std::shared_ptr<Frame> parent,
                                        CallArgs& args, int line) {
  const std::string name = macro.name.empty() ? "caller" : macro.name;
  if (call_depth_ >= limits_.max_call_depth) {
    return make_error(ErrorCode::kResourceExhausted,
                      "jinja: line {}: macro calls nested deeper than {}", line,
                      limits_.max_call_depth);
  }
  auto frame = std::make_shared<Frame>();
  frame->parent = parent ? std::move(parent) : root_;
  const auto& params = macro.params;
  if (args.positional.size() > params.size()) {
    return fail(line,
                fmt::format("macro '{}' takes not more than {} argument(s)", name, params.size()));
  }
  std::vector<bool> given(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    frame->vars.set(params[i].name, args.positional[i]);
    given[i] = true;
  }
  for (auto& [key, value] : args.kwargs) {
    size_t i = 0;
    while (i < params.size() && params[i].name != key) ++i;
    if (i == params.size()) {
      if (key == "caller") {
        frame->vars.set(key, value);
        continue;
      }
      return fail(line, fmt::format("macro '{}' has no argument '{}'", name, key));
    }
    if (given[i]) {
      return fail(line, fmt::format("macro '{}' got multiple values for argument '{}'", name, key));
    }
    frame->vars.set(key, value);
    given[i] = true;
  }
  const std::shared_ptr<Frame> saved = frame_;
  struct Restore {
    Interpreter* in;
    std::shared_ptr<Frame> frame;
    ~Restore() {
      in->frame_ = frame;
      --in->call_depth_;
    }
  } restore{this, saved};
  ++call_depth_;
  frame_ = frame;
  for (size_t i = 0; i < params.size(); ++i) {
    if (given[i]) continue;
    Value v;
    if (params[i].default_value) {
      PV_TRY(v, eval(*params[i].default_value));
    }
    frame->vars.set(params[i].name, std::move(v));
  }
  std::string out;
  PV_TRY(Flow flow, exec_body(macro.body, out));
  (void)flow;
  return Value(std::move(out));
}

Expected<Value> Interpreter::call(const Value& callee, CallArgs& args, int line,
                                  std::string_view what) {
  if (callee.is_callable()) return callee.callable().fn(*this, args, line);
  if (callee.is_undefined()) {
    return fail(line, fmt::format("'{}' is undefined and cannot be called", what));
  }
  return fail(line, fmt::format("'{}' object is not callable", callee.type_name()));
}

Expected<Value> Interpreter::filter(std::string_view name, const Value& input, CallArgs& args,
                                    int line) {
  auto r = apply_builtin_filter(*this, name, input, args, line);
  if (!r) return fail(line, fmt::format("no filter named '{}'", name));
  return std::move(*r);
}

Expected<bool> Interpreter::test(std::string_view name, const Value& v, CallArgs& args, int line) {
  auto r = apply_builtin_test(*this, name, v, args, line);
  if (!r) return fail(line, fmt::format("no test named '{}'", name));
  return std::move(*r);
}

}  // namespace pensieve::jinja
