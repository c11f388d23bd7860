#include "jinja/json.h"

#include <gtest/gtest.h>

#include <cmath>

#include "jinja/text.h"

namespace pensieve::jinja {
namespace {

std::string dump(const Value& v, const JsonStyle& style = {}) {
  auto r = to_json(v, style);
  return r ? *r : "ERROR: " + r.error().message;
}

TEST(JinjaJson, DumpsLikePythonJsonDumps) {
  auto v = parse_json(R"({"b": [1, 2.5, null, true, false], "a": {"x": "y"}, "e": [], "o": {}})");
  ASSERT_TRUE(v.has_value());
  // Insertion order is kept, separators are ", " and ": ".
  EXPECT_EQ(dump(*v), R"({"b": [1, 2.5, null, true, false], "a": {"x": "y"}, "e": [], "o": {}})");
  JsonStyle indented;
  indented.indent = 2;
  EXPECT_EQ(dump(*v, indented),
            "{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true,\n    false\n  ],\n  \"a\": {\n"
            "    \"x\": \"y\"\n  },\n  \"e\": [],\n  \"o\": {}\n}");
  JsonStyle sorted;
  sorted.sort_keys = true;
  EXPECT_EQ(dump(*v, sorted),
            R"({"a": {"x": "y"}, "b": [1, 2.5, null, true, false], "e": [], "o": {}})");
}

TEST(JinjaJson, EscapesStringsWithoutAsciiEscapingByDefault) {
  const Value s(std::string("q\"b\\n\n\t\x01 é 東"));
  EXPECT_EQ(dump(s), "\"q\\\"b\\\\n\\n\\t\\u0001 é 東\"");
  JsonStyle ascii;
  ascii.ensure_ascii = true;
  EXPECT_EQ(dump(Value("é😀"), ascii), "\"\\u00e9\\ud83d\\ude00\"");
}

TEST(JinjaJson, FloatsPrintLikePythonRepr) {
  EXPECT_EQ(dump(Value(1.0)), "1.0");
  EXPECT_EQ(dump(Value(0.1)), "0.1");
  EXPECT_EQ(dump(Value(1e16)), "1e+16");
  EXPECT_EQ(dump(Value(1.5e-5)), "1.5e-05");
  EXPECT_EQ(dump(Value(123456789012345.6)), "123456789012345.6");
  EXPECT_EQ(dump(Value(-0.0)), "-0.0");
  EXPECT_EQ(dump(Value(NAN)), "NaN");
  EXPECT_EQ(dump(Value(-INFINITY)), "-Infinity");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(1e22), "1e+22");
}

TEST(JinjaJson, RejectsWhatJsonCannotHold) {
  EXPECT_FALSE(to_json(Value()).has_value());
  Value list = Value::list();
  list.push_back(list);  // a cycle, only constructible from C++
  EXPECT_FALSE(to_json(list).has_value());
  list.array().clear();  // break the cycle so the test does not leak
}

TEST(JinjaJson, ParsesDocuments) {
  auto v = parse_json(
      R"( {"i": -12, "big": 12345678901234567890, "f": 1e3, "s": "\u00e9\ud83d\ude00\n"} )");
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->object().find("i")->is_int());
  EXPECT_EQ(v->object().find("i")->as_int(), -12);
  EXPECT_TRUE(v->object().find("big")->is_float());
  EXPECT_EQ(v->object().find("f")->as_float(), 1000.0);
  EXPECT_EQ(v->object().find("s")->str(), "é😀\n");
}

TEST(JinjaJson, ParseErrorsNameTheOffset) {
  for (const char* bad :
       {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "[1] x", "{\"a\":}", "\"\\q\""}) {
    auto v = parse_json(bad);
    ASSERT_FALSE(v.has_value()) << bad;
    EXPECT_EQ(v.error().message.rfind("json: offset ", 0), 0u) << v.error().message;
  }
  std::string deep(1000, '[');
  EXPECT_FALSE(parse_json(deep).has_value());
}

}  // namespace
}  // namespace pensieve::jinja
