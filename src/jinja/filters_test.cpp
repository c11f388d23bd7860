// Built-in filters.
#include <gtest/gtest.h>

#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::render;

constexpr const char* kCtx = R"({"n": 5, "f": 2.5, "l": [3, 1, 2], "d": {"b": 1, "a": 2},
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
  "people": [{"n": "a", "ok": true, "age": 30}, {"n": "b", "ok": false, "age": 20}]})";

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("{{ 'Hello World-foo bar(baz'|title }}|{{ 'hELLO'|capitalize }}|{{ 'Ab'|lower }}"
                   "|{{ 'Ab'|upper }}|{{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}"),
            "Hello World-Foo Bar(Baz|Hello|ab|AB|pad|hi");
  EXPECT_EQ(render("{{ 'aXbXc'|replace('X', '-') }} {{ 'aXbXc'|replace('X', '-', 1) }} "
                   "{{ '<a href=\"x\">&\\'</a>'|e }} {{ 'x'|safe }} {{ 'a  b\n c'|wordcount }}"),
            "a-b-c a-bXc &lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; x 3");
  EXPECT_EQ(render("{{ 'x\ny\n\nz'|indent(2) }}|{{ 'x\ny'|indent(2, true) }}|{{ "
                   "'a\n\nb'|indent(blank=true) }}"),
            "x\n  y\n\n  z|  x\n  y|a\n    \n    b");
}

TEST(JinjaFilters, Conversions) {
  EXPECT_EQ(
      render(
          "{{ f|int }} {{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ '3.5'|float }} "
          "{{ n|float }} {{ n|string }} {{ none|string }} {{ 'x'|int(7) }} {{ 'ff'|int(base=16) }}",
          kCtx),
      "2 42 4 0 3.5 5.0 5 None 7 255");
  EXPECT_EQ(render("{{ 5|round(1) }} {{ 2.675|round(2) }} {{ 3.14159|round(2) }} "
                   "{{ 2.5|round(0, 'floor') }} {{ 2.1|round(method='ceil') }} {{ -2.5|round }} {{ "
                   "3.5|round }}"),
            "5 2.67 3.14 2.0 3.0 -2.0 4.0");
  EXPECT_EQ(render("{{ -3|abs }} {{ -2.5|abs }}"), "3 2.5");
}

TEST(JinjaFilters, DefaultAndLength) {
  EXPECT_EQ(
      render("{{ nope|default('dflt') }} {{ ''|default('dflt') }} {{ ''|default('dflt', true) }} "
             "{{ none|default('x') }} {{ nope|d('y') }}"),
      "dflt  dflt None y");
  EXPECT_EQ(render("{{ d|length }} {{ 'héllo'|length }} {{ msgs|count }} {{ nope|length }}", kCtx),
            "2 5 2 0");
}

TEST(JinjaFilters, Tojson) {
  EXPECT_EQ(
      render(
          "{{ {'a': 1, 'b': [1, 2]}|tojson }}|{{ 'é\"\\n'|tojson }}|{{ nope is defined|tojson }}"),
      "{\"a\": 1, \"b\": [1, 2]}|\"é\\\"\\n\"|false");
  EXPECT_EQ(render("{{ {'a': 1, 'b': [1, 2]}|tojson(indent=2) }}"),
            "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(
      render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [] | tojson(indent=2) }} "
             "{{ 'é'|tojson(ensure_ascii=true) }} {{ [1, 2]|tojson(separators=(',', ':')) }}"),
      "{\"a\": 2, \"b\": 1} [] \"\\u00e9\" [1,2]");
}

TEST(JinjaFilters, Sequences) {
  EXPECT_EQ(render("{{ 'abc'|first }} [{{ []|first }}] {{ l|last }} {{ l|list }} {{ 'ab'|list }} "
                   "{{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }}",
                   kCtx),
            "a [] 2 [3, 1, 2] ['a', 'b'] [3, 2, 1] cba");
  EXPECT_EQ(render("{{ l|max }} {{ l|min }} {{ l|sum }} {{ people|sum(attribute='age') }} "
                   "{{ (people|max(attribute='age')).n }} {{ [1, 2, 3, 4, 5]|batch(2)|list }}",
                   kCtx),
            "3 1 6 50 a [[1, 2], [3, 4], [5]]");
  EXPECT_EQ(
      render("{{ [1, 2, 3]|join(',') }} {{ people|join('/', attribute='n') }} {{ d|items|list }}",
             kCtx),
      "1,2,3 a/b [('b', 1), ('a', 2)]");
}

TEST(JinjaFilters, SortUniqueDictsort) {
  EXPECT_EQ(
      render("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|unique|list }} "
             "{{ {'b': 1, 'a': 2}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value', "
             "reverse=true) }}"),
      "[1, 2, 3] ['A', 'a', 'b'] ['b', 'A'] [('a', 2), ('b', 1)] [('a', 2), ('b', 1)]");
  EXPECT_EQ(
      render(
          "{{ people|sort(attribute='age')|map(attribute='n')|join }} {{ l|sort(reverse=true) }} "
          "{{ ['a', 'B', 'b']|unique(case_sensitive=true)|list }} {{ ['b', "
          "'A']|sort(case_sensitive=true) }}",
          kCtx),
      "ba [3, 2, 1] ['a', 'B', 'b'] ['A', 'b']");
}

TEST(JinjaFilters, MapSelectReject) {
  EXPECT_EQ(render("{{ [1, 2, 3]|map('string')|join(',') }} {{ people|map(attribute='n')|list }} "
                   "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('even')|list }} "
                   "{{ [0, 1, '', 'x']|select|list }}",
                   kCtx),
            "1,2,3 ['a', 'b'] [1, 3] [1, 3] [1, 'x']");
  EXPECT_EQ(
      render("{{ people|selectattr('ok')|map(attribute='n')|list }} {{ "
             "people|rejectattr('ok')|map(attribute='n')|join }} "
             "{{ msgs|selectattr('role', 'equalto', 'assistant')|map(attribute='content')|list }} "
             "{{ msgs|map(attribute='missing', default='D')|list }} {{ [1, 2, 3]|select('gt', "
             "1)|list }}",
             kCtx),
      "['a'] b ['yo'] ['D', 'D'] [2, 3]");
}

}  // namespace
}  // namespace pensieve::jinja
