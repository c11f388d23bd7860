// Errors: bad syntax and run-time failures give "jinja: line N: ..." errors, never crashes;
// limits stop hostile templates.
#include <gtest/gtest.h>

#include <string>

#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::render;
using testing_support::render_error;

std::string parse_error(std::string_view source) {
  auto t = Template::parse(source);
  EXPECT_FALSE(t.has_value()) << source;
  return t ? "" : t.error().message;
}

TEST(JinjaErrors, SyntaxErrorsNameTheLineAndProblem) {
  EXPECT_EQ(parse_error("{{ }}"), "jinja: line 1: expected an expression, got '}}'");
  EXPECT_EQ(parse_error("a\n{% if x %}"),
            "jinja: line 2: unexpected end of template, expected 'elif' or 'else' or 'endif'");
  EXPECT_EQ(parse_error("{{ a b }}"), "jinja: line 1: expected '}}', got 'b'");
  EXPECT_EQ(parse_error("\n\n{% endif %}"), "jinja: line 3: unexpected 'endif'");
  EXPECT_EQ(parse_error("{{ \"abc }}"), "jinja: line 1: unterminated string literal");
  EXPECT_EQ(parse_error("{# x"), "jinja: line 1: unterminated comment");
  EXPECT_EQ(parse_error("{{ x"), "jinja: line 1: unterminated '{{' (expected '}}')");
  EXPECT_EQ(parse_error("{{ x | nofilter }}"), "jinja: line 1: no filter named 'nofilter'");
  EXPECT_EQ(parse_error("{{ x is nope }}"), "jinja: line 1: no test named 'nope'");
  EXPECT_EQ(parse_error("{% foo %}"), "jinja: line 1: unknown statement 'foo'");
  EXPECT_EQ(parse_error("{% break %}"), "jinja: line 1: 'break' outside of a loop");
  EXPECT_EQ(parse_error("{{ @ }}"), "jinja: line 1: unexpected character '@'");
  EXPECT_EQ(parse_error("{% raw %}abc"),
            "jinja: line 1: unterminated 'raw' block (expected '{% endraw %}')");
  EXPECT_EQ(parse_error("{% for x in [1] %}{% else %}{% else %}{% endfor %}"),
            "jinja: line 1: unexpected 'else'");
  EXPECT_EQ(parse_error("{{ 99999999999999999999 }}"),
            "jinja: line 1: integer literal too large: 99999999999999999999");
  EXPECT_EQ(parse_error("{% include 'x' %}"), "jinja: line 1: unknown statement 'include'");
  EXPECT_EQ(Template::parse("{{").error().code, ErrorCode::kInvalidFormat);
}

TEST(JinjaErrors, RuntimeErrors) {
  EXPECT_EQ(render_error("line1\nline2\n{{ 1 / 0 }}").message, "jinja: line 3: division by zero");
  EXPECT_EQ(render_error("{{ 'a' + 1 }}").message,
            "jinja: line 1: unsupported operand type(s) for +: 'str' and 'int'");
  EXPECT_EQ(render_error("{{ nope() }}").message,
            "jinja: line 1: 'nope' is undefined and cannot be called");
  EXPECT_EQ(render_error("{{ 1 < 'a' }}").message,
            "jinja: line 1: '<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(render_error("{% for x in 5 %}{% endfor %}").message,
            "jinja: line 1: 'int' object is not iterable");
  EXPECT_EQ(render_error("{% set a, b = [1] %}").message,
            "jinja: line 1: cannot unpack 1 values into 2 names");
  EXPECT_EQ(render_error("{% set d = {} %}{% set d.x = 1 %}").code, ErrorCode::kInvalidFormat);
  EXPECT_EQ(render_error("{{ 9223372036854775807 + 1 }}").message,
            "jinja: line 1: integer overflow");
  EXPECT_EQ(render_error("{{ [1, 2]|join(',')|int + none }}").code, ErrorCode::kInvalidFormat);
  EXPECT_EQ(render_error("{{ 'x'.split('') }}").message,
            "jinja: line 1: str.split: empty separator");
  EXPECT_EQ(render_error("{{ 'a'|replace('a') }}").code, ErrorCode::kInvalidFormat);
  EXPECT_EQ(render_error("{{ range(1, 2, 0) }}").message,
            "jinja: line 1: range: step must not be zero");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplatesMessage) {
  const Error e = render_error(
      "{% if messages|length == 0 %}\n{{ raise_exception('No messages!') }}{% endif %}",
      R"({"messages": []})");
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.message, "jinja: line 2: No messages!");
}

