// Statements: if, for (loop variables, filters, else, unpacking), set, namespace, macro, call,
// filter blocks, break/continue, do, generation.
#include <gtest/gtest.h>

#include <ctime>

#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::render;

constexpr const char* kCtx = R"({"n": 5, "e": [], "d": {"b": 1, "a": 2},
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})";

TEST(JinjaStatements, IfElifElse) {
  EXPECT_EQ(render("{% if n > 10 %}big{% elif n > 3 %}mid{% else %}small{% endif %}", kCtx), "mid");
  EXPECT_EQ(render("{% if n > 10 %}big{% elif n > 7 %}mid{% else %}small{% endif %}", kCtx),
            "small");
  EXPECT_EQ(render("{% if missing %}x{% endif %}{% if not missing %}y{% endif %}"), "y");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for m in msgs %}{{ loop.index }}/{{ loop.length }} {{ loop.index0 }} "
                   "{{ loop.revindex }} {{ loop.revindex0 }} {{ loop.first }} {{ loop.last }} "
                   "{{ m.role }}: {{ m['content'] }}\n{% endfor %}",
                   kCtx),
            "1/2 0 2 1 True False user: hi\n2/2 1 1 0 False True assistant: yo\n");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }}/"
                   "{{ loop.cycle('a', 'b') }} {% endfor %}"),
            "-2/a 1-3/b 2-/a ");
  EXPECT_EQ(render("{% for x in [1, 2] %}{% for y in [3, 4] %}{{ loop.index }}{{ x }}{{ y }} "
                   "{% endfor %}{{ loop.index }}{% endfor %}"),
            "113 214 1123 224 2");
}

TEST(JinjaStatements, ForFiltersElseAndUnpacking) {
  EXPECT_EQ(render("{% for m in msgs if m.role == 'assistant' %}{{ loop.index }} {{ loop.length }} "
                   "{{ m.content }}{% else %}none{% endfor %}",
                   kCtx),
            "1 1 yo");
  EXPECT_EQ(render("{% for m in e %}x{% else %}empty{% endfor %}", kCtx), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}"
                   "{% endfor %}",
                   kCtx),
            "b=1;a=2;ba");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %} "
                   "{% for (a, b) in [[5, 6]] %}{{ a + b }}{% endfor %} {% for c in 'ab' %}{{ c "
                   "}}{% endfor %}"),
            "1234 11 ab");
  EXPECT_EQ(render("{% for x in missing %}x{% else %}none{% endfor %}"), "none");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
                   "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "0134");
  EXPECT_EQ(
      render("{% for i in [1, 2, 3] %}{% for j in [1, 2, 3] %}{% if j > i %}{% break %}{% endif %}"
             "{{ i }}{{ j }} {% endfor %}{% endfor %}"),
      "11 21 22 31 32 33 ");
}

TEST(JinjaStatements, SetIsScopedToTheLoopBody) {
  EXPECT_EQ(render("{% for x in [1, 2] %}{% if loop.first %}{% set y = 5 %}{% endif %}[{{ y }}]"
                   "{% endfor %}{{ y }}"),
            "[5][]");
  EXPECT_EQ(
      render("{% set y = 1 %}{% for x in [1, 2] %}{% set y = y + 1 %}{{ y }}{% endfor %}{{ y }}"),
      "221");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t[0] }}"), "121");
}

TEST(JinjaStatements, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(
      render(
          "{% set ns = namespace(found=false, c=0) %}{% for m in msgs %}{% set ns.c = ns.c + 1 %}"
          "{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}"
          "{{ ns.found }} {{ ns.c }}",
          kCtx),
      "True 2");
  EXPECT_EQ(render("{% set ns = namespace(items=[]) %}{% for i in [1, 2] %}"
                   "{% set ns.items = ns.items + [i * 2] %}{% endfor %}{{ ns.items }}"),
            "[2, 4]");
}

TEST(JinjaStatements, BlockSet) {
  EXPECT_EQ(
      render("{% set x %}  block {{ 5 }}  {% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}"
             "{{ y }}"),
      "[  block 5  ]ABC");
  EXPECT_EQ(render("{%- set x -%}\n  padded  \n{%- endset -%}\n[{{ x }}]"), "[padded]");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(render("{% macro f(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{{ f(1) }} {{ f(1, b=3) }} "
                   "{{ f(b=4, a=0) }}"),
            "1-2 1-3 0-4");
  EXPECT_EQ(render("{% macro f(a, b='x', c=none) -%}\n{{ a }}{{ b }}{{ c }}\n{%- endmacro %}"
                   "{{ f(1) }}|{{ f(1, 2, 3) }}|{{ f(c=5, a=0) }}"),
            "1xNone|123|0x5");
  EXPECT_EQ(
      render("{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}"
             "{{ rec(5) }}"),
      "54321");
  EXPECT_EQ(render("{% set greeting = 'hi' %}{% macro g() %}{{ greeting }}{% endmacro %}{{ g() }}"),
            "hi");
  EXPECT_EQ(render("{% macro m(x) %}<{{ x }}|{{ caller() }}>{% endmacro %}{% call m(1) %}inner{% "
                   "endcall %}"),
            "<1|inner>");
  EXPECT_EQ(
      render("{% macro m() %}{{ caller(2) }}{% endmacro %}{% call(v) m() %}v={{ v }}{% endcall %}"),
      "v=2");
}

TEST(JinjaStatements, FilterDoAndGenerationBlocks) {
  EXPECT_EQ(render("{% filter upper %}hello {{ n }}{% endfilter %}", kCtx), "HELLO 5");
  EXPECT_EQ(render("{% set l = [] %}{% do l.append(1) %}{{ l }}"), "[1]");
  EXPECT_EQ(render("{% generation %}gen {{ n }}{% endgeneration %}", kCtx), "gen 5");
}

TEST(JinjaStatements, GlobalsRangeDictStrftime) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} "
                   "{{ dict(a=1, b='x') }}"),
            "[0, 1, 2] [1, 4, 7] [5, 3, 1] {'a': 1, 'b': 'x'}");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char year[16];
  std::strftime(year, sizeof(year), "%Y", &tm);
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), year);
}

}  // namespace
}  // namespace pensieve::jinja
