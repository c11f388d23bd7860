// Expression parsing, following Jinja2's grammar and precedence.
#include "jinja/parser.h"

namespace pensieve::jinja {

namespace {

ExprPtr make_expr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

ExprPtr make_binary(std::string op, ExprPtr left, ExprPtr right, int line) {
  auto e = make_expr(ExprKind::kBinary, line);
  e->name = std::move(op);
  e->children.push_back(std::move(left));
  e->children.push_back(std::move(right));
  return e;
}

}  // namespace

Expected<ExprPtr> Parser::parse_tuple(bool with_condexpr) {
  const int line = peek().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) {
      if (!skip_op(",")) break;
      is_tuple = true;
    }
    const Token& t = peek();
    if (is_tuple && (t.kind == TokenKind::kVarEnd || t.kind == TokenKind::kBlockEnd || at_op(")") ||
                     at_op("=") || at_name("if") || at_name("in"))) {
      break;
    }
    PV_TRY(ExprPtr item, parse_expression(with_condexpr));
    items.push_back(std::move(item));
  }
  if (!is_tuple) return std::move(items[0]);
  auto e = make_expr(ExprKind::kTuple, line);
  e->children = std::move(items);
  return e;
}

Expected<ExprPtr> Parser::parse_expression(bool with_condexpr) {
  PV_JINJA_ENTER();
  if (!with_condexpr) return parse_or();
  PV_TRY(ExprPtr expr, parse_or());
  while (at_name("if")) {
    const int line = next().line;
    auto cond = make_expr(ExprKind::kCond, line);
    PV_TRY(ExprPtr test, parse_or());
    ExprPtr otherwise;
    if (skip_name("else")) {
      PV_TRY(otherwise, parse_expression());
    }
    cond->children.push_back(std::move(expr));
    cond->children.push_back(std::move(test));
    cond->children.push_back(std::move(otherwise));
    expr = std::move(cond);
  }
  return expr;
}

Expected<ExprPtr> Parser::parse_or() {
  PV_TRY(ExprPtr left, parse_and());
  while (at_name("or")) {
    const int line = next().line;
    PV_TRY(ExprPtr right, parse_and());
    left = make_binary("or", std::move(left), std::move(right), line);
  }
  return left;
}

Expected<ExprPtr> Parser::parse_and() {
  PV_TRY(ExprPtr left, parse_not());
  while (at_name("and")) {
    const int line = next().line;
    PV_TRY(ExprPtr right, parse_not());
    left = make_binary("and", std::move(left), std::move(right), line);
  }
  return left;
}

Expected<ExprPtr> Parser::parse_not() {
  PV_JINJA_ENTER();
  if (at_name("not")) {
    const int line = next().line;
    auto e = make_expr(ExprKind::kUnary, line);
    e->name = "not";
    PV_TRY(ExprPtr operand, parse_not());
    e->children.push_back(std::move(operand));
    return e;
  }
  return parse_compare();
}

Expected<ExprPtr> Parser::parse_compare() {
  const int line = peek().line;
  PV_TRY(ExprPtr first, parse_math1());
  auto cmp = make_expr(ExprKind::kCompare, line);
  cmp->children.push_back(std::move(first));
  while (true) {
    const Token& t = peek();
    std::string op;
    if (t.kind == TokenKind::kOp && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                     t.text == "<=" || t.text == ">" || t.text == ">=")) {
      op = t.text;
      next();
    } else if (at_name("in")) {
      op = "in";
      next();
    } else if (at_name("not") && peek(1).kind == TokenKind::kName && peek(1).text == "in") {
      op = "notin";
      next();
      next();
    } else {
      break;
    }
    PV_TRY(ExprPtr operand, parse_math1());
    cmp->ops.push_back(std::move(op));
    cmp->children.push_back(std::move(operand));
  }
  if (cmp->ops.empty()) return std::move(cmp->children[0]);
  return cmp;
}

Expected<ExprPtr> Parser::parse_math1() {
  PV_TRY(ExprPtr left, parse_concat());
  while (at_op("+") || at_op("-")) {
    const Token& t = next();
    PV_TRY(ExprPtr right, parse_concat());
    left = make_binary(t.text, std::move(left), std::move(right), t.line);
  }
  return left;
}

