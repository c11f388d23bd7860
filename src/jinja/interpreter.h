// Jinja interpreter: walks a parsed template with a context, writing text. Also the services the
// built-in filters, tests, methods and globals need (errors with line numbers, step and size
// accounting, calls, iteration).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "jinja/ast.h"
#include "jinja/jinja.h"
#include "jinja/value.h"

namespace pensieve::jinja {

// Nested exec/eval calls (block nesting x macro recursion) before rendering fails; keeps the
// C++ stack bounded whatever the template does.
inline constexpr int kMaxEvalDepth = 400;

struct DepthGuard {
  int& depth;
  ~DepthGuard() { --depth; }
};

class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  Expected<std::string> render(const Body& body, const Value& context);

  // A run-time error: "jinja: line N: what".
  Unexpected<Error> fail(int line, std::string_view what) const;
  // Counts evaluation work; fails once RenderLimits::max_steps is spent.
  Expected<void> charge(int line, uint64_t steps);
  // Accounts for a string of `bytes` being built: fails past max_output_bytes.
  Expected<void> charge_text(int line, size_t bytes);
  // Fails when putting `item` into `container` would make a container hold itself.
  Expected<void> check_insert(const Value& container, const Value& item, int line);

  Expected<Value> call(const Value& callee, CallArgs& args, int line, std::string_view what);
  // The items `for` iterates over: list items, dict keys, string characters; undefined is empty.
  Expected<Array> iterate(const Value& v, int line);
  // Python comparisons; `<` and friends fail between unrelated types.
  Expected<bool> compare(std::string_view op, const Value& a, const Value& b, int line);
  // Three-way order for sort/min/max: strings optionally case-folded.
  Expected<int> order(const Value& a, const Value& b, bool case_sensitive, int line);
  Expected<Value> binary(std::string_view op, const Value& a, const Value& b, int line);
  Expected<Value> get_attr(const Value& obj, std::string_view name);
  Expected<Value> get_item(const Value& obj, const Value& key);

  Expected<Value> filter(std::string_view name, const Value& input, CallArgs& args, int line);
  Expected<bool> test(std::string_view name, const Value& v, CallArgs& args, int line);

 private:
  struct Frame;
  enum class Flow { kNormal, kBreak, kContinue };

  Expected<Flow> exec_body(const Body& body, std::string& out);
  Expected<Flow> exec(const Stmt& s, std::string& out);
  Expected<Flow> exec_for(const Stmt& s, std::string& out);
  Expected<void> exec_set(const Stmt& s);
  Expected<void> assign(const std::vector<std::string>& targets, const Value& v, int line);
  Expected<std::string> render_block(const Body& body, int line);
  Expected<Value> apply_filters(const std::vector<ExprPtr>& filters, Value v);

  Expected<Value> eval(const Expr& e);
  Expected<Value> eval_call(const Expr& e);
  Expected<Value> eval_slice(const Expr& e);
  Expected<CallArgs> eval_args(const Expr& e, size_t first_arg);
  Expected<Value> call_macro(const Stmt& macro, std::shared_ptr<Frame> parent, CallArgs& args,
                             int line);
  Value lookup(std::string_view name) const;
  Value make_macro(const Stmt& s);
  Value make_caller(const Stmt& s);
  // The `loop` object of iteration i: index, first, last, length, previtem, cycle()...
  Value make_loop(const Array& items, size_t i);

  const RenderLimits limits_;
  uint64_t steps_ = 0;
  int depth_ = 0;       // nested exec/eval calls
  int call_depth_ = 0;  // nested macro calls
  Object globals_;
  std::shared_ptr<Frame> root_;
  std::shared_ptr<Frame> frame_;
};

}  // namespace pensieve::jinja
