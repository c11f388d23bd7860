// The parsed form of a Jinja template: expression and statement trees the interpreter walks.
// One generic node type per tree keeps the parser and interpreter small; fields unused by a
// kind stay empty.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace pensieve::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind : uint8_t {
  kLiteral,  // literal
  kName,     // name
  kList,     // children: items
  kTuple,    // children: items (a list at run time)
  kDict,     // children: key0, value0, key1, value1...
  kGetAttr,  // children[0].name
  kGetItem,  // children[0][children[1]]
  kSlice,    // children[0][children[1]:children[2]:children[3]] (absent parts null)
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs); children[0] null in filter blocks
  kTest,     // children[0] is [not] name(children[1..])
  kUnary,    // op children[0]: "-", "+", "not"
  kBinary,   // children[0] op children[1]: + - * / // % ** ~ and or
  kCompare,  // children[0] ops[0] children[1] ops[1] children[2]...: == != < <= > >= in notin
  kCond,     // children[0] if children[1] else children[2] (null: undefined)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;  // name, attribute, filter or test name, or operator
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare
  bool negated = false;          // kTest: "is not"
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind : uint8_t {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches: (cond, body)...; a null cond is the else branch
  kFor,          // for targets in expr [if cond] body [else else_body]
  kSet,          // set targets = expr; or set targets[0].attr = expr
  kSetBlock,     // set targets[0] [| filters] %} body {% endset
  kMacro,        // macro name(params) body
  kCallBlock,    // call[(params)] expr %} body {% endcall
  kFilterBlock,  // filter filters %} body {% endfilter
  kBreak,
  kContinue,
  kDo,          // do expr
  kGeneration,  // generation %} body {% endgeneration (rendered as is)
};

struct Branch {
  ExprPtr cond;
  Body body;
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null: required (undefined when missing)
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  std::vector<Branch> branches;
  std::vector<std::string> targets;
  std::string attr;  // kSet on a namespace attribute
  ExprPtr cond;      // kFor filter
  Body body;
  Body else_body;
  std::string name;  // kMacro
  std::vector<Param> params;
  std::vector<ExprPtr> filters;  // kSetBlock, kFilterBlock: kFilter nodes with a null input
};

}  // namespace pensieve::jinja