Expected<ExprPtr> Parser::parse_concat() {
  PV_TRY(ExprPtr left, parse_math2());
  while (at_op("~")) {
    const int line = next().line;
    PV_TRY(ExprPtr right, parse_math2());
    left = make_binary("~", std::move(left), std::move(right), line);
  }
  return left;
}

Expected<ExprPtr> Parser::parse_math2() {
  PV_TRY(ExprPtr left, parse_pow());
  while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
    const Token& t = next();
    PV_TRY(ExprPtr right, parse_pow());
    left = make_binary(t.text, std::move(left), std::move(right), t.line);
  }
  return left;
}

Expected<ExprPtr> Parser::parse_pow() {
  PV_TRY(ExprPtr left, parse_unary(true));
  while (at_op("**")) {
    const int line = next().line;
    PV_TRY(ExprPtr right, parse_unary(true));
    left = make_binary("**", std::move(left), std::move(right), line);
  }
  return left;
}

Expected<ExprPtr> Parser::parse_unary(bool with_filter) {
  PV_JINJA_ENTER();
  ExprPtr node;
  if (at_op("-") || at_op("+")) {
    const Token& t = next();
    node = make_expr(ExprKind::kUnary, t.line);
    node->name = t.text;
    PV_TRY(ExprPtr operand, parse_unary(false));
    node->children.push_back(std::move(operand));
  } else {
    PV_TRY(node, parse_primary());
  }
  PV_TRY(node, parse_postfix(std::move(node)));
  if (with_filter) {
    PV_TRY(node, parse_filter_expr(std::move(node)));
  }
  return node;
}

