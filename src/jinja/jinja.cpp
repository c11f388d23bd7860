#include "jinja/jinja.h"

#include "jinja/ast.h"
#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"

namespace pensieve::jinja {

namespace {

// Unknown filters and tests are syntax errors, found at parse time as Jinja does.
Expected<void> check_expr(const Expr* e) {
  if (e == nullptr) return {};
  if (e->kind == ExprKind::kFilter && !has_builtin_filter(e->name)) {
    return make_error(ErrorCode::kInvalidFormat, "jinja: line {}: no filter named '{}'", e->line,
                      e->name);
  }
  if (e->kind == ExprKind::kTest && !has_builtin_test(e->name)) {
    return make_error(ErrorCode::kInvalidFormat, "jinja: line {}: no test named '{}'", e->line,
                      e->name);
  }
  for (const ExprPtr& c : e->children) PV_TRY_VOID(check_expr(c.get()));
  for (const auto& [k, v] : e->kwargs) PV_TRY_VOID(check_expr(v.get()));
  return {};
}

Expected<void> check_body(const Body& body) {
  for (const StmtPtr& s : body) {
    PV_TRY_VOID(check_expr(s->expr.get()));
    PV_TRY_VOID(check_expr(s->cond.get()));
    for (const Branch& b : s->branches) {
      PV_TRY_VOID(check_expr(b.cond.get()));
      PV_TRY_VOID(check_body(b.body));
    }
    for (const Param& p : s->params) PV_TRY_VOID(check_expr(p.default_value.get()));
    for (const ExprPtr& f : s->filters) PV_TRY_VOID(check_expr(f.get()));
    PV_TRY_VOID(check_body(s->body));
    PV_TRY_VOID(check_body(s->else_body));
  }
  return {};
}

}  // namespace

Expected<Template> Template::parse(std::string_view text, const Options& options) {
  PV_TRY(std::vector<Token> tokens, tokenize(text, options));
  PV_TRY(Body body, parse_tokens(tokens, kMaxNesting));
  PV_TRY_VOID(check_body(body));
  return Template(std::make_shared<const Body>(std::move(body)));
}

Expected<std::string> Template::render(const Value& context, const RenderLimits& limits) const {
  Interpreter interpreter(limits);
  return interpreter.render(*body_, context);
}

}  // namespace pensieve::jinja
