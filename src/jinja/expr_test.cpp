// Expressions: literals, operators with Python semantics, tests, access, slicing, values.
#include <gtest/gtest.h>

#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::render;

constexpr const char* kCtx =
    R"({"x": {"a": 1}, "n": 5, "f": 2.5, "l": [3, 1, 2], "s": "Hello World",
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})";

TEST(JinjaExpr, ValuesPrintLikePython) {
  EXPECT_EQ(
      render("{{ 1.0 }} {{ 1e20 }} {{ 1.5e-5 }} {{ none }} {{ true }} {{ False }} {{ None }}"),
      "1.0 1e+20 1.5e-05 None True False None");
  EXPECT_EQ(render(R"({{ [1, 'a', "b'c", none, true, {'k': 1.5}] }})"),
            R"([1, 'a', "b'c", None, True, {'k': 1.5}])");
  EXPECT_EQ(render("{{ (1, 2) }} {{ () }} {{ (1,) }}"), "(1, 2) () (1,)");
  EXPECT_EQ(render("{{ undefined_name }}|{{ x.missing }}|{{ x.missing.deeper }}", kCtx), "||");
}

TEST(JinjaExpr, Arithmetic) {
  EXPECT_EQ(
      render(
          "{{ -1|abs }} {{ 2**3**2 }} {{ 7//-2 }} {{ -7 % 3 }} {{ 7/2 }} {{ 'ab'*3 }} {{ 1 ~ 2 }}"),
      "1 64 -4 2 3.5 ababab 12");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ 'x' + 'y' }} {{ [1] + [2] }} {{ 10 - 2.5 }} {{ -n }} "
                   "{{ +f }} {{ not n }} {{ 2 ** -1 }} {{ 7 % 2.5 }} {{ 7.5 // 2 }}",
                   kCtx),
            "a1None xy [1, 2] 7.5 -5 2.5 False 0.5 2.0 3.0");
  EXPECT_EQ(
      render("{{ -2 ** 2 }} {{ (-2) ** 2 }} {{ 2 * 3 + 4 % 3 }} {{ 10 - 3 - 2 }} {{ 3 * 'ab' }}"),
      "4 4 7 5 ababab");
  EXPECT_EQ(render("{{ 'n' ~ '!' | upper }} {{ ('n' ~ '!') | upper }}"), "n! N!");
  EXPECT_EQ(render("{{ 'x' * 0 }}|{{ [1] * 3 }}"), "|[1, 1, 1]");
}

TEST(JinjaExpr, ComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} "
                   "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' == 1 }} {{ none == none }}"),
            "True True True True True False False True");
  EXPECT_EQ(
      render("{{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 1 in [1, 2] }} {{ 'a' in {'a': 1} }} "
             "{{ 'q' in undefined_name }} {{ [1, 2] < [1, 3] }}"),
      "True True True True False True");
}

TEST(JinjaExpr, BooleanOperatorsReturnOperands) {
  EXPECT_EQ(
      render("{{ ('a' if false) }}|{{ 1 and 'x' }}|{{ 0 or '' }}|{{ 0 or none }}|{{ [] or 'e' }}"),
      "|x||None|e");
  EXPECT_EQ(render("{{ 'a' if n > 10 else 'b' if n > 3 else 'c' }}", kCtx), "b");
  EXPECT_EQ(render("{{ not true == false }} {{ not 1 in [1] }} {{ 1 + 2 is odd }}"),
            "True False 1");  // `is` binds tighter than +: 1 + (2 is odd)
  // Short circuit: the right side is never evaluated.
  EXPECT_EQ(render("{{ false and raise_exception('no') }}{{ true or raise_exception('no') }}"),
            "FalseTrue");
}

TEST(JinjaExpr, Tests) {
  EXPECT_EQ(
      render("{{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 'a' is sequence }} "
             "{{ {} is iterable }} {{ 1.5 is float }} {{ true is boolean }} {{ 'x' is string }}"),
      "True True False True True True True True");
  EXPECT_EQ(
      render("{{ n is divisibleby 5 }} {{ n is divisibleby(2) }} {{ n is even }} {{ n is odd }} "
             "{{ x is mapping }} {{ l is sequence }} {{ none is none }} {{ nope is defined }} "
             "{{ nope is undefined }} {{ n is not none }}",
             kCtx),
      "True False False True True True True False True True");
  EXPECT_EQ(
      render(
          "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ range is callable }} {{ 1 is callable }} "
          "{{ 1 is eq 1 }} {{ 2 is equalto(3) }} {{ 2 is gt 1 }} {{ 1 is in [1] }} {{ true is true "
          "}} "
          "{{ 0 is false }} {{ none is sameas none }}"),
      "True True True False True False True True True False True");
}

TEST(JinjaExpr, AttributeAndItemAccess) {
  EXPECT_EQ(
      render("{{ x['a'] }} {{ x.a }} {{ msgs[0].content }} {{ msgs[-1]['role'] }} [{{ msgs[5] }}] "
             "{{ msgs.0.role }} {{ s[0] }} {{ s[-1] }}",
             kCtx),
      "1 1 hi assistant [] user H d");
  // Dict methods win over keys for attribute syntax (as in Jinja); keys win for subscripts.
  EXPECT_EQ(render("{{ d['items'] }} {{ d.items()|list }}", R"({"d": {"items": 7}})"),
            "7 [('items', 7)]");
}

TEST(JinjaExpr, Slicing) {
  EXPECT_EQ(render("{{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ [1, 2, 3, 4][-2:] }} "
                   "{{ [1, 2, 3, 4, 5][::2] }} {{ [1, 2, 3, 4, 5][4:0:-2] }} {{ 'héllo'[1:3] }}"),
            "bcd fedcba [3, 4] [1, 3, 5] [5, 3] él");
  EXPECT_EQ(render("{{ [1, 2, 3][1:] }} {{ [1, 2, 3][:-1] }} [{{ 'abc'[5:] }}] {{ 'abc'[-10:2] }} "
                   "{{ [1, 2, 3][::-1] }} {{ 'abc'[::9223372036854775807] }}"),
            "[2, 3] [1, 2] [] ab [3, 2, 1] a");
}

TEST(JinjaExpr, ValuesBuiltFromCpp) {
  Value ctx = Value::dict({{"name", "Ann"}, {"n", 3}, {"f", 0.5}, {"ok", true}});
  Value list = Value::list({Value("a"), Value(2)});
  list.push_back(Value::none());
  ctx.set("items", list);
  auto t =
      Template::parse("{{ name }} {{ n + 1 }} {{ f }} {{ ok }} {{ items }} {{ items|length }}");
  ASSERT_TRUE(t.has_value());
  auto out = t->render(ctx);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(*out, "Ann 4 0.5 True ['a', 2, None] 3");
}

TEST(JinjaExpr, RenderingDoesNotChangeTheContext) {
  Value ctx = Value::dict({{"l", Value::list({Value(1)})}});
  auto t = Template::parse("{% do l.append(2) %}{{ l }}");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t->render(ctx), "[1, 2]");
  EXPECT_EQ(*t->render(ctx), "[1, 2]");
  EXPECT_EQ(ctx.object().find("l")->array().size(), 1u);
}

}  // namespace
}  // namespace pensieve::jinja
