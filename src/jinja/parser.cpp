// Statement parsing: {% if %}, {% for %}, {% set %}, {% macro %}... and the token helpers.
#include "jinja/parser.h"

#include <algorithm>

namespace pensieve::jinja {

Expected<Body> parse_tokens(const std::vector<Token>& tokens, int max_nesting) {
  return Parser(tokens, max_nesting).parse_template();
}

Expected<Body> Parser::parse_template() { return parse_body({}); }

// ---- token helpers

const Token& Parser::peek(size_t ahead) const {
  return toks_[std::min(i_ + ahead, toks_.size() - 1)];
}

bool Parser::at_op(std::string_view op) const {
  return peek().kind == TokenKind::kOp && peek().text == op;
}

bool Parser::at_name(std::string_view name) const {
  return peek().kind == TokenKind::kName && peek().text == name;
}

bool Parser::skip_op(std::string_view op) {
  if (!at_op(op)) return false;
  next();
  return true;
}

bool Parser::skip_name(std::string_view name) {
  if (!at_name(name)) return false;
  next();
  return true;
}

Expected<void> Parser::expect_op(std::string_view op) {
  if (!skip_op(op)) return unexpected(fmt::format("'{}'", op));
  return {};
}

Expected<std::string> Parser::expect_name() {
  if (peek().kind != TokenKind::kName) return unexpected("a name");
  return next().text;
}

std::string Parser::describe(const Token& t) const {
  switch (t.kind) {
    case TokenKind::kText:
      return "template text";
    case TokenKind::kVarBegin:
      return "'{{'";
    case TokenKind::kVarEnd:
      return "'}}'";
    case TokenKind::kBlockBegin:
      return "'{%'";
    case TokenKind::kBlockEnd:
      return "'%}'";
    case TokenKind::kName:
    case TokenKind::kOp:
      return "'" + t.text + "'";
    case TokenKind::kString:
      return "a string";
    case TokenKind::kInt:
    case TokenKind::kFloat:
      return "number " + t.text;
    case TokenKind::kEof:
      return "end of template";
  }
  return "?";
}

Unexpected<Error> Parser::fail(int line, std::string_view what) const {
  return make_error(ErrorCode::kInvalidFormat, "jinja: line {}: {}", line, what);
}

Unexpected<Error> Parser::unexpected(std::string_view expected) const {
  return fail(peek().line, fmt::format("expected {}, got {}", expected, describe(peek())));
}

Expected<void> Parser::enter() {
  if (++depth_ > max_nesting_) {
    return fail(peek().line, fmt::format("template nested deeper than {} levels", max_nesting_));
  }
  return {};
}

Expected<void> Parser::expect_block_end() {
  if (peek().kind != TokenKind::kBlockEnd) return unexpected("end of statement '%}'");
  next();
  return {};
}

Expected<void> Parser::expect_end_tag(std::string_view name) {
  // parse_body stopped at "{% name"; consume it and the closing "%}".
  if (peek(1).text != name) return unexpected(fmt::format("'{}'", name));
  next();  // {%
  next();  // name
  return expect_block_end();
}

// ---- statements

Expected<Body> Parser::parse_body(std::initializer_list<std::string_view> end_tags) {
  Body body;
  while (true) {
    const Token& t = peek();
    switch (t.kind) {
      case TokenKind::kEof: {
        if (end_tags.size() == 0) return body;
        std::string names;
        for (std::string_view n : end_tags)
          names += (names.empty() ? "'" : " or '") + std::string(n) + "'";
        return fail(t.line, "unexpected end of template, expected " + names);
      }
      case TokenKind::kText: {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
        break;
      }
      case TokenKind::kVarBegin: {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        next();
        PV_TRY(s->expr, parse_tuple());
        if (peek().kind != TokenKind::kVarEnd) return unexpected("'}}'");
        next();
        body.push_back(std::move(s));
        break;
      }
      case TokenKind::kBlockBegin: {
        const Token& kw = peek(1);
        if (kw.kind == TokenKind::kName &&
            std::find(end_tags.begin(), end_tags.end(), kw.text) != end_tags.end()) {
          return body;
        }
        PV_TRY(StmtPtr s, parse_statement());
        body.push_back(std::move(s));
        break;
      }
      default:
        return fail(t.line, "unexpected " + describe(t));
    }
  }
}

Expected<StmtPtr> Parser::parse_statement() {
  PV_JINJA_ENTER();
  next();  // {%
  const Token& kw = peek();
  const int line = kw.line;
  if (kw.kind != TokenKind::kName) return unexpected("a statement name");
  const std::string name = next().text;
  if (name == "if") return parse_if(line);
  if (name == "for") return parse_for(line);
  if (name == "set") return parse_set(line);
  if (name == "macro") return parse_macro(line);
  if (name == "call") return parse_call_block(line);
  if (name == "filter") return parse_filter_block(line);
  auto s = std::make_unique<Stmt>();
  s->line = line;
  if (name == "break" || name == "continue") {
    if (loop_depth_ == 0) return fail(line, "'" + name + "' outside of a loop");
    s->kind = name == "break" ? StmtKind::kBreak : StmtKind::kContinue;
    PV_TRY_VOID(expect_block_end());
    return s;
  }
  if (name == "do") {
    s->kind = StmtKind::kDo;
    PV_TRY(s->expr, parse_tuple());
    PV_TRY_VOID(expect_block_end());
    return s;
  }
  if (name == "generation") {
    s->kind = StmtKind::kGeneration;
    PV_TRY_VOID(expect_block_end());
    PV_TRY(s->body, parse_body({"endgeneration"}));
    PV_TRY_VOID(expect_end_tag("endgeneration"));
    return s;
  }
  static constexpr std::string_view kEnds[] = {"endif",   "endfor",    "endset",        "endmacro",
                                               "endcall", "endfilter", "endgeneration", "elif",
                                               "else",    "endraw"};
  for (std::string_view e : kEnds) {
    if (name == e) return fail(line, "unexpected '" + name + "'");
  }
  return fail(line, "unknown statement '" + name + "'");
}

Expected<StmtPtr> Parser::parse_if(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kIf;
  s->line = line;
  while (true) {
    Branch b;
    PV_TRY(b.cond, parse_tuple());
    PV_TRY_VOID(expect_block_end());
    PV_TRY(b.body, parse_body({"elif", "else", "endif"}));
    s->branches.push_back(std::move(b));
    next();  // {%
    const std::string tag = next().text;
    if (tag == "elif") continue;
    if (tag == "else") {
      PV_TRY_VOID(expect_block_end());
      Branch e;
      PV_TRY(e.body, parse_body({"endif"}));
      s->branches.push_back(std::move(e));
      PV_TRY_VOID(expect_end_tag("endif"));
      return s;
    }
    PV_TRY_VOID(expect_block_end());  // endif
    return s;
  }
}

Expected<StmtPtr> Parser::parse_for(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kFor;
  s->line = line;
  const bool paren = skip_op("(");
  while (true) {
    PV_TRY(std::string target, expect_name());
    s->targets.push_back(std::move(target));
    if (!skip_op(",")) break;
    if (at_name("in") || at_op(")")) break;  // trailing comma
  }
  if (paren) PV_TRY_VOID(expect_op(")"));
  if (!skip_name("in")) return unexpected("'in'");
  PV_TRY(s->expr, parse_tuple(/*with_condexpr=*/false));
  if (skip_name("if")) {
    PV_TRY(s->cond, parse_expression());
  }
  if (skip_name("recursive")) return fail(line, "recursive loops are not supported");
  PV_TRY_VOID(expect_block_end());
  ++loop_depth_;
  auto body = parse_body({"else", "endfor"});
  --loop_depth_;
  if (!body) return Unexpected<Error>(body.error());
  s->body = std::move(body).value();
  if (peek(1).kind == TokenKind::kName && peek(1).text == "else") {
    next();
    next();
    PV_TRY_VOID(expect_block_end());
    PV_TRY(s->else_body, parse_body({"endfor"}));
  }
  PV_TRY_VOID(expect_end_tag("endfor"));
  return s;
}

Expected<StmtPtr> Parser::parse_set(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kSet;
  s->line = line;
  PV_TRY(std::string first, expect_name());
  s->targets.push_back(std::move(first));
  if (skip_op(".")) {
    PV_TRY(s->attr, expect_name());
  } else {
    while (skip_op(",")) {
      if (at_op("=")) break;
      PV_TRY(std::string target, expect_name());
      s->targets.push_back(std::move(target));
    }
  }
  if (skip_op("=")) {
    PV_TRY(s->expr, parse_tuple());
    PV_TRY_VOID(expect_block_end());
    return s;
  }
  if (s->targets.size() != 1 || !s->attr.empty()) return unexpected("'='");
  // Block set: {% set name [| filters] %}...{% endset %}
  s->kind = StmtKind::kSetBlock;
  PV_TRY(s->filters, parse_filter_chain());
  PV_TRY_VOID(expect_block_end());
  PV_TRY(s->body, parse_body({"endset"}));
  PV_TRY_VOID(expect_end_tag("endset"));
  return s;
}

Expected<std::vector<Param>> Parser::parse_params() {
  std::vector<Param> params;
  PV_TRY_VOID(expect_op("("));
  while (!skip_op(")")) {
    if (!params.empty()) PV_TRY_VOID(expect_op(","));
    if (skip_op(")")) break;  // trailing comma
    Param p;
    PV_TRY(p.name, expect_name());
    if (skip_op("=")) {
      PV_TRY(p.default_value, parse_expression());
    }
    params.push_back(std::move(p));
  }
  return params;
}

Expected<StmtPtr> Parser::parse_macro(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kMacro;
  s->line = line;
  PV_TRY(s->name, expect_name());
  PV_TRY(s->params, parse_params());
  PV_TRY_VOID(expect_block_end());
  // A macro body is its own function: loop controls do not reach an enclosing loop.
  const int saved_loops = loop_depth_;
  loop_depth_ = 0;
  auto body = parse_body({"endmacro"});
  loop_depth_ = saved_loops;
  if (!body) return Unexpected<Error>(body.error());
  s->body = std::move(body).value();
  PV_TRY_VOID(expect_end_tag("endmacro"));
  return s;
}

Expected<StmtPtr> Parser::parse_call_block(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kCallBlock;
  s->line = line;
  if (at_op("(")) {
    PV_TRY(s->params, parse_params());
  }
  PV_TRY(s->expr, parse_expression());
  if (s->expr->kind != ExprKind::kCall) return fail(line, "expected a call after 'call'");
  PV_TRY_VOID(expect_block_end());
  const int saved_loops = loop_depth_;
  loop_depth_ = 0;
  auto body = parse_body({"endcall"});
  loop_depth_ = saved_loops;
  if (!body) return Unexpected<Error>(body.error());
  s->body = std::move(body).value();
  PV_TRY_VOID(expect_end_tag("endcall"));
  return s;
}

Expected<StmtPtr> Parser::parse_filter_block(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kFilterBlock;
  s->line = line;
  // "filter upper | trim": the first filter has no leading '|'.
  if (peek().kind != TokenKind::kName) return unexpected("a filter name");
  PV_TRY(ExprPtr first, parse_filter(nullptr));
  s->filters.push_back(std::move(first));
  PV_TRY(auto rest, parse_filter_chain());
  for (auto& f : rest) s->filters.push_back(std::move(f));
  PV_TRY_VOID(expect_block_end());
  PV_TRY(s->body, parse_body({"endfilter"}));
  PV_TRY_VOID(expect_end_tag("endfilter"));
  return s;
}

Expected<std::vector<ExprPtr>> Parser::parse_filter_chain() {
  std::vector<ExprPtr> filters;
  while (skip_op("|")) {
    PV_TRY(ExprPtr f, parse_filter(nullptr));
    filters.push_back(std::move(f));
  }
  return filters;
}

}  // namespace pensieve::jinja