Expected<ExprPtr> Parser::parse_primary() {
  const Token& t = peek();
  switch (t.kind) {
    case TokenKind::kName: {
      next();
      auto e = make_expr(ExprKind::kLiteral, t.line);
      if (t.text == "true" || t.text == "True") {
        e->literal = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->literal = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->literal = Value::none();
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
      }
      return e;
    }
    case TokenKind::kString: {
      auto e = make_expr(ExprKind::kLiteral, t.line);
      std::string s;
      while (peek().kind == TokenKind::kString) s += next().text;  // "a" "b" is "ab"
      e->literal = Value(std::move(s));
      return e;
    }
    case TokenKind::kInt:
    case TokenKind::kFloat: {
      next();
      auto e = make_expr(ExprKind::kLiteral, t.line);
      e->literal = t.kind == TokenKind::kInt ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    case TokenKind::kOp:
      if (t.text == "(") {
        next();
        if (skip_op(")")) {
          auto e = make_expr(ExprKind::kTuple, t.line);
          return e;
        }
        PV_TRY(ExprPtr inner, parse_tuple());
        PV_TRY_VOID(expect_op(")"));
        return inner;
      }
      if (t.text == "[" || t.text == "{") return parse_list_or_dict(t.text[0]);
      break;
    default:
      break;
  }
  return unexpected("an expression");
}

Expected<ExprPtr> Parser::parse_list_or_dict(char open) {
  const int line = next().line;
  const bool is_list = open == '[';
  auto e = make_expr(is_list ? ExprKind::kList : ExprKind::kDict, line);
  const std::string_view close = is_list ? "]" : "}";
  while (!skip_op(close)) {
    if (!e->children.empty()) {
      PV_TRY_VOID(expect_op(","));
      if (skip_op(close)) break;  // trailing comma
    }
    PV_TRY(ExprPtr item, parse_expression());
    e->children.push_back(std::move(item));
    if (!is_list) {
      PV_TRY_VOID(expect_op(":"));
      PV_TRY(ExprPtr value, parse_expression());
      e->children.push_back(std::move(value));
    }
  }
  return e;
}

Expected<ExprPtr> Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_op(".")) {
      const int line = next().line;
      const Token& t = peek();
      if (t.kind == TokenKind::kName) {
        auto e = make_expr(ExprKind::kGetAttr, line);
        e->name = next().text;
        e->children.push_back(std::move(node));
        node = std::move(e);
      } else if (t.kind == TokenKind::kInt) {
        auto e = make_expr(ExprKind::kGetItem, line);
        auto index = make_expr(ExprKind::kLiteral, line);
        index->literal = Value(next().int_value);
        e->children.push_back(std::move(node));
        e->children.push_back(std::move(index));
        node = std::move(e);
      } else {
        return unexpected("an attribute name");
      }
    } else if (at_op("[")) {
      PV_TRY(node, parse_subscript(std::move(node)));
    } else if (at_op("(")) {
      auto call = make_expr(ExprKind::kCall, peek().line);
      call->children.push_back(std::move(node));
      PV_TRY_VOID(parse_call_args(*call));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

Expected<ExprPtr> Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (skip_op("|")) {
      PV_TRY(node, parse_filter(std::move(node)));
    } else if (at_name("is")) {
      PV_TRY(node, parse_test(std::move(node)));
    } else if (at_op("(")) {
      auto call = make_expr(ExprKind::kCall, peek().line);
      call->children.push_back(std::move(node));
      PV_TRY_VOID(parse_call_args(*call));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

Expected<ExprPtr> Parser::parse_subscript(ExprPtr node) {
  const int line = next().line;  // [
  ExprPtr start;
  ExprPtr stop;
  ExprPtr step;
  bool is_slice = false;
  if (!at_op(":")) {
    PV_TRY(start, parse_expression());
  }
  if (skip_op(":")) {
    is_slice = true;
    if (!at_op("]") && !at_op(":")) {
      PV_TRY(stop, parse_expression());
    }
    if (skip_op(":") && !at_op("]")) {
      PV_TRY(step, parse_expression());
    }
  }
  PV_TRY_VOID(expect_op("]"));
  auto e = make_expr(is_slice ? ExprKind::kSlice : ExprKind::kGetItem, line);
  e->children.push_back(std::move(node));
  e->children.push_back(std::move(start));
  if (is_slice) {
    e->children.push_back(std::move(stop));
    e->children.push_back(std::move(step));
  }
  return e;
}

Expected<void> Parser::parse_call_args(Expr& call) {
  next();  // (
  bool first = true;
  while (!skip_op(")")) {
    if (!first) {
      PV_TRY_VOID(expect_op(","));
      if (skip_op(")")) break;
    }
    first = false;
    if (at_op("*") || at_op("**")) return fail(peek().line, "*args and **kwargs are not supported");
    if (peek().kind == TokenKind::kName && peek(1).kind == TokenKind::kOp && peek(1).text == "=") {
      std::string key = next().text;
      next();  // =
      PV_TRY(ExprPtr value, parse_expression());
      call.kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!call.kwargs.empty()) {
        return fail(peek().line, "positional argument follows keyword argument");
      }
      PV_TRY(ExprPtr value, parse_expression());
      call.children.push_back(std::move(value));
    }
  }
  return {};
}

Expected<ExprPtr> Parser::parse_filter(ExprPtr input) {
  const int line = peek().line;
  PV_TRY(std::string name, expect_name());
  while (at_op(".") && peek(1).kind == TokenKind::kName) {
    next();
    name += "." + next().text;
  }
  auto e = make_expr(ExprKind::kFilter, line);
  e->name = std::move(name);
  e->children.push_back(std::move(input));
  if (at_op("(")) PV_TRY_VOID(parse_call_args(*e));
  return e;
}

Expected<ExprPtr> Parser::parse_test(ExprPtr input) {
  const int line = next().line;  // is
  auto e = make_expr(ExprKind::kTest, line);
  e->negated = skip_name("not");
  PV_TRY(e->name, expect_name());
  e->children.push_back(std::move(input));
  if (at_op("(")) {
    PV_TRY_VOID(parse_call_args(*e));
    return e;
  }
  const Token& t = peek();
  const bool arg_start =
      t.kind == TokenKind::kString || t.kind == TokenKind::kInt || t.kind == TokenKind::kFloat ||
      at_op("[") || at_op("{") ||
      (t.kind == TokenKind::kName && t.text != "else" && t.text != "or" && t.text != "and" &&
       t.text != "if" && t.text != "in" && t.text != "not" && t.text != "is");
  if (arg_start) {
    PV_TRY(ExprPtr arg, parse_primary());
    PV_TRY(arg, parse_postfix(std::move(arg)));
    e->children.push_back(std::move(arg));
  }
  return e;
}

}  // namespace pensieve::jinja