TEST(JinjaErrors, ContainersCannotHoldThemselves) {
  EXPECT_EQ(render_error("{% set l = [] %}{% do l.append(l) %}").message,
            "jinja: line 1: cannot put a list or dict inside itself");
  EXPECT_EQ(render_error("{% set ns = namespace() %}{% set ns.self = [ns] %}").message,
            "jinja: line 1: cannot put a list or dict inside itself");
  EXPECT_EQ(render_error("{% set a = {} %}{% set b = {'a': a} %}{% do a.update(b=b) %}").message,
            "jinja: line 1: cannot put a list or dict inside itself");
}

TEST(JinjaErrors, StepLimitStopsRunawayLoops) {
  RenderLimits limits;
  limits.max_steps = 10'000;
  const Error e = render_error(
      "{% for i in range(100) %}{% for j in range(100) %}{{ j }}{% endfor %}{% endfor %}", "{}",
      limits);
  EXPECT_EQ(e.code, ErrorCode::kResourceExhausted);
  EXPECT_NE(e.message.find("steps"), std::string::npos);
  EXPECT_EQ(render_error("{% for i in range(1000000000000) %}{% endfor %}").code,
            ErrorCode::kResourceExhausted);
  // Within the limit the same template renders.
  limits.max_steps = 1'000'000;
  EXPECT_EQ(render("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}ok",
                   "{}", {}, limits),
            "ok");
}

TEST(JinjaErrors, OutputLimitStopsHugeText) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  EXPECT_EQ(render_error("{% for i in range(2000) %}x{% endfor %}", "{}", limits).code,
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(render_error("{{ 'x' * 100000000000 }}", "{}", limits).code,
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(render_error("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(10) %}"
                         "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                         "{}", limits)
                .code,
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(render("{% for i in range(1000) %}x{% endfor %}", "{}", {}, limits).size(), 1000u);
}

TEST(JinjaErrors, RecursionIsBounded) {
  EXPECT_EQ(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").code,
            ErrorCode::kResourceExhausted);
  const std::string deep_parens =
      "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_NE(parse_error(deep_parens).find("nested deeper than"), std::string::npos);
  std::string deep_ifs;
  for (int i = 0; i < 300; ++i) deep_ifs += "{% if true %}";
  EXPECT_NE(parse_error(deep_ifs).find("nested deeper than"), std::string::npos);
  EXPECT_NE(parse_error("{{ " + std::string(5000, '[') + " }}").find("jinja: line 1"),
            std::string::npos);
  EXPECT_NE(parse_error("{{ " + std::string(3000, '-') + "1 }}").find("nested deeper than"),
            std::string::npos);
  EXPECT_TRUE(Template::parse("{{ " + std::string(3000, 'n') + " }}").has_value());
}

TEST(JinjaErrors, GarbageNeverCrashes) {
  // Every prefix of a real template either parses or fails cleanly.
  const std::string source =
      "{%- for m in messages if m.role != 'x' -%}{{ m['content'] | trim ~ '\\n' }}{% set ns.a = "
      "[1, {'k': (2, 3)}][0:1] %}"
      "{% macro f(a, b=2) %}{{ a is defined and b > 1 }}{% endmacro %}{{ f(b=3, a=none) }}{# c "
      "#}{% raw %}x{% endraw %}"
      "{%- endfor %}";
  for (size_t n = 0; n <= source.size(); ++n) {
    auto t = Template::parse(source.substr(0, n));
    if (t) {
      auto out = t->render(Value::dict({{"messages", Value::list()}}));
      (void)out;
    } else {
      EXPECT_EQ(t.error().message.rfind("jinja: line ", 0), 0u) << t.error().message;
    }
  }
}

}  // namespace
}  // namespace pensieve::jinja
