// Jinja parser: tokens to statement and expression trees, with Jinja2's operator precedence
// (or < and < not < comparisons < + - < ~ < * / // % < ** < unary; filters and `is` tests bind
// tightest). Nesting is capped so hostile input cannot overflow the stack.
#pragma once

#include <initializer_list>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "jinja/ast.h"
#include "jinja/lexer.h"

namespace pensieve::jinja {

// Parses a whole token stream (from tokenize) into the template body.
Expected<Body> parse_tokens(const std::vector<Token>& tokens, int max_nesting);

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, int max_nesting)
      : toks_(tokens), max_nesting_(max_nesting) {}

  Expected<Body> parse_template();

 private:
  // Statements (parser.cpp).
  Expected<Body> parse_body(std::initializer_list<std::string_view> end_tags);
  Expected<StmtPtr> parse_statement();
  Expected<StmtPtr> parse_if(int line);
  Expected<StmtPtr> parse_for(int line);
  Expected<StmtPtr> parse_set(int line);
  Expected<StmtPtr> parse_macro(int line);
  Expected<StmtPtr> parse_call_block(int line);
  Expected<StmtPtr> parse_filter_block(int line);
  Expected<std::vector<Param>> parse_params();
  Expected<std::vector<ExprPtr>> parse_filter_chain();
  Expected<void> expect_block_end();
  Expected<void> expect_end_tag(std::string_view name);

  // Expressions (parser_expr.cpp).
  Expected<ExprPtr> parse_tuple(bool with_condexpr = true);
  Expected<ExprPtr> parse_expression(bool with_condexpr = true);
  Expected<ExprPtr> parse_or();
  Expected<ExprPtr> parse_and();
  Expected<ExprPtr> parse_not();
  Expected<ExprPtr> parse_compare();
  Expected<ExprPtr> parse_math1();
  Expected<ExprPtr> parse_concat();
  Expected<ExprPtr> parse_math2();
  Expected<ExprPtr> parse_pow();
  Expected<ExprPtr> parse_unary(bool with_filter);
  Expected<ExprPtr> parse_primary();
  Expected<ExprPtr> parse_postfix(ExprPtr node);
  Expected<ExprPtr> parse_filter_expr(ExprPtr node);
  Expected<ExprPtr> parse_filter(ExprPtr input);
  Expected<ExprPtr> parse_test(ExprPtr input);
  Expected<ExprPtr> parse_subscript(ExprPtr node);
  Expected<void> parse_call_args(Expr& call);
  Expected<ExprPtr> parse_list_or_dict(char open);

  // Token helpers.
  const Token& peek(size_t ahead = 0) const;
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool at_op(std::string_view op) const;
  bool at_name(std::string_view name) const;
  bool skip_op(std::string_view op);
  bool skip_name(std::string_view name);
  Expected<void> expect_op(std::string_view op);
  Expected<std::string> expect_name();
  std::string describe(const Token& t) const;
  Unexpected<Error> fail(int line, std::string_view what) const;
  Unexpected<Error> unexpected(std::string_view expected) const;
  // Counts one level of nesting for the current scope of a parse function.
  Expected<void> enter();
  void leave() { --depth_; }

  const std::vector<Token>& toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  int max_nesting_;
};

// Counts one level of nesting in a Parser member function and undoes it on return.
#define PV_JINJA_ENTER()     \
  PV_TRY_VOID(enter());      \
  struct Leave {             \
    Parser* p;               \
    ~Leave() { p->leave(); } \
  } pv_jinja_leave_guard {   \
    this                     \
  }

}  // namespace pensieve::jinja
