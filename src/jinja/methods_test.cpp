// Methods on str, list and dict values.
#include <gtest/gtest.h>

#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::render;

TEST(JinjaMethods, StringMethods) {
  constexpr const char* ctx = R"({"s": "Hello World"})";
  EXPECT_EQ(render("{{ s.upper() }} {{ s.lower() }} {{ s.startswith('Hell') }} {{ s.endswith(('x', "
                   "'ld')) }} "
                   "{{ s.replace('o', '0') }} {{ s.find('W') }} {{ s.count('l') }} {{ s.title() }}",
                   ctx),
            "HELLO WORLD hello world True True Hell0 W0rld 6 3 Hello World");
  EXPECT_EQ(render("{{ ' a b '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} "
                   "{{ '  a  b  '.split(none, 1) }} {{ 'a b c'.split(maxsplit=1) }}"),
            "['a', 'b'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a', 'b  '] ['a', 'b c']");
  EXPECT_EQ(render("{{ '  xx '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'xay'.lstrip('x') }}|{{ "
                   "'xay'.rstrip('y') }}|"
                   "{{ 'a\nb'.splitlines() }}|{{ '-'.join(['a', 'b']) }}|{{ 'héllo'.find('l') }}"),
            "xx|a|ay|xa|['a', 'b']|a-b|2");
  EXPECT_EQ(render("{{ 'a{}b{}'.format(1, 2) }} {{ '{x}!'.format(x='y') }} {{ '12'.isdigit() }} "
                   "{{ 'they\\'re'.title() }} {{ 'hELLO'.capitalize() }}"),
            "a1b2 y! True They'Re Hello");
}

TEST(JinjaMethods, ListMethods) {
  EXPECT_EQ(render("{% set l = [1] %}{% do l.append(2) %}{{ l }} {{ l.pop() }} {{ l }} {{ [1, 2, "
                   "1].count(1) }} "
                   "{{ [1, 2].index(2) }} {% do l.extend([5, 6]) %}{% do l.insert(0, 0) %}{{ l }} "
                   "{{ l.pop(0) }}"),
            "[1, 2] 2 [1] 2 1 [0, 1, 5, 6] 0");
}

TEST(JinjaMethods, DictMethods) {
  constexpr const char* ctx = R"({"d": {"b": 1, "a": 2}})";
  EXPECT_EQ(render("{{ d.get('a') }} {{ d.get('z', 9) }} {{ d.get('z') }} {{ d.keys()|list }} "
                   "{{ d.values()|list }} {{ d.items()|list }}",
                   ctx),
            "2 9 None ['b', 'a'] [1, 2] [('b', 1), ('a', 2)]");
  EXPECT_EQ(
      render("{% set d2 = {'a': 1} %}{% do d2.update({'b': 2}) %}{% do d2.update(c=3) %}{{ d2 }} "
             "{{ d2.pop('a') }} {{ d2 }} {{ d2.setdefault('z', 0) }} {{ d2 }}"),
      "{'a': 1, 'b': 2, 'c': 3} 1 {'b': 2, 'c': 3} 0 {'b': 2, 'c': 3, 'z': 0}");
}

TEST(JinjaMethods, MethodsCanBePassedAround) {
  EXPECT_EQ(render("{% set up = 'abc'.upper %}{{ up() }}"), "ABC");
  EXPECT_EQ(render("{{ {'k': 1}|attr('k') }}|{{ {'k': 1}|attr('keys') is callable }}|"
                   "{{ namespace(k=2)|attr('k') }}"),
            "|True|2");
}

}  // namespace
}  // namespace pensieve::jinja
