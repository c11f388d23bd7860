// Template text handling: tags, comments, raw blocks and every whitespace-control rule.
#include <gtest/gtest.h>

#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::render;

TEST(JinjaSyntax, PlainTextPassesThrough) {
  EXPECT_EQ(render(""), "");
  EXPECT_EQ(render("hello { world } % # }}"), "hello { world } % # }}");
}

TEST(JinjaSyntax, OneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  Options keep;
  keep.keep_trailing_newline = true;
  EXPECT_EQ(render("a\n", "{}", keep), "a\n");
}

TEST(JinjaSyntax, TrimBlocksEatsTheNewlineAfterABlockTag) {
  EXPECT_EQ(render("{% if true %}\n  yes\n{% endif %}\nafter"), "  yes\nafter");
  EXPECT_EQ(render("{% set x = 1 %}\n{% set y = 2 %}\n{{ x + y }}\n"), "3");
  // Not after an expression tag.
  EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}\n"), "a\nb");
  // Comments trim too.
  EXPECT_EQ(render("{# c #}\nafter"), "after");
}

TEST(JinjaSyntax, LstripBlocksRemovesIndentBeforeBlockTags) {
  EXPECT_EQ(
      render("<ul>\n    {% for i in [1, 2] %}\n    <li>{{ i }}</li>\n    {% endfor %}\n</ul>\n"),
      "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>");
  EXPECT_EQ(render("  {% if true %}y{% endif %}"), "y");
  EXPECT_EQ(render("\t{% if true %}\ttab\n\t{% endif %}\n"), "\ttab\n");
  // Only whitespace-only line starts are stripped; expression tags are never stripped.
  EXPECT_EQ(render("x{% if true %}  \n  {% endif %}z"), "x  \nz");
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");
  // {%+ keeps the indent.
  EXPECT_EQ(render("  {%+ if true %}keep{% endif %}"), "  keep");
}

TEST(JinjaSyntax, OptionsCanTurnTheHfDefaultsOff) {
  Options plain;
  plain.trim_blocks = false;
  plain.lstrip_blocks = false;
  EXPECT_EQ(render("  {% if true %}\nx\n  {% endif %}\n", "{}", plain), "  \nx\n  ");
}

TEST(JinjaSyntax, DashesStripAllWhitespaceOnTheirSide) {
  EXPECT_EQ(render("a {%- if true %} b {% endif -%} c"), "a b c");
  EXPECT_EQ(render("a\n\n{%- if true -%}\n\n b \n\n{%- endif -%}\n\n c"), "abc");
  EXPECT_EQ(render("{{- '  x  ' -}}  \n {{ 'y' }}"), "  x  y");
  EXPECT_EQ(render("line1\n    {{- 'N' }}\n  {{ 'N' -}}  \n  end"), "line1N\n  Nend");
  EXPECT_EQ(render("text {#- comment #} more {# c2 -#}   end"), "text more end");
  EXPECT_EQ(render("{%- for i in [1, 2, 3] -%}\n{{ i }},\n{%- endfor %}"), "1,2,3,");
}

TEST(JinjaSyntax, RawBlocksAreLiteral) {
  EXPECT_EQ(render("{% raw %}{{ not parsed }}{% if %}{% endraw %}!"), "{{ not parsed }}{% if %}!");
  EXPECT_EQ(render("{% raw %}\n  {{ x }}\n{% endraw %}\nz"), "\n  {{ x }}\nz");
  EXPECT_EQ(render("{%- raw -%}  {{ x }}  {%- endraw -%}  z"), "{{ x }}z");
}

TEST(JinjaSyntax, CarriageReturnsReadAsNewlines) {
  EXPECT_EQ(render("{% if true %}\r\nx{% endif %}"), "x");
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaSyntax, BracesInsideExpressionsDoNotEndTags) {
  EXPECT_EQ(render("{{ \"{{\" }} {{ '}}' }} {{ {'a': {'b': 1}} }}"), "{{ }} {'a': {'b': 1}}");
}

TEST(JinjaSyntax, StringLiteralEscapes) {
  EXPECT_EQ(render(R"({{ 'a\tb\\c\u00e9\x41\n' }})"), "a\tb\\céA\n");
  EXPECT_EQ(render(R"({{ "dq'" }} {{ 'sq"' }} {{ 'it\'s' }} {{ 'a' 'b' }})"), "dq' sq\" it's ab");
  EXPECT_EQ(render(R"({{ '\d' }})"), "\\d");  // unknown escapes stay, as in Python
}

TEST(JinjaSyntax, NumberLiterals) {
  EXPECT_EQ(render("{{ 1_000 }} {{ 1.5e3 }} {{ 2e-3 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 2**62 }}"),
            "1000 1500.0 0.002 0.30000000000000004 0.3333333333333333 4611686018427387904");
}

}  // namespace
}  // namespace pensieve::jinja
